#include "ops/losses.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"
#include "ops/targets.h"

// Every loss here is one fused op with the layout of Keras's
// LossFunctionWrapper + SUM_OVER_BATCH_SIZE: y is viewed as [rows, depth]
// (depth = its last dimension), a per-row loss ℓ_r is computed, and the output
// is L = (1/rows) Σ_r ℓ_r. Rows are independent (an OpenMP loop over rows, each
// row serial); the final sum over rows is serial in double, so results do not
// depend on the thread count. Each loss has a "<Loss>Grad" op with inputs
// (targets, y, dL) computing dL · ∂L/∂y elementwise.

namespace gradflow::ops {
namespace {

constexpr char kBackwardOpReason[] = "backward op; second derivatives are not supported";

bool FromLogits(const Node& node) { return node.attr<bool>("from_logits"); }

absl::Status InferLoss(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, sparse));
  ctx.AddOutput(DType::kF32, Shape{});
  return absl::OkStatus();
}

absl::Status InferLossGrad(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, sparse));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(2, DType::kF32));
  if (ctx.shape(2).NumElements() != 1) {
    return ctx.Error(absl::StrCat("the loss gradient must be a scalar, got ", ctx.Describe(2)));
  }
  ctx.AddOutput(DType::kF32, ctx.shape(1));
  return absl::OkStatus();
}

// Checks every label is a class index in [0, depth).
absl::Status CheckLabels(const Node& node, const int32_t* labels, int64_t rows, int64_t depth) {
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || labels[r] >= depth) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node '", node.name, "' (", node.op_name(), "): label ", labels[r], " in row ", r,
          " is outside [0, ", depth, "): the predictions have C = ", depth,
          " classes, so labels must be class indices 0..", depth - 1));
    }
  }
  return absl::OkStatus();
}

// A loss kernel: `row_loss(r)` computes ℓ_r for row r; the output is their
// mean. `prepare` (may be empty) validates the inputs first.
template <typename RowLoss>
absl::StatusOr<std::unique_ptr<Kernel>> MeanOverRows(const KernelContext& k, RowLoss row_loss,
                                                     std::function<absl::Status()> prepare = {}) {
  const RowsAndDepth rows_depth = Rows(k.in_shape(1));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  float* out = k.out<float>(0);
  auto per_row = std::make_shared<std::vector<double>>(rows);
  return MakeKernel([=](const RunContext&) -> absl::Status {
    if (prepare) GF_RETURN_IF_ERROR(prepare());
    double* losses = per_row->data();
#pragma omp parallel for schedule(static) if (rows * depth > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) losses[r] = row_loss(r);
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) sum += losses[r];
    // Keras divides by the number of samples; an empty batch gives 0, not NaN.
    *out = rows == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(rows));
    return absl::OkStatus();
  });
}

// A gradient kernel: `row_grad(r, scale, dy_row)` writes ∂ℓ_r/∂y_r · scale
// into the row, with scale = dL / rows.
template <typename RowGrad>
absl::StatusOr<std::unique_ptr<Kernel>> GradOverRows(const KernelContext& k, RowGrad row_grad,
                                                     std::function<absl::Status()> prepare = {}) {
  const RowsAndDepth rows_depth = Rows(k.in_shape(1));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  const float* dloss = k.in<const float>(2);
  float* dy = k.out<float>(0);
  return MakeKernel([=](const RunContext&) -> absl::Status {
    if (prepare) GF_RETURN_IF_ERROR(prepare());
    if (rows == 0) return absl::OkStatus();
    const float scale = *dloss / static_cast<float>(rows);
#pragma omp parallel for schedule(static) if (rows * depth > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) row_grad(r, scale, dy + r * depth);
    return absl::OkStatus();
  });
}

// log Σ_j exp(x_j) of one row, shifted by its max for stability; also returns
// the max and Σ exp(x_j − max) for the softmax of the gradient.
struct LogSumExp {
  float max, sum, value;
};
LogSumExp RowLogSumExp(const float* x, int64_t depth) {
  float m = x[0];
  for (int64_t j = 1; j < depth; ++j) m = std::max(m, x[j]);
  float s = 0;
  for (int64_t j = 0; j < depth; ++j) s += std::exp(x[j] - m);
  return {m, s, m + std::log(s)};
}

bool Clipped(float p) { return p < kLossEpsilon || p > 1.0f - kLossEpsilon; }
float Clip(float p) { return std::clamp(p, kLossEpsilon, 1.0f - kLossEpsilon); }

Attrs LogitsAttr(bool from_logits) { return {{"from_logits", from_logits}}; }

// One loss: the forward op `name` (targets, y) -> L and its gradient op
// `name + "Grad"` (targets, y, dL) -> dL · ∂L/∂y. Both share the input
// checks; only the kernels and the gradient-check cases differ per loss.
struct LossFamily {
  std::string name;
  bool sparse = false;  // targets are i32 class indices
  KernelFn kernel, grad_kernel;
  std::vector<GradCheckCase> grad_checks;
};

bool RegisterLossOps(LossFamily family) {
  const std::string grad_name = family.name + "Grad";
  const bool sparse = family.sparse;
  RegisterOp(OpDef{
      .name = family.name,
      .num_inputs = 2,  // targets, y
      .attrs = {OptionalAttr("from_logits", false)},
      .infer = [sparse](InferContext& ctx) { return InferLoss(ctx, sparse); },
      .kernel = std::move(family.kernel),
      // Loss targets are data: they get no gradient (see losses.h).
      .grad = [grad_name](GradContext& g) -> std::vector<Output> {
        return {Output{}, g.scope.graph().AddNode1(g.scope, grad_name, {g.x(0), g.x(1), g.dy[0]}, g.node.attrs)};
      },
      .grad_checks = std::move(family.grad_checks),
  });
  return RegisterOp(OpDef{
      .name = grad_name,
      .num_inputs = 3,  // targets, y, dL
      .attrs = {OptionalAttr("from_logits", false)},
      .infer = [sparse](InferContext& ctx) { return InferLossGrad(ctx, sparse); },
      .kernel = std::move(family.grad_kernel),
      .no_gradient_reason = kBackwardOpReason,
  });
}

// ---------------------------------------------------------------- sparse categorical

// From logits x, with s = softmax(x) and label l:
//   ℓ = logsumexp(x) − x_l,        ∂ℓ/∂x_k = s_k − [k = l].
// From probabilities p (Keras's TensorFlow backend clips, takes the log and
// feeds it to sparse_softmax_cross_entropy_with_logits), c = clip(p, eps, 1 − eps):
//   ℓ = log Σ_j c_j − log c_l,     ∂ℓ/∂p_k = 1/Σ_j c_j − [k = l]/c_l, or 0 where p_k
//   is clipped (clip_by_value passes no gradient outside its interval).
absl::StatusOr<std::unique_ptr<Kernel>> SparseCceKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const int32_t* labels = k.in<const int32_t>(0);
  const float* y = k.in<const float>(1);
  const Node* node = &k.node;
  const int64_t num_labels = k.in_shape(0).NumElements();
  auto check = [=] { return CheckLabels(*node, labels, num_labels, depth); };
  if (FromLogits(k.node)) {
    return MeanOverRows(k, [=](int64_t r) {
      const float* x = y + r * depth;
      return double(RowLogSumExp(x, depth).value - x[labels[r]]);
    }, check);
  }
  return MeanOverRows(k, [=](int64_t r) {
    const float* p = y + r * depth;
    double sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += Clip(p[j]);
    return std::log(sum) - std::log(double(Clip(p[labels[r]])));
  }, check);
}

absl::StatusOr<std::unique_ptr<Kernel>> SparseCceGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const int32_t* labels = k.in<const int32_t>(0);
  const float* y = k.in<const float>(1);
  const Node* node = &k.node;
  const int64_t num_labels = k.in_shape(0).NumElements();
  auto check = [=] { return CheckLabels(*node, labels, num_labels, depth); };
  if (FromLogits(k.node)) {
    return GradOverRows(k, [=](int64_t r, float scale, float* dx) {
      const float* x = y + r * depth;
      const LogSumExp lse = RowLogSumExp(x, depth);
      const float inv_sum = 1.0f / lse.sum;
      for (int64_t j = 0; j < depth; ++j) dx[j] = scale * std::exp(x[j] - lse.max) * inv_sum;
      dx[labels[r]] -= scale;
    }, check);
  }
  return GradOverRows(k, [=](int64_t r, float scale, float* dp) {
    const float* p = y + r * depth;
    float sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += Clip(p[j]);
    const float inv_sum = 1.0f / sum;
    for (int64_t j = 0; j < depth; ++j) dp[j] = Clipped(p[j]) ? 0.0f : scale * inv_sum;
    const int32_t l = labels[r];
    if (!Clipped(p[l])) dp[l] -= scale / p[l];
  }, check);
}

[[maybe_unused]] const bool kSparseCceRegistered = RegisterLossOps({
    .name = "SparseCategoricalCrossentropy",
    .sparse = true,
    .kernel = SparseCceKernel,
    .grad_kernel = SparseCceGradKernel,
    .grad_checks = {{.inputs = {{.dtype = DType::kI32, .shape = {3}, .lo = 0, .hi = 4},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.dtype = DType::kI32, .shape = {3}, .lo = 0, .hi = 4},
                                {.shape = {3, 4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)}},
});

// ---------------------------------------------------------------- categorical

// From logits x, targets t (rows need not sum to 1), s = softmax(x):
//   ℓ = Σ_j t_j (logsumexp(x) − x_j),   ∂ℓ/∂x_k = (Σ_j t_j) s_k − t_k.
// From probabilities p (Keras): q = p / Σ p, c = clip(q, eps, 1 − eps),
//   ℓ = −Σ_j t_j log c_j. With g_j = ∂ℓ/∂q_j = −t_j / c_j (0 where q_j is
//   clipped) and ∂q_j/∂p_k = ([j = k] − q_j) / Σ p:
//   ∂ℓ/∂p_k = (g_k − Σ_j g_j q_j) / Σ p.
absl::StatusOr<std::unique_ptr<Kernel>> CceKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  if (FromLogits(k.node)) {
    return MeanOverRows(k, [=](int64_t r) {
      const float* x = y + r * depth;
      const float* tr = t + r * depth;
      const float lse = RowLogSumExp(x, depth).value;
      double loss = 0;
      for (int64_t j = 0; j < depth; ++j) loss += double(tr[j]) * (lse - x[j]);
      return loss;
    });
  }
  return MeanOverRows(k, [=](int64_t r) {
    const float* p = y + r * depth;
    const float* tr = t + r * depth;
    float sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += p[j];
    double loss = 0;
    for (int64_t j = 0; j < depth; ++j) loss -= double(tr[j]) * std::log(Clip(p[j] / sum));
    return loss;
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> CceGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  if (FromLogits(k.node)) {
    return GradOverRows(k, [=](int64_t r, float scale, float* dx) {
      const float* x = y + r * depth;
      const float* tr = t + r * depth;
      const LogSumExp lse = RowLogSumExp(x, depth);
      float t_sum = 0;
      for (int64_t j = 0; j < depth; ++j) t_sum += tr[j];
      const float inv_sum = 1.0f / lse.sum;
      for (int64_t j = 0; j < depth; ++j) {
        dx[j] = scale * (t_sum * std::exp(x[j] - lse.max) * inv_sum - tr[j]);
      }
    });
  }
  return GradOverRows(k, [=](int64_t r, float scale, float* dp) {
    const float* p = y + r * depth;
    const float* tr = t + r * depth;
    float sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += p[j];
    float g_dot_q = 0;
    for (int64_t j = 0; j < depth; ++j) {
      const float q = p[j] / sum;
      dp[j] = Clipped(q) ? 0.0f : -tr[j] / q;  // g_j, for now
      g_dot_q += dp[j] * q;
    }
    for (int64_t j = 0; j < depth; ++j) dp[j] = scale * (dp[j] - g_dot_q) / sum;
  });
}

[[maybe_unused]] const bool kCceRegistered = RegisterLossOps({
    .name = "CategoricalCrossentropy",
    .kernel = CceKernel,
    .grad_kernel = CceGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)}},
});

// ---------------------------------------------------------------- binary

// Per element, then averaged over the last axis (depth):
// From logits x (tf.nn.sigmoid_cross_entropy_with_logits' stable form):
//   e = max(x, 0) − x·t + log(1 + exp(−|x|)),   ∂e/∂x = sigmoid(x) − t.
// From probabilities p (Keras 2 backend.binary_crossentropy), c = clip(p, eps, 1 − eps):
//   e = −(t·log(c + eps) + (1 − t)·log(1 − c + eps)),
//   ∂e/∂p = −t/(c + eps) + (1 − t)/(1 − c + eps), or 0 where p is clipped.
float BinaryLogitsLoss(float x, float t) { return std::max(x, 0.0f) - x * t + std::log1p(std::exp(-std::abs(x))); }
float BinaryProbsLoss(float p, float t) {
  const float c = Clip(p);
  return -(t * std::log(c + kLossEpsilon) + (1 - t) * std::log(1 - c + kLossEpsilon));
}

absl::StatusOr<std::unique_ptr<Kernel>> BceKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const bool logits = FromLogits(k.node);
  return MeanOverRows(k, [=](int64_t r) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    double sum = 0;
    for (int64_t j = 0; j < depth; ++j) {
      sum += logits ? BinaryLogitsLoss(yr[j], tr[j]) : BinaryProbsLoss(yr[j], tr[j]);
    }
    return sum / double(depth);
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> BceGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const bool logits = FromLogits(k.node);
  return GradOverRows(k, [=](int64_t r, float scale, float* dy) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    const float s = scale / static_cast<float>(depth);
    for (int64_t j = 0; j < depth; ++j) {
      if (logits) {
        dy[j] = s * (1.0f / (1.0f + std::exp(-yr[j])) - tr[j]);
      } else if (Clipped(yr[j])) {
        dy[j] = 0.0f;
      } else {
        dy[j] = s * (-tr[j] / (yr[j] + kLossEpsilon) + (1 - tr[j]) / (1 - yr[j] + kLossEpsilon));
      }
    }
  });
}

[[maybe_unused]] const bool kBceRegistered = RegisterLossOps({
    .name = "BinaryCrossentropy",
    .kernel = BceKernel,
    .grad_kernel = BceGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = -3, .hi = 3}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)},
                    {.inputs = {{.shape = {4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)}},
});

// ---------------------------------------------------------------- mean squared error

// e = (y − t)², averaged over the last axis (depth): ∂e/∂y = 2 (y − t).
absl::StatusOr<std::unique_ptr<Kernel>> MseKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  return MeanOverRows(k, [=](int64_t r) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    double sum = 0;
    for (int64_t j = 0; j < depth; ++j) {
      const double d = double(yr[j]) - tr[j];
      sum += d * d;
    }
    return sum / double(depth);
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> MseGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  return GradOverRows(k, [=](int64_t r, float scale, float* dy) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    const float s = 2.0f * scale / static_cast<float>(depth);
    for (int64_t j = 0; j < depth; ++j) dy[j] = s * (yr[j] - tr[j]);
  });
}

[[maybe_unused]] const bool kMseRegistered = RegisterLossOps({
    .name = "MeanSquaredError",
    .kernel = MseKernel,
    .grad_kernel = MseGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 2}, .no_grad = true}, {.shape = {3, 2}}}},
                    {.inputs = {{.shape = {2, 2, 3}, .no_grad = true}, {.shape = {2, 2, 3}}}}},
});

}  // namespace

// ---------------------------------------------------------------- builders

Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y, bool from_logits) {
  return scope.graph().AddNode1(scope, "SparseCategoricalCrossentropy", {labels, y}, LogitsAttr(from_logits));
}

Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y, bool from_logits) {
  return scope.graph().AddNode1(scope, "CategoricalCrossentropy", {onehot, y}, LogitsAttr(from_logits));
}

Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, bool from_logits) {
  return scope.graph().AddNode1(scope, "BinaryCrossentropy", {targets, y}, LogitsAttr(from_logits));
}

Output MeanSquaredError(const Scope& scope, Output targets, Output y) {
  return scope.graph().AddNode1(scope, "MeanSquaredError", {targets, y});
}

}  // namespace gradflow::ops
