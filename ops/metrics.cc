#include "ops/metrics.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"
#include "ops/targets.h"

// Plain OpenMP loops: each output element (or row) is independent, and counts
// are integer sums, exact in any order, so results do not depend on the
// thread count.

namespace gradflow::ops {
namespace {

constexpr char kNoGradientReason[] =
    "metrics are piecewise constant (zero gradient almost everywhere); they stop gradients";

// Index of the first largest of n values spaced `stride` apart (tf.argmax).
template <typename T>
int32_t ArgmaxOf(const T* x, int64_t n, int64_t stride = 1) {
  int32_t best = 0;
  for (int64_t j = 1; j < n; ++j) {
    if (x[j * stride] > x[best * stride]) best = static_cast<int32_t>(j);
  }
  return best;
}

// ---------------------------------------------------------------- Argmax

int NormalizedAxis(const Node& node, int rank) {
  int64_t axis = node.attr<int64_t>("axis");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

template <typename T>
void ArgmaxLoop(const void* src, int32_t* dst, int64_t outer, int64_t n, int64_t inner) {
  const T* x = static_cast<const T*>(src);
#pragma omp parallel for schedule(static) if (outer * n * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) dst[o * inner + i] = ArgmaxOf(x + o * n * inner + i, n, inner);
  }
}

GF_REGISTER_OP(OpDef{
    .name = "Argmax",
    .num_inputs = 1,
    .attrs = {OptionalAttr("axis", int64_t{-1})},
    .infer = [](InferContext& ctx) {
      const Shape& x = ctx.shape(0);
      const int axis = NormalizedAxis(ctx.node(), x.rank());
      if (axis < 0 || axis >= x.rank()) {
        return ctx.Error(absl::StrCat("axis ", ctx.node().attr<int64_t>("axis"),
                                      " is out of range for ", ctx.Describe(0)));
      }
      if (x[axis] == 0) return ctx.Error(absl::StrCat("axis ", axis, " of ", ctx.Describe(0), " is empty"));
      std::vector<int64_t> dims = x.dims();
      dims.erase(dims.begin() + axis);
      ctx.AddOutput(DType::kI32, Shape(dims));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      const Shape& x = k.in_shape(0);
      const int axis = NormalizedAxis(k.node, x.rank());
      int64_t outer = 1, inner = 1;
      for (int i = 0; i < axis; ++i) outer *= x[i];
      for (int i = axis + 1; i < x.rank(); ++i) inner *= x[i];
      const int64_t n = x[axis];
      const void* src = k.inputs[0];
      int32_t* dst = k.out<int32_t>(0);
      const DType dtype = k.input_types[0].dtype;
      return MakeKernel([=](const RunContext&) {
        VisitDType(dtype, [&](auto zero) { ArgmaxLoop<decltype(zero)>(src, dst, outer, n, inner); });
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = "an index output (i32) has no gradient",
});

// ---------------------------------------------------------------- Equal

template <typename T>
void EqualLoop(const void* a, const void* b, float* dst, int64_t n) {
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dst[i] = x[i] == y[i] ? 1.0f : 0.0f;
}

GF_REGISTER_OP(OpDef{
    .name = "Equal",
    .num_inputs = 2,
    .infer = [](InferContext& ctx) {
      if (ctx.dtype(0) != ctx.dtype(1)) {
        return ctx.Error(absl::StrCat("inputs must have the same dtype: ", ctx.Describe(0), " vs ",
                                      ctx.Describe(1)));
      }
      if (!ctx.shape(0).SameUpToBatch(ctx.shape(1))) {
        return ctx.Error(absl::StrCat("inputs must have the same shape (no broadcasting): ",
                                      ctx.Describe(0), " vs ", ctx.Describe(1)));
      }
      Shape out = ctx.shape(0);
      if (out.rank() > 0 && out[0] < 0) out[0] = ctx.shape(1)[0];
      ctx.AddOutput(DType::kF32, out);
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      const void* a = k.inputs[0];
      const void* b = k.inputs[1];
      float* dst = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      const DType dtype = k.input_types[0].dtype;
      return MakeKernel([=](const RunContext&) {
        VisitDType(dtype, [&](auto zero) { EqualLoop<decltype(zero)>(a, b, dst, n); });
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

// ---------------------------------------------------------------- accuracies

// Attr "statistics": false, the batch's fraction (scalar f32); true, the
// streaming metric's statistics f32 [2] = {hits, n} (nn/metrics.h sums them
// over the batches).
AttrDef StatisticsAttr() { return OptionalAttr("statistics", false); }

absl::Status InferAccuracy(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, sparse));
  ctx.AddOutput(DType::kF32, ctx.node().attr<bool>("statistics") ? Shape{2} : Shape{});
  return absl::OkStatus();
}

// With `counts`: out = {hits, n}; else *out = hits / n (0 for n = 0), hits
// the number of i in [0, n) with hit(i).
template <typename Hit>
absl::StatusOr<std::unique_ptr<Kernel>> FractionKernel(const Node& node, float* out, int64_t n, int64_t work,
                                                       Hit hit) {
  const bool counts = node.attr<bool>("statistics");
  return MakeKernel([=](const RunContext&) {
    int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count) if (work > kParallelMin)
    for (int64_t i = 0; i < n; ++i) count += hit(i) ? 1 : 0;
    if (counts) {
      out[0] = static_cast<float>(count);
      out[1] = static_cast<float>(n);
    } else {
      *out = n == 0 ? 0.0f : static_cast<float>(double(count) / double(n));
    }
    return absl::OkStatus();
  });
}

// Keras sparse_categorical_accuracy: argmax(y) == label, averaged over rows. A
// label outside [0, C) simply never matches.
GF_REGISTER_OP(OpDef{
    .name = "SparseCategoricalAccuracy",
    .num_inputs = 2,  // labels, y
    .attrs = {StatisticsAttr()},
    .infer = [](InferContext& ctx) { return InferAccuracy(ctx, /*sparse=*/true); },
    .kernel = [](const KernelContext& k) {
      const auto [rows, depth] = Rows(k.in_shape(1));
      const int32_t* labels = k.in<const int32_t>(0);
      const float* y = k.in<const float>(1);
      const int64_t c = depth;
      return FractionKernel(k.node, k.out<float>(0), rows, rows * depth,
                            [=](int64_t r) { return ArgmaxOf(y + r * c, c) == labels[r]; });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

// Keras binary_accuracy: (y > threshold) == targets, averaged over the last
// axis then over the rest; with rows of equal length that is the fraction of
// all elements.
GF_REGISTER_OP(OpDef{
    .name = "BinaryAccuracy",
    .num_inputs = 2,  // targets, y
    .attrs = {OptionalAttr("threshold", 0.5), StatisticsAttr()},
    .infer = [](InferContext& ctx) { return InferAccuracy(ctx, /*sparse=*/false); },
    .kernel = [](const KernelContext& k) {
      const int64_t n = k.in_shape(1).NumElements();
      const float* t = k.in<const float>(0);
      const float* y = k.in<const float>(1);
      const float threshold = static_cast<float>(k.node.attr<double>("threshold"));
      return FractionKernel(k.node, k.out<float>(0), n, n, [=](int64_t i) {
        return (y[i] > threshold ? 1.0f : 0.0f) == t[i];
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

// Keras categorical_accuracy: argmax(onehot) == argmax(y), averaged over rows.
GF_REGISTER_OP(OpDef{
    .name = "CategoricalAccuracy",
    .num_inputs = 2,  // onehot, y
    .attrs = {StatisticsAttr()},
    .infer = [](InferContext& ctx) { return InferAccuracy(ctx, /*sparse=*/false); },
    .kernel = [](const KernelContext& k) {
      const auto [rows, depth] = Rows(k.in_shape(1));
      const float* t = k.in<const float>(0);
      const float* y = k.in<const float>(1);
      const int64_t c = depth;
      return FractionKernel(k.node, k.out<float>(0), rows, rows * depth, [=](int64_t r) {
        return ArgmaxOf(t + r * c, c) == ArgmaxOf(y + r * c, c);
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

}  // namespace

// ---------------------------------------------------------------- builders

Output Argmax(const Scope& scope, Output x, int axis) {
  return scope.graph().AddNode1(scope, "Argmax", {x}, {{"axis", int64_t{axis}}});
}

Output Equal(const Scope& scope, Output a, Output b) {
  return scope.graph().AddNode1(scope, "Equal", {a, b});
}

Output SparseCategoricalAccuracy(const Scope& scope, Output labels, Output y, bool statistics) {
  return scope.graph().AddNode1(scope, "SparseCategoricalAccuracy", {labels, y}, {{"statistics", statistics}});
}

Output BinaryAccuracy(const Scope& scope, Output targets, Output y, double threshold, bool statistics) {
  return scope.graph().AddNode1(scope, "BinaryAccuracy", {targets, y},
                                {{"threshold", threshold}, {"statistics", statistics}});
}

Output CategoricalAccuracy(const Scope& scope, Output onehot, Output y, bool statistics) {
  return scope.graph().AddNode1(scope, "CategoricalAccuracy", {onehot, y}, {{"statistics", statistics}});
}

}  // namespace gradflow::ops
