#include "ops/math.h"

// Binary ops run oneDNN's `binary` primitive when it has a JIT kernel for the
// shapes: oneDNN needs src0 to have the output's shape and broadcasts only
// src1, so a broadcast `a` is swapped into src1 for commutative ops (and for
// Sub, with a post-op negating b - a). Everything else (a broadcast `a` in
// Div, both inputs broadcast, or shapes oneDNN would serve with its slow
// reference kernel) runs a broadcasting OpenMP loop. Unary ops are oneDNN
// `eltwise` primitives, except Sign (a loop).

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/array.h"
#include "ops/op_util.h"
#include "ops/reduce.h"

namespace gradflow::ops {
namespace {

using dnnl::algorithm;

// Contiguous elements one work item of a broadcasting loop handles, so a
// large same-shape op still splits across threads.
constexpr int64_t kChunk = 16384;

absl::Status SameAsInput0(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}


// ---------------------------------------------------------------- broadcasting

// Numpy broadcasting of inputs ia and ib. An unknown batch dim (-1) against
// a known size n > 1 gives n (the batch must be 1 or n, checked again at
// compile time); against 1 or -1 it stays -1.
absl::StatusOr<Shape> BroadcastShape(const InferContext& ctx, int ia, int ib) {
  const Shape &a = ctx.shape(ia), &b = ctx.shape(ib);
  const int rank = std::max(a.rank(), b.rank());
  std::vector<int64_t> dims(rank);
  for (int i = 0; i < rank; ++i) {
    const int ka = i - (rank - a.rank()), kb = i - (rank - b.rank());
    const int64_t da = ka >= 0 ? a[ka] : 1, db = kb >= 0 ? b[kb] : 1;
    int64_t d;
    if (da == db || db == 1) {
      d = da;
    } else if (da == 1) {
      d = db;
    } else if (da < 0 || db < 0) {
      d = std::max(da, db);
    } else {
      return ctx.Error(absl::StrCat("cannot broadcast ", ctx.Describe(ia), " with ", ctx.Describe(ib),
                                    ": dim ", i, " of the result would be ", da, " vs ", db,
                                    " (sizes must be equal or 1, aligned at the right)"));
    }
    if (d < 0 && i != 0) {
      const int unknown = da < 0 ? ia : ib;
      return ctx.Error(absl::StrCat("broadcasting ", ctx.Describe(ia), " with ", ctx.Describe(ib),
                                    " would move the unknown batch dim of input ", unknown, " to dim ", i,
                                    " of the result; only dim 0 may be unknown (reshape input ", unknown,
                                    " to the other input's rank)"));
    }
    dims[i] = d;
  }
  return Shape(dims);
}

absl::Status InferBroadcast(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
  GF_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(ctx, 0, 1));
  ctx.AddOutput(DType::kF32, std::move(shape));
  return absl::OkStatus();
}

// `s` with leading 1s up to `rank`.
Shape PadTo(const Shape& s, int rank) {
  std::vector<int64_t> dims(rank - s.rank(), 1);
  dims.insert(dims.end(), s.dims().begin(), s.dims().end());
  return Shape(dims);
}

// A walk over the output of a broadcasting binary op: merged output dims and,
// per dim, each input's element stride (0 where it is broadcast). The
// innermost dim has strides 0 or 1.
struct BroadcastPlan {
  std::vector<int64_t> size, stride_a, stride_b;
  int64_t total = 1;
};

BroadcastPlan MakeBroadcastPlan(const Shape& out, const Shape& a_shape, const Shape& b_shape) {
  const int rank = out.rank();
  const Shape a = PadTo(a_shape, rank), b = PadTo(b_shape, rank);
  BroadcastPlan p;
  p.total = out.NumElements();
  int64_t contiguous_a = 1, contiguous_b = 1;
  std::vector<int64_t> sa(rank), sb(rank);
  for (int i = rank - 1; i >= 0; --i) {
    sa[i] = a[i] == 1 ? 0 : contiguous_a;
    sb[i] = b[i] == 1 ? 0 : contiguous_b;
    contiguous_a *= a[i];
    contiguous_b *= b[i];
  }
  auto mergeable = [](int64_t outer, int64_t inner, int64_t inner_size) {
    return (outer == 0 && inner == 0) || (inner != 0 && outer == inner * inner_size);
  };
  for (int i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;
    if (!p.size.empty() && mergeable(p.stride_a.back(), sa[i], out[i]) &&
        mergeable(p.stride_b.back(), sb[i], out[i])) {
      p.size.back() *= out[i];
      p.stride_a.back() = sa[i];
      p.stride_b.back() = sb[i];
    } else {
      p.size.push_back(out[i]);
      p.stride_a.push_back(sa[i]);
      p.stride_b.push_back(sb[i]);
    }
  }
  if (p.size.empty()) {  // a single element
    p.size = {1};
    p.stride_a = {1};
    p.stride_b = {1};
  }
  return p;
}

// Calls f(out_offset, a_offset, a_step, b_offset, b_step, n) for runs of n
// consecutive output elements, in parallel; steps are 0 or 1.
template <typename F>
void ForEachRun(const BroadcastPlan& p, F f) {
  const int m = static_cast<int>(p.size.size());
  const int64_t inner = p.size[m - 1], sa = p.stride_a[m - 1], sb = p.stride_b[m - 1];
  if (p.total == 0) return;
  const int64_t chunks = (inner + kChunk - 1) / kChunk, items = (p.total / inner) * chunks;
#pragma omp parallel for schedule(static) if (p.total > kParallelMin)
  for (int64_t item = 0; item < items; ++item) {
    int64_t o = item / chunks;
    const int64_t c0 = (item % chunks) * kChunk, n = std::min(kChunk, inner - c0);
    const int64_t out_offset = o * inner + c0;
    int64_t oa = sa * c0, ob = sb * c0;
    for (int d = m - 2; d >= 0; --d) {
      const int64_t idx = o % p.size[d];
      o /= p.size[d];
      oa += idx * p.stride_a[d];
      ob += idx * p.stride_b[d];
    }
    f(out_offset, oa, sa, ob, sb, n);
  }
}

// d[i] = op(a[i * sa], b[i * sb]); one loop per stride pattern so each
// vectorizes.
template <typename Op>
void ApplyRun(Op op, const float* a, int64_t sa, const float* b, int64_t sb, float* d, int64_t n) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = op(a[i], b[i]);
  } else if (sa == 1) {
    const float bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = op(a[i], bv);
  } else if (sb == 1) {
    const float av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = op(av, b[i]);
  } else {
    std::fill_n(d, n, op(a[0], b[0]));
  }
}

enum class BinaryKind { kAdd, kSub, kMul, kDiv, kMax, kMin };

algorithm DnnlAlgorithm(BinaryKind kind) {
  switch (kind) {
    case BinaryKind::kAdd: return algorithm::binary_add;
    case BinaryKind::kSub: return algorithm::binary_sub;
    case BinaryKind::kMul: return algorithm::binary_mul;
    case BinaryKind::kDiv: return algorithm::binary_div;
    case BinaryKind::kMax: return algorithm::binary_max;
    case BinaryKind::kMin: return algorithm::binary_min;
  }
  return algorithm::binary_add;
}

template <typename Op>
absl::StatusOr<std::unique_ptr<Kernel>> LoopBinaryKernel(const KernelContext& k, Op op) {
  BroadcastPlan plan = MakeBroadcastPlan(k.out_shape(0), k.in_shape(0), k.in_shape(1));
  const float *a = k.in<float>(0), *b = k.in<float>(1);
  float* dst = k.out<float>(0);
  return MakeKernel([plan, a, b, dst, op](const RunContext&) {
    ForEachRun(plan, [&](int64_t o, int64_t oa, int64_t sa, int64_t ob, int64_t sb, int64_t n) {
      ApplyRun(op, a + oa, sa, b + ob, sb, dst + o, n);
    });
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> LoopBinaryKernel(const KernelContext& k, BinaryKind kind) {
  switch (kind) {
    case BinaryKind::kAdd: return LoopBinaryKernel(k, [](float x, float y) { return x + y; });
    case BinaryKind::kSub: return LoopBinaryKernel(k, [](float x, float y) { return x - y; });
    case BinaryKind::kMul: return LoopBinaryKernel(k, [](float x, float y) { return x * y; });
    case BinaryKind::kDiv: return LoopBinaryKernel(k, [](float x, float y) { return x / y; });
    case BinaryKind::kMax: return LoopBinaryKernel(k, [](float x, float y) { return x > y ? x : y; });
    case BinaryKind::kMin: return LoopBinaryKernel(k, [](float x, float y) { return x < y ? x : y; });
  }
  return absl::InternalError("unknown binary kind");
}

// The oneDNN binary primitive for these shapes, or nullptr if the loop should
// run instead (src0 would have to be broadcast, or only a reference kernel
// exists).
std::unique_ptr<Kernel> DnnlBinaryKernel(const KernelContext& k, BinaryKind kind) {
  const Shape& out = k.out_shape(0);
  if (out.rank() > DNNL_MAX_NDIMS) return nullptr;
  const Shape a = PadTo(k.in_shape(0), out.rank()), b = PadTo(k.in_shape(1), out.rank());
  void *src0 = k.inputs[0], *src1 = k.inputs[1];
  Shape shape1 = b;
  dnnl::post_ops post_ops;
  if (a != out) {
    const bool commutative = kind == BinaryKind::kAdd || kind == BinaryKind::kMul ||
                             kind == BinaryKind::kMax || kind == BinaryKind::kMin;
    if (b != out || !(commutative || kind == BinaryKind::kSub)) return nullptr;
    std::swap(src0, src1);
    shape1 = a;
    // a - b = -(b - a): exact, negation only flips the sign bit.
    if (kind == BinaryKind::kSub) post_ops.append_eltwise(1.0f, algorithm::eltwise_linear, -1.0f, 0.0f);
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(post_ops);
  const auto md0 = PlainDesc(out), md1 = PlainDesc(shape1);
  dnnl::binary::desc desc(DnnlAlgorithm(kind), md0, md1, md0);
  dnnl::binary::primitive_desc pd(desc, attr, CpuEngine());
  if (std::string(pd.impl_info_str()).starts_with("ref")) return nullptr;
  return std::make_unique<PrimitiveKernel>(
      dnnl::binary(pd), std::unordered_map<int, dnnl::memory>{{DNNL_ARG_SRC_0, MemoryAt(md0, src0)},
                                                              {DNNL_ARG_SRC_1, MemoryAt(md1, src1)},
                                                              {DNNL_ARG_DST, MemoryAt(md0, k.outputs[0])}});
}

KernelFn BinaryKernel(BinaryKind kind) {
  return [kind](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
    if (k.out_shape(0).NumElements() == 0) return nullptr;
    return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
      if (std::unique_ptr<Kernel> dnnl_kernel = DnnlBinaryKernel(k, kind)) return dnnl_kernel;
      return LoopBinaryKernel(k, kind);
    });
  };
}

// The gradient g (output-shaped) of input x: summed over the dims x was
// broadcast along, when x's shape differs from the output's.
Output SumToInput(const Scope& scope, Output g, Output x) {
  if (!g.valid() || g.shape() == x.shape()) return g;
  return SumToShapeOf(scope, g, x);
}

// Grad-check cases for a binary op: same shapes, b broadcast, a broadcast
// (the swapped oneDNN path), both broadcast (the loop), a scalar b.
std::vector<GradCheckCase> BinaryGradChecks(double a_lo, double a_hi, double b_lo, double b_hi) {
  auto make = [&](Shape a, Shape b) {
    return GradCheckCase{.inputs = {{.shape = a, .lo = a_lo, .hi = a_hi}, {.shape = b, .lo = b_lo, .hi = b_hi}}};
  };
  return {make({2, 3}, {2, 3}), make({2, 3}, {3}), make({1, 3}, {2, 3}), make({3, 1}, {2}), make({2, 2}, {})};
}

Output AddBinary(const Scope& scope, std::string_view op, Output a, Output b) {
  return scope.graph().AddNode1(scope, op, {a, b});
}

// ---------------------------------------------------------------- unary kernels

// The eltwise primitive's alpha and beta, from the node's attrs.
using EltwiseParams = std::function<std::pair<float, float>(const Node&)>;

// oneDNN 2.6's jit exp returns inf for NaN and clip_v2 returns lo (measured,
// jit:avx512_core): a NaN would become a number silently (a NaN gradient
// clipped by value would train on). For those, KeepNan puts NaN back where x
// is NaN, in a second pass over x (so the op must not run in place).
enum class NanFix { kNone, kKeepNan };

// dst[i] = src[i] where src[i] is NaN, after `primitive` wrote dst.
class NanKeepingKernel : public Kernel {
 public:
  NanKeepingKernel(std::unique_ptr<Kernel> primitive, const float* src, float* dst, int64_t n)
      : primitive_(std::move(primitive)), src_(src), dst_(dst), n_(n) {}
  absl::Status Run(const RunContext& ctx) override {
    GF_RETURN_IF_ERROR(primitive_->Run(ctx));
    const float* __restrict src = src_;
    float* __restrict dst = dst_;
#pragma omp simd
    for (int64_t i = 0; i < n_; ++i) dst[i] = src[i] != src[i] ? src[i] : dst[i];
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Kernel> primitive_;
  const float* src_;
  float* dst_;
  int64_t n_;
};

KernelFn EltwiseKernel(algorithm alg, EltwiseParams params = {}, NanFix nan_fix = NanFix::kNone) {
  return [alg, params, nan_fix](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
    const int64_t n = k.out_shape(0).NumElements();
    if (n == 0) return nullptr;
    // Named variables, not a structured binding: clang 14 (Debian 12, used by
    // tools/fuzz.sh) cannot capture bindings in lambdas.
    const std::pair<float, float> alpha_beta = params ? params(k.node) : std::pair<float, float>{0.0f, 0.0f};
    const float alpha = alpha_beta.first, beta = alpha_beta.second;
    return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const auto md = PlainDesc(Shape{n});  // elementwise: layout does not matter
      dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, md, alpha, beta);
      dnnl::eltwise_forward::primitive_desc pd(desc, CpuEngine());
      std::unique_ptr<Kernel> kernel = std::make_unique<PrimitiveKernel>(
          dnnl::eltwise_forward(pd), std::unordered_map<int, dnnl::memory>{
                                         {DNNL_ARG_SRC, MemoryAt(md, k.inputs[0])},
                                         {DNNL_ARG_DST, MemoryAt(md, k.outputs[0])}});
      if (nan_fix == NanFix::kNone) return kernel;
      return std::unique_ptr<Kernel>(new NanKeepingKernel(std::move(kernel), k.in<float>(0), k.out<float>(0), n));
    });
  };
}

// Clip's bounds: finite (lo <= hi is checked by its shape function).
std::vector<AttrDef> ClipAttrs() {
  return {RequiredAttr("lo", AttrType::kFloat).Finite(), RequiredAttr("hi", AttrType::kFloat).Finite()};
}

std::pair<float, float> ClipParams(const Node& node) {
  return {static_cast<float>(node.attr<double>("lo")), static_cast<float>(node.attr<double>("hi"))};
}

// Grad-check cases for a unary op: a few elements from [lo, hi].
std::vector<GradCheckCase> UnaryGradChecks(double lo, double hi, Attrs attrs = {}) {
  return {{.inputs = {{.shape = {2, 3}, .lo = lo, .hi = hi}}, .attrs = std::move(attrs)}};
}

Output AddUnary(const Scope& scope, std::string_view op, Output x, Attrs attrs = {}) {
  return scope.graph().AddNode1(scope, op, {x}, std::move(attrs));
}

}  // namespace

// ---------------------------------------------------------------- Add, Sub

// y = a + b: dy/da = dy/db = 1, so da = dy and db = dy, each summed back over
// the dims its input was broadcast along.
std::vector<Output> AddGrad(GradContext& g) {
  return {SumToInput(g.scope, g.dy[0], g.x(0)), SumToInput(g.scope, g.dy[0], g.x(1))};
}

GF_REGISTER_OP(OpDef{
    .name = "Add",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kAdd),
    .grad = AddGrad,
    .grad_checks = BinaryGradChecks(-1, 1, -1, 1),
});

// y = a - b: da = dy, db = -dy (summed back to each input's shape; the
// negation is applied after the sum, on the smaller tensor).
std::vector<Output> SubGrad(GradContext& g) {
  return {SumToInput(g.scope, g.dy[0], g.x(0)), Neg(g.scope, SumToInput(g.scope, g.dy[0], g.x(1)))};
}

GF_REGISTER_OP(OpDef{
    .name = "Sub",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kSub),
    .grad = SubGrad,
    .grad_checks = BinaryGradChecks(-1, 1, -1, 1),
});

// ---------------------------------------------------------------- Mul, Div

// y = a * b: da = dy * b, db = dy * a (summed back to each input's shape).
std::vector<Output> MulGrad(GradContext& g) {
  return {SumToInput(g.scope, Mul(g.scope, g.dy[0], g.x(1)), g.x(0)),
          SumToInput(g.scope, Mul(g.scope, g.dy[0], g.x(0)), g.x(1))};
}

GF_REGISTER_OP(OpDef{
    .name = "Mul",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kMul),
    .grad = MulGrad,
    .grad_checks = BinaryGradChecks(-1, 1, -1, 1),
});

// y = a / b: dy/da = 1/b, so da = dy / b;
//            dy/db = -a / b^2 = -(1/b) * (a/b) = -(1/b) * y,
// so db = -dy * a / b^2 = -(dy / b) * y, reusing da's dy / b and the output.
// Both are summed back to their input's shape.
std::vector<Output> DivGrad(GradContext& g) {
  Output dy_over_b = Div(g.scope, g.dy[0], g.x(1));
  return {SumToInput(g.scope, dy_over_b, g.x(0)),
          Neg(g.scope, SumToInput(g.scope, Mul(g.scope, dy_over_b, g.y()), g.x(1)))};
}

GF_REGISTER_OP(OpDef{
    .name = "Div",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kDiv),
    .grad = DivGrad,
    // b away from 0, where 1/b^2 is moderate.
    .grad_checks = BinaryGradChecks(-1, 1, 0.5, 2),
});

// ---------------------------------------------------------------- Maximum, Minimum

// y = max(a, b): dy goes to a where a >= b, to b elsewhere (ties go to a, as
// TensorFlow's Maximum gradient). Minimum: to a where a <= b. One backward
// node yields both output-shaped gradients; each is then summed back to its
// input's shape.
std::vector<Output> MaxMinGrad(GradContext& g, std::string_view grad_op) {
  std::vector<Output> d = g.scope.graph().AddNode(g.scope, grad_op, {g.dy[0], g.x(0), g.x(1)});
  if (d.size() != 2) return {Output{}, Output{}};
  return {SumToInput(g.scope, d[0], g.x(0)), SumToInput(g.scope, d[1], g.x(1))};
}

GF_REGISTER_OP(OpDef{
    .name = "Maximum",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kMax),
    .grad = [](GradContext& g) { return MaxMinGrad(g, "MaximumGrad"); },
    .grad_checks = BinaryGradChecks(-1, 1, -1, 1),
});

GF_REGISTER_OP(OpDef{
    .name = "Minimum",
    .num_inputs = 2,
    .infer = InferBroadcast,
    .kernel = BinaryKernel(BinaryKind::kMin),
    .grad = [](GradContext& g) { return MaxMinGrad(g, "MinimumGrad"); },
    .grad_checks = BinaryGradChecks(-1, 1, -1, 1),
});

namespace {

// Inputs dy (output-shaped), a, b; outputs da and db, both output-shaped.
absl::Status InferMaxMinGrad(InferContext& ctx) {
  for (int i = 0; i < 3; ++i) GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
  GF_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(ctx, 1, 2));
  if (shape != ctx.shape(0)) {
    return ctx.Error(absl::StrCat(ctx.Describe(0), " must have the shape inputs 1 and 2 broadcast to, ",
                                  shape.ToString()));
  }
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

KernelFn MaxMinGradKernel(bool maximum) {
  return [maximum](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
    BroadcastPlan plan = MakeBroadcastPlan(k.in_shape(0), k.in_shape(1), k.in_shape(2));
    const float *dy = k.in<float>(0), *a = k.in<float>(1), *b = k.in<float>(2);
    float *da = k.out<float>(0), *db = k.out<float>(1);
    return MakeKernel([=](const RunContext&) {
      ForEachRun(plan, [&](int64_t o, int64_t oa, int64_t sa, int64_t ob, int64_t sb, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          const float av = a[oa + i * sa], bv = b[ob + i * sb];
          const bool to_a = maximum ? av >= bv : av <= bv;
          da[o + i] = to_a ? dy[o + i] : 0.0f;
          db[o + i] = to_a ? 0.0f : dy[o + i];
        }
      });
      return absl::OkStatus();
    });
  };
}

}  // namespace

GF_REGISTER_OP(OpDef{
    .name = "MaximumGrad",
    .num_inputs = 3,
    .infer = InferMaxMinGrad,
    .kernel = MaxMinGradKernel(/*maximum=*/true),
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

GF_REGISTER_OP(OpDef{
    .name = "MinimumGrad",
    .num_inputs = 3,
    .infer = InferMaxMinGrad,
    .kernel = MaxMinGradKernel(/*maximum=*/false),
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

// ---------------------------------------------------------------- Neg, Scale

// y = -x: dx = -dy.
GF_REGISTER_OP(OpDef{
    .name = "Neg",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_linear,
                            [](const Node&) { return std::pair<float, float>{-1.0f, 0.0f}; }),
    .grad = [](GradContext& g) { return std::vector<Output>{Neg(g.scope, g.dy[0])}; },
    .grad_checks = UnaryGradChecks(-1, 1),
});

// y = alpha * x: dx = alpha * dy.
GF_REGISTER_OP(OpDef{
    .name = "Scale",
    .num_inputs = 1,
    .attrs = {RequiredAttr("alpha", AttrType::kFloat)},
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_linear,
                            [](const Node& n) {
                              return std::pair<float, float>{static_cast<float>(n.attr<double>("alpha")), 0.0f};
                            }),
    .grad = [](GradContext& g) {
      return std::vector<Output>{Scale(g.scope, g.dy[0], static_cast<float>(g.node.attr<double>("alpha")))};
    },
    .grad_checks = UnaryGradChecks(-1, 1, {{"alpha", 2.5}}),
});

// ---------------------------------------------------------------- Square, Sqrt

// y = x^2: dx = 2 * x * dy.
GF_REGISTER_OP(OpDef{
    .name = "Square",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_square),
    .grad = [](GradContext& g) {
      return std::vector<Output>{Mul(g.scope, g.dy[0], Scale(g.scope, g.x(0), 2.0f))};
    },
    .grad_checks = UnaryGradChecks(-1, 1),
});

// y = sqrt(x): dy/dx = 1 / (2 sqrt(x)) = 1 / (2y), so dx = dy / (2y), from the
// output (no second square root).
GF_REGISTER_OP(OpDef{
    .name = "Sqrt",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_sqrt),
    .grad = [](GradContext& g) {
      return std::vector<Output>{Div(g.scope, Scale(g.scope, g.dy[0], 0.5f), g.y())};
    },
    .grad_checks = UnaryGradChecks(0.5, 2),
});

// ---------------------------------------------------------------- Exp, Log

// y = e^x: dy/dx = e^x = y, so dx = dy * y.
GF_REGISTER_OP(OpDef{
    .name = "Exp",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_exp, {}, NanFix::kKeepNan),
    .grad = [](GradContext& g) { return std::vector<Output>{Mul(g.scope, g.dy[0], g.y())}; },
    .grad_checks = UnaryGradChecks(-1, 1),
});

// y = ln(x): dx = dy / x.
GF_REGISTER_OP(OpDef{
    .name = "Log",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_log),
    .grad = [](GradContext& g) { return std::vector<Output>{Div(g.scope, g.dy[0], g.x(0))}; },
    .grad_checks = UnaryGradChecks(0.5, 2),
});

// ---------------------------------------------------------------- Abs, Sign

// y = |x|: dy/dx = sign(x) (0 at x = 0), so dx = dy * sign(x).
GF_REGISTER_OP(OpDef{
    .name = "Abs",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = EltwiseKernel(algorithm::eltwise_abs),
    .grad = [](GradContext& g) { return std::vector<Output>{Mul(g.scope, g.dy[0], Sign(g.scope, g.x(0)))}; },
    // Both sides of the kink at 0, away from it.
    .grad_checks = {UnaryGradChecks(0.1, 1)[0], UnaryGradChecks(-1, -0.1)[0]},
});

// No oneDNN eltwise computes sign: a loop.
GF_REGISTER_OP(OpDef{
    .name = "Sign",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* src = k.in<float>(0);
      float* dst = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      return MakeKernel([src, dst, n](const RunContext&) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>((src[i] > 0.0f) - (src[i] < 0.0f));
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = "piecewise constant: its gradient is zero wherever it exists, so none flows",
});

// ---------------------------------------------------------------- Clip

// y = min(max(x, lo), hi): dy/dx = 1 where lo < x < hi, else 0, so dx = dy
// masked by the open interval. (oneDNN's clip_v2 backward; TensorFlow's
// clip_by_value passes the gradient at x == lo and x == hi too, a set of
// measure zero.)
GF_REGISTER_OP(OpDef{
    .name = "Clip",
    .num_inputs = 1,
    .attrs = ClipAttrs(),
    .infer = [](InferContext& ctx) {
      const double lo = ctx.node().attr<double>("lo"), hi = ctx.node().attr<double>("hi");
      if (!(lo <= hi)) return ctx.Error(absl::StrCat("needs lo <= hi, got lo = ", lo, ", hi = ", hi));
      return SameAsInput0(ctx);
    },
    .kernel = EltwiseKernel(algorithm::eltwise_clip_v2, ClipParams, NanFix::kKeepNan),
    .grad = [](GradContext& g) {
      return std::vector<Output>{g.scope.graph().AddNode1(
          g.scope, "ClipGrad", {g.dy[0], g.x(0)},
          {{"lo", g.node.attr<double>("lo")}, {"hi", g.node.attr<double>("hi")}})};
    },
    // Inside the interval, below it and above it, away from the kinks at +-0.5.
    .grad_checks = {UnaryGradChecks(-0.45, 0.45, {{"lo", -0.5}, {"hi", 0.5}})[0],
                    UnaryGradChecks(-1, -0.55, {{"lo", -0.5}, {"hi", 0.5}})[0],
                    UnaryGradChecks(0.55, 1, {{"lo", -0.5}, {"hi", 0.5}})[0]},
});

// Inputs dy, x; output dx = dy where lo < x < hi, else 0.
GF_REGISTER_OP(OpDef{
    .name = "ClipGrad",
    .num_inputs = 2,
    .attrs = ClipAttrs(),
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
      if (ctx.shape(0) != ctx.shape(1)) {
        return ctx.Error(absl::StrCat(ctx.Describe(0), " and ", ctx.Describe(1), " must have the same shape"));
      }
      return SameAsInput0(ctx);
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const int64_t n = k.out_shape(0).NumElements();
      if (n == 0) return nullptr;
      const std::pair<float, float> lo_hi = ClipParams(k.node);  // no binding: see EltwiseKernel
      const float lo = lo_hi.first, hi = lo_hi.second;
      return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
        const auto md = PlainDesc(Shape{n});
        dnnl::eltwise_forward::desc hint_desc(dnnl::prop_kind::forward_training, algorithm::eltwise_clip_v2,
                                              md, lo, hi);
        dnnl::eltwise_forward::primitive_desc hint(hint_desc, CpuEngine());
        dnnl::eltwise_backward::desc desc(algorithm::eltwise_clip_v2, md, md, lo, hi);
        dnnl::eltwise_backward::primitive_desc pd(desc, CpuEngine(), hint);
        return std::make_unique<PrimitiveKernel>(
            dnnl::eltwise_backward(pd), std::unordered_map<int, dnnl::memory>{
                                            {DNNL_ARG_DIFF_DST, MemoryAt(md, k.inputs[0])},
                                            {DNNL_ARG_SRC, MemoryAt(md, k.inputs[1])},
                                            {DNNL_ARG_DIFF_SRC, MemoryAt(md, k.outputs[0])}});
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

// ---------------------------------------------------------------- builders

Output Add(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Add", a, b); }
Output Sub(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Sub", a, b); }
Output Mul(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Mul", a, b); }
Output Div(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Div", a, b); }
Output Maximum(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Maximum", a, b); }
Output Minimum(const Scope& scope, Output a, Output b) { return AddBinary(scope, "Minimum", a, b); }

Output Add(const Scope& scope, Output a, float b) { return Add(scope, a, Scalar(scope, b)); }
Output Sub(const Scope& scope, Output a, float b) { return Sub(scope, a, Scalar(scope, b)); }
Output Sub(const Scope& scope, float a, Output b) { return Sub(scope, Scalar(scope, a), b); }
Output Mul(const Scope& scope, Output a, float b) { return Mul(scope, a, Scalar(scope, b)); }
Output Div(const Scope& scope, Output a, float b) { return Div(scope, a, Scalar(scope, b)); }
Output Div(const Scope& scope, float a, Output b) { return Div(scope, Scalar(scope, a), b); }
Output Maximum(const Scope& scope, Output a, float b) { return Maximum(scope, a, Scalar(scope, b)); }
Output Minimum(const Scope& scope, Output a, float b) { return Minimum(scope, a, Scalar(scope, b)); }

Output Neg(const Scope& scope, Output x) { return AddUnary(scope, "Neg", x); }
Output Square(const Scope& scope, Output x) { return AddUnary(scope, "Square", x); }
Output Sqrt(const Scope& scope, Output x) { return AddUnary(scope, "Sqrt", x); }
Output Exp(const Scope& scope, Output x) { return AddUnary(scope, "Exp", x); }
Output Log(const Scope& scope, Output x) { return AddUnary(scope, "Log", x); }
Output Abs(const Scope& scope, Output x) { return AddUnary(scope, "Abs", x); }
Output Sign(const Scope& scope, Output x) { return AddUnary(scope, "Sign", x); }
Output Clip(const Scope& scope, Output x, float lo, float hi) {
  return AddUnary(scope, "Clip", x, {{"lo", double(lo)}, {"hi", double(hi)}});
}
Output Scale(const Scope& scope, Output x, float alpha) {
  return AddUnary(scope, "Scale", x, {{"alpha", double(alpha)}});
}

}  // namespace gradflow::ops
