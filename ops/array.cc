#include "ops/array.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

DType DTypeAttr(const Node& node) { return static_cast<DType>(node.attr<int64_t>("dtype")); }

// attr "dtype": a DType's value (f32 = 0, i32 = 1, i64 = 2).
AttrDef DTypeAttrDef() {
  return OptionalAttr("dtype", int64_t{static_cast<int64_t>(DType::kF32)})
      .AtLeast(0)
      .AtMost(static_cast<double>(DType::kI64));
}

absl::Status SameAsInput0(InferContext& ctx) {
  ctx.AddOutput(ctx.dtype(0), ctx.shape(0));
  return absl::OkStatus();
}

// Output 0 aliases input 0 (no data moves): the kernel has nothing to do.
absl::StatusOr<std::unique_ptr<Kernel>> NoKernel(const KernelContext&) { return nullptr; }

KernelFn FillKernel(double value) {
  return [value](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
    void* dst = k.outputs[0];
    int64_t n = k.out_shape(0).NumElements();
    DType dtype = k.output_types[0].dtype;
    return MakeKernel([=](const RunContext&) {
      VisitDType(dtype, [&](auto zero) {
        using T = decltype(zero);
        std::fill(static_cast<T*>(dst), static_cast<T*>(dst) + n, T(value));
      });
      return absl::OkStatus();
    });
  };
}

// An op filling a tensor shaped and typed as its input with `value`.
OpDef FillLike(std::string name, double value) {
  return {.name = std::move(name),
          .num_inputs = 1,
          .infer = SameAsInput0,
          .kernel = FillKernel(value),
          .grad = NoGradient,
          .no_gradient_reason = "constant output"};
}

}  // namespace

// ---------------------------------------------------------------- sources

GF_REGISTER_OP(OpDef{
    .name = "Placeholder",
    .attrs = {DTypeAttrDef(), RequiredAttr("shape", AttrType::kInts)},
    .infer = [](InferContext& ctx) {
      const auto& dims = ctx.node().attr<std::vector<int64_t>>("shape");
      for (size_t i = 1; i < dims.size(); ++i) {
        if (dims[i] < 0) return ctx.Error("only dim 0 (the batch) may be -1");
      }
      ctx.AddOutput(DTypeAttr(ctx.node()), Shape(dims));
      return absl::OkStatus();
    },
    .no_gradient_reason = "a placeholder has no inputs",
    .source = SourceKind::kPlaceholder,
});

Output Placeholder(const Scope& scope, std::string_view name, DType dtype, Shape shape) {
  return scope.graph().AddNode1(scope, "Placeholder", {},
                                {{"dtype", int64_t(dtype)}, {"shape", shape.dims()}}, name);
}

GF_REGISTER_OP(OpDef{
    .name = "Const",
    .attrs = {RequiredAttr("value", AttrType::kTensor)},
    .infer = [](InferContext& ctx) {
      const Tensor& v = ctx.node().attr<Tensor>("value");
      ctx.AddOutput(v.dtype(), v.shape());
      return absl::OkStatus();
    },
    .no_gradient_reason = "a constant has no inputs",
    .source = SourceKind::kConstant,
});

Output Constant(const Scope& scope, Tensor value, std::string_view name) {
  return scope.graph().AddNode1(scope, "Const", {}, {{"value", std::move(value)}}, name);
}

Output Scalar(const Scope& scope, float value) { return Constant(scope, Tensor::Scalar(value)); }

GF_REGISTER_OP(OpDef{
    .name = "Variable",
    // l1, l2 (optimizers/regularizers.h) and max_norm, max_norm_axis
    // (optimizers/constraints.h) are set by those files after creation.
    .attrs = {DTypeAttrDef(), RequiredAttr("shape", AttrType::kInts),
              RequiredAttr("initializer", AttrType::kInitializer), RequiredAttr("trainable", AttrType::kBool),
              OptionalAttr("l1", AttrType::kFloat), OptionalAttr("l2", AttrType::kFloat),
              OptionalAttr("max_norm", AttrType::kFloat), OptionalAttr("max_norm_axis", AttrType::kInt)},
    .infer = [](InferContext& ctx) {
      Shape shape(ctx.node().attr<std::vector<int64_t>>("shape"));
      if (!shape.IsFullyKnown()) {
        return ctx.Error(absl::StrCat("a variable needs a fully known shape, got ", shape.ToString()));
      }
      ctx.AddOutput(DTypeAttr(ctx.node()), shape);
      return absl::OkStatus();
    },
    .no_gradient_reason = "a variable has no inputs",
    .source = SourceKind::kVariable,
});

Output Variable(const Scope& scope, std::string_view name, Shape shape, Initializer init,
                bool trainable, DType dtype) {
  return scope.graph().AddNode1(scope, "Variable", {},
                                {{"dtype", int64_t(dtype)},
                                 {"shape", shape.dims()},
                                 {"initializer", std::move(init)},
                                 {"trainable", trainable}},
                                name);
}

// ---------------------------------------------------------------- fills

GF_REGISTER_OP(FillLike("OnesLike", 1.0));
GF_REGISTER_OP(FillLike("ZerosLike", 0.0));

Output OnesLike(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "OnesLike", {x}); }
Output ZerosLike(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "ZerosLike", {x}); }

// ---------------------------------------------------------------- AddN

// y = x0 + x1 + ...; dy/dxi = dy for every i.
GF_REGISTER_OP(OpDef{
    .name = "AddN",
    .num_inputs = -1,
    .infer = [](InferContext& ctx) {
      if (ctx.num_inputs() == 0) return ctx.Error("needs at least one input");
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
        if (ctx.shape(i) != ctx.shape(0)) {
          return ctx.Error(absl::StrCat(ctx.Describe(i), " differs in shape from ", ctx.Describe(0)));
        }
      }
      return SameAsInput0(ctx);
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      std::vector<const float*> src;
      for (void* p : k.inputs) src.push_back(static_cast<const float*>(p));
      float* dst = k.out<float>(0);
      int64_t n = k.out_shape(0).NumElements();
      return MakeKernel([src, dst, n](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) {
          float s = src[0][i];
          for (size_t j = 1; j < src.size(); ++j) s += src[j][i];
          dst[i] = s;
        }
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) { return std::vector<Output>(g.node.inputs.size(), g.dy[0]); },
    .grad_checks = {{.inputs = {{.shape = {2, 3}}, {.shape = {2, 3}}, {.shape = {2, 3}}}}},
});

Output AddN(const Scope& scope, std::vector<Output> xs) {
  if (xs.size() == 1) return xs[0];
  return scope.graph().AddNode1(scope, "AddN", std::move(xs));
}

// ---------------------------------------------------------------- aliases

GF_REGISTER_OP(OpDef{
    .name = "Identity",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = NoKernel,
    .grad = [](GradContext& g) { return std::vector<Output>{g.dy[0]}; },
    .grad_checks = {{.inputs = {{.shape = {3, 2}}}}},
    .aliases_input = 0,
});

GF_REGISTER_OP(OpDef{
    .name = "StopGradient",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = NoKernel,
    .grad = NoGradient,
    .no_gradient_reason = "blocks gradients by definition",
    .aliases_input = 0,
});

Output Identity(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "Identity", {x}); }
Output StopGradient(const Scope& scope, Output x) {
  return scope.graph().AddNode1(scope, "StopGradient", {x});
}

// The gradient of a reshape is dy reshaped back to x's shape.
std::vector<Output> ReshapeGrad(GradContext& g) {
  return {ReshapeLike(g.scope, g.dy[0], g.x(0))};
}

GF_REGISTER_OP(OpDef{
    .name = "Reshape",
    .num_inputs = 1,
    .attrs = {RequiredAttr("shape", AttrType::kInts)},
    .infer = [](InferContext& ctx) {
      std::vector<int64_t> dims = ctx.node().attr<std::vector<int64_t>>("shape");
      int64_t known = 1;
      int unknown_at = -1;
      for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
        if (dims[i] >= 0) {
          if (__builtin_mul_overflow(known, dims[i], &known)) {
            return ctx.Error(absl::StrCat("target shape ", Shape(dims).ToString(), " has more than 2^63 - 1 elements"));
          }
        } else if (unknown_at >= 0) {
          return ctx.Error("at most one dimension of the target shape may be -1");
        } else {
          unknown_at = i;
        }
      }
      int64_t total = ctx.shape(0).NumElements();
      if (total >= 0) {
        if (unknown_at >= 0 && known > 0) dims[unknown_at] = total / known;
        if (Shape(dims).NumElements() != total) {
          return ctx.Error(absl::StrCat("cannot reshape ", ctx.Describe(0), " to ",
                                        Shape(ctx.node().attr<std::vector<int64_t>>("shape")).ToString(),
                                        ": element counts differ"));
        }
      }
      ctx.AddOutput(ctx.dtype(0), Shape(dims));
      return absl::OkStatus();
    },
    .kernel = NoKernel,
    .grad = ReshapeGrad,
    .grad_checks = {{.inputs = {{.shape = {2, 3, 2}}}, .attrs = {{"shape", std::vector<int64_t>{-1, 6}}}}},
    .aliases_input = 0,
});

GF_REGISTER_OP(OpDef{
    .name = "ReshapeLike",
    .num_inputs = 2,
    .infer = [](InferContext& ctx) {
      int64_t a = ctx.shape(0).NumElements(), b = ctx.shape(1).NumElements();
      if (a >= 0 && b >= 0 && a != b) {
        return ctx.Error(absl::StrCat("cannot reshape ", ctx.Describe(0), " like ", ctx.Describe(1)));
      }
      ctx.AddOutput(ctx.dtype(0), ctx.shape(1));
      return absl::OkStatus();
    },
    .kernel = NoKernel,
    .grad = [](GradContext& g) {
      return std::vector<Output>{ReshapeLike(g.scope, g.dy[0], g.x(0)), Output{}};
    },
    .grad_checks = {{.inputs = {{.shape = {2, 6}}, {.shape = {3, 4}, .no_grad = true}}}},
    .aliases_input = 0,
});

Output Reshape(const Scope& scope, Output x, Shape shape) {
  return scope.graph().AddNode1(scope, "Reshape", {x}, {{"shape", shape.dims()}});
}

Output ReshapeLike(const Scope& scope, Output x, Output like) {
  return scope.graph().AddNode1(scope, "ReshapeLike", {x, like});
}

Output Flatten(const Scope& scope, Output x) {
  if (!x.valid()) return x;
  const std::vector<int64_t>& dims = x.shape().dims();
  absl::StatusOr<int64_t> features = Shape(std::vector<int64_t>(dims.begin() + std::min<size_t>(1, dims.size()), dims.end())).CheckedNumElements();
  if (!features.ok()) {  // the product of the feature dims overflows int64
    scope.graph().RecordError(absl::InvalidArgumentError(
        absl::StrCat("Flatten of ", x.shape().ToString(), ": ", features.status().message())));
    return Output{};
  }
  return scope.graph().AddNode1(scope, "Reshape", {x}, {{"shape", std::vector<int64_t>{-1, *features}}},
                                "Flatten");
}

// ---------------------------------------------------------------- cast

template <typename From, typename To>
void CastLoop(const void* src, void* dst, int64_t n) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<To>(s[i]);
}

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kBF16; }

// f32 -> bf16 of [begin, end): with AVX512-BF16, 16 values per instruction
// (vcvtneps2bf16, as FloatToBFloat16 rounds); the rest one by one.
void FloatsToBFloat16(const float* src, uint16_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
#ifdef __AVX512BF16__
  for (; i + 16 <= end; i += 16) {
    const __m256bh packed = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    std::memcpy(dst + i, &packed, sizeof packed);
  }
#endif
  for (; i < end; ++i) dst[i] = FloatToBFloat16(src[i]);
}

// f32 <-> bf16 in blocks of 2048 values over the step's threads, from 4096
// values on. Twice as fast as oneDNN's reorder on the shapes of a
// mixed-precision step (an AMX Xeon: 7.8 vs 15.5 us for 784 x 256 values).
// Small casts split too: a cast usually reads what both threads just wrote,
// and one thread alone waited for the other core's cache lines (8.7 us for
// W2's 256 x 100 activations, 2.5 us split).
absl::StatusOr<std::unique_ptr<Kernel>> BFloat16CastKernel(const KernelContext& k) {
  const int64_t n = k.out_shape(0).NumElements();
  const bool to_bf16 = k.output_types[0].dtype == DType::kBF16;
  const void* src = k.inputs[0];
  void* dst = k.outputs[0];
  return MakeKernel([=](const RunContext&) {
    constexpr int64_t kBlock = 2048;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= 2 * kBlock)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
      if (to_bf16) {
        FloatsToBFloat16(static_cast<const float*>(src), static_cast<uint16_t*>(dst), begin, end);
      } else {
        for (int64_t i = begin; i < end; ++i) {
          static_cast<float*>(dst)[i] = BFloat16ToFloat(static_cast<const uint16_t*>(src)[i]);
        }
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> CastKernel(const KernelContext& k) {
  const DType from = k.input_types[0].dtype, to = k.output_types[0].dtype;
  const int64_t n = k.out_shape(0).NumElements();
  if (from == DType::kBF16 || to == DType::kBF16) return BFloat16CastKernel(k);
  const void* src = k.inputs[0];
  void* dst = k.outputs[0];
  return MakeKernel([=](const RunContext&) {
    VisitDType(from, [&](auto from_zero) {
      VisitDType(to, [&](auto to_zero) { CastLoop<decltype(from_zero), decltype(to_zero)>(src, dst, n); });
    });
    return absl::OkStatus();
  });
}

// Between f32 and bf16 the cast is the identity up to rounding, so the
// gradient is dy, carried in x's dtype. Integers carry no gradient.
std::vector<Output> CastGrad(GradContext& g) {
  const DType x = g.x(0).dtype();
  if (!IsFloat(x) || !IsFloat(g.node.outputs[0].dtype)) return {};
  if (g.dy[0].dtype() == x) return {g.dy[0]};
  return {Cast(g.scope, g.dy[0], x)};
}

GF_REGISTER_OP(OpDef{
    .name = "Cast",
    .num_inputs = 1,
    .attrs = {RequiredAttr("dtype", AttrType::kInt).AtLeast(0).AtMost(static_cast<double>(DType::kBF16))},
    .infer = [](InferContext& ctx) {
      const DType from = ctx.dtype(0), to = DTypeAttr(ctx.node());
      if ((from == DType::kBF16 || to == DType::kBF16) && !(IsFloat(from) && IsFloat(to))) {
        return ctx.Error(absl::StrCat("casts ", ctx.Describe(0), " to ", std::string(DTypeName(to)),
                                      "; bf16 is cast only to and from f32"));
      }
      ctx.AddOutput(to, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = CastKernel,
    .grad = CastGrad,
    // Central differences cannot check a bf16 rounding: tests/ops/mixed_precision_test.cc
    // checks the bf16 path against f32 instead.
    .no_gradient_reason = "f32 <-> bf16 passes dy through (checked by mixed_precision_test); integers carry no gradient",
    .takes_bf16 = true,
});

Output Cast(const Scope& scope, Output x, DType to) {
  return scope.graph().AddNode1(scope, "Cast", {x}, {{"dtype", int64_t(to)}});
}

// ---------------------------------------------------------------- group

GF_REGISTER_OP(OpDef{
    .name = "NoOp",
    .infer = [](InferContext& ctx) {
      ctx.AddOutput(DType::kI32, Shape{});  // a handle only; never written
      return absl::OkStatus();
    },
    .no_gradient_reason = "groups side effects; produces no value",
});

Output Group(const Scope& scope, std::vector<Node*> deps, std::string_view name) {
  std::vector<Output> outs = scope.graph().AddNode(scope, "NoOp", {}, {}, name, std::move(deps));
  return outs.empty() ? Output{} : outs[0];
}

}  // namespace gradflow::ops
