#include "ops/metric_statistics.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"
#include "ops/targets.h"

// Plain sequential loops in double: the inputs are one batch of a model's
// outputs (tiny next to the forward pass), and one fixed order gives the
// same sums at any thread count.

namespace gradflow::ops {
namespace {

constexpr char kNoGradientReason[] =
    "metric statistics are evaluated, never differentiated (piecewise constant or reported only)";

// Keras's backend.epsilon(), the floor of mean_absolute_percentage_error's divisor.
constexpr double kKerasEpsilon = 1e-7;

// ---------------------------------------------------------------- MeanErrorStatistics

constexpr const char* kErrorKinds[] = {"absolute", "squared", "absolute_percentage"};

double ErrorOf(int kind, double t, double y) {
  switch (kind) {
    case 0: return std::abs(t - y);
    case 1: return (t - y) * (t - y);
    default: return 100.0 * std::abs(t - y) / std::max(std::abs(t), kKerasEpsilon);
  }
}

int ErrorKind(const Node& node) {
  const std::string& kind = node.attr<std::string>("kind");
  for (int i = 0; i < 3; ++i) {
    if (kind == kErrorKinds[i]) return i;
  }
  return -1;
}

GF_REGISTER_OP(OpDef{
    .name = "MeanErrorStatistics",
    .num_inputs = 2,  // targets, y
    .attrs = {RequiredAttr("kind", AttrType::kString)},
    .infer = [](InferContext& ctx) {
      if (ErrorKind(ctx.node()) < 0) {
        return ctx.Error(absl::StrCat("kind is '", ctx.node().attr<std::string>("kind"),
                                      "'; use absolute, squared or absolute_percentage"));
      }
      GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, /*sparse=*/false));
      ctx.AddOutput(DType::kF32, Shape{2});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      const RowsAndDepth shape = Rows(k.in_shape(1));
      const int64_t rows = shape.rows, depth = shape.depth;
      const float* t = k.in<const float>(0);
      const float* y = k.in<const float>(1);
      float* dst = k.out<float>(0);
      const int kind = ErrorKind(k.node);
      return MakeKernel([=](const RunContext&) {
        double sum = 0;
        for (int64_t r = 0; r < rows; ++r) {
          double row = 0;
          for (int64_t j = 0; j < depth; ++j) row += ErrorOf(kind, t[r * depth + j], y[r * depth + j]);
          sum += row / double(depth);
        }
        dst[0] = static_cast<float>(sum);
        dst[1] = static_cast<float>(rows);
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

// ---------------------------------------------------------------- TopKStatistics

// Whether class `target` is in the top k of the n values x (ties count in).
bool InTopK(const float* x, int64_t n, int64_t target, int64_t k) {
  if (target < 0 || target >= n) return false;
  int64_t higher = 0;
  for (int64_t j = 0; j < n; ++j) higher += x[j] > x[target] ? 1 : 0;
  return higher < k;
}

int64_t ArgmaxRow(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j) {
    if (x[j] > x[best]) best = j;
  }
  return best;
}

GF_REGISTER_OP(OpDef{
    .name = "TopKStatistics",
    .num_inputs = 2,  // targets (one-hot f32, or labels i32 with sparse), y
    .attrs = {RequiredAttr("k", AttrType::kInt).AtLeast(1), OptionalAttr("sparse", false)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, ctx.node().attr<bool>("sparse")));
      const Shape& y = ctx.shape(1);
      const int64_t k = ctx.node().attr<int64_t>("k");
      if (y.rank() < 2 || k > y[y.rank() - 1]) {
        return ctx.Error(absl::StrCat("k = ", k, " is more than the ", y.rank() < 2 ? 0 : y[y.rank() - 1],
                                      " classes of ", ctx.Describe(1), "; use k <= the number of classes"));
      }
      ctx.AddOutput(DType::kF32, Shape{2});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      const RowsAndDepth shape = Rows(k.in_shape(1));
      const int64_t rows = shape.rows, depth = shape.depth;
      const bool sparse = k.node.attr<bool>("sparse");
      const int64_t top = k.node.attr<int64_t>("k");
      const void* targets = k.inputs[0];
      const float* y = k.in<const float>(1);
      float* dst = k.out<float>(0);
      return MakeKernel([=](const RunContext&) {
        int64_t hits = 0;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t target = sparse ? static_cast<const int32_t*>(targets)[r]
                                        : ArgmaxRow(static_cast<const float*>(targets) + r * depth, depth);
          hits += InTopK(y + r * depth, depth, target, top) ? 1 : 0;
        }
        dst[0] = static_cast<float>(hits);
        dst[1] = static_cast<float>(rows);
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

// ---------------------------------------------------------------- ConfusionStatistics

GF_REGISTER_OP(OpDef{
    .name = "ConfusionStatistics",
    .num_inputs = 2,  // targets, y
    .attrs = {RequiredAttr("thresholds", AttrType::kTensor), OptionalAttr("soft_labels", false)},
    .infer = [](InferContext& ctx) {
      const Tensor& thresholds = ctx.node().attr<Tensor>("thresholds");
      if (thresholds.dtype() != DType::kF32 || thresholds.shape().rank() != 1 || thresholds.shape()[0] < 1) {
        return ctx.Error(absl::StrCat("thresholds must be f32 [T] with T >= 1, got ",
                                      TensorType{thresholds.dtype(), thresholds.shape()}.ToString()));
      }
      GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, /*sparse=*/false));
      ctx.AddOutput(DType::kF32, Shape{thresholds.shape()[0], 4});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      const Tensor thresholds = k.node.attr<Tensor>("thresholds");
      const int64_t n = k.in_shape(1).NumElements();
      const bool soft = k.node.attr<bool>("soft_labels");
      const float* t = k.in<const float>(0);
      const float* y = k.in<const float>(1);
      float* dst = k.out<float>(0);
      return MakeKernel([=](const RunContext&) {
        const float* thr = thresholds.data<float>();
        const int64_t count = thresholds.shape()[0];
        std::vector<double> c(4 * count, 0.0);  // tp, fp, tn, fn
        for (int64_t i = 0; i < n; ++i) {
          const double pos = soft ? t[i] : (t[i] != 0 ? 1.0 : 0.0);
          const double neg = soft ? 1.0 - t[i] : 1.0 - pos;
          for (int64_t j = 0; j < count; ++j) {
            const bool predicted = y[i] > thr[j];
            c[4 * j + (predicted ? 0 : 3)] += pos;
            c[4 * j + (predicted ? 1 : 2)] += neg;
          }
        }
        for (int64_t j = 0; j < 4 * count; ++j) dst[j] = static_cast<float>(c[j]);
        return absl::OkStatus();
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = kNoGradientReason,
});

}  // namespace

Output MeanErrorStatistics(const Scope& scope, Output targets, Output y, const std::string& kind) {
  return scope.graph().AddNode1(scope, "MeanErrorStatistics", {targets, y}, {{"kind", kind}});
}

Output TopKStatistics(const Scope& scope, Output targets, Output y, int64_t k, bool sparse) {
  return scope.graph().AddNode1(scope, "TopKStatistics", {targets, y}, {{"k", k}, {"sparse", sparse}});
}

Output ConfusionStatistics(const Scope& scope, Output targets, Output y, const Tensor& thresholds,
                           bool soft_labels) {
  return scope.graph().AddNode1(scope, "ConfusionStatistics", {targets, y},
                                {{"thresholds", thresholds}, {"soft_labels", soft_labels}});
}

}  // namespace gradflow::ops
