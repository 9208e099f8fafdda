#include "ops/losses.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <iterator>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"
#include "ops/targets.h"

// Every loss here is one fused op with the layout of Keras's
// LossFunctionWrapper: y is viewed as [rows, depth] (depth = its last
// dimension), a per-row loss ℓ_r is computed, and the output is reduced by the
// "reduction" attr: L = (1/rows) Σ_r ℓ_r (sum_over_batch_size, Keras's
// default), Σ_r ℓ_r (sum), or the ℓ_r themselves (none). Rows are independent
// (an OpenMP loop over rows, each row serial); the final sum over rows is
// serial in double, so results do not depend on the thread count. Each loss
// has a "<Loss>Grad" op with inputs (targets, y, dL) computing dL · ∂L/∂y
// elementwise (dL a scalar, or one value per row for "none").
//
// Label smoothing (attr "label_smoothing", Keras 3) replaces the targets t by
// t (1 − ls) + ls / depth (categorical) or t (1 − ls) + ls / 2 (binary)
// before the formulas below; the targets still get no gradient.

namespace gradflow::ops {
namespace {

constexpr char kBackwardOpReason[] = "backward op; second derivatives are not supported";

bool FromLogits(const Node& node) { return node.attr<bool>("from_logits"); }

using losses::Reduction;

constexpr char kReductionAttr[] = "reduction";
constexpr char kSmoothingAttr[] = "label_smoothing";

// Rows run on the step's threads from this many values: the losses from
// logits cost an exp per value (~3.5 ns), so a 256 x 10 batch is already
// worth splitting (ops' usual kParallelMin is for cheap elementwise work).
constexpr int64_t kLossParallelMin = 2048;

absl::StatusOr<Reduction> ReductionOf(const Node& node) {
  const std::string& name = node.attr<std::string>(kReductionAttr);
  for (size_t i = 0; i < std::size(losses::kReductionNames); ++i) {
    if (name == losses::kReductionNames[i]) return static_cast<Reduction>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "' (", node.op_name(), "): reduction '", name,
                                                 "' is not one of sum_over_batch_size, sum, none"));
}

// The shape of the reduced loss: a scalar, or ("none") one value per row,
// y's shape without its last axis.
absl::StatusOr<Shape> LossShape(const Node& node, const Shape& y) {
  GF_ASSIGN_OR_RETURN(Reduction reduction, ReductionOf(node));
  if (reduction != Reduction::kNone || y.rank() == 0) return Shape{};
  return Shape(std::vector<int64_t>(y.dims().begin(), y.dims().end() - 1));
}

absl::Status InferLoss(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, sparse));
  GF_ASSIGN_OR_RETURN(Shape shape, LossShape(ctx.node(), ctx.shape(1)));
  ctx.AddOutput(DType::kF32, shape);
  return absl::OkStatus();
}

absl::Status InferLossGrad(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(InferTargetsAndPredictions(ctx, sparse));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(2, DType::kF32));
  GF_ASSIGN_OR_RETURN(Shape shape, LossShape(ctx.node(), ctx.shape(1)));
  if (!ctx.shape(2).SameUpToBatch(shape)) {
    return ctx.Error(absl::StrCat("the loss gradient must have the loss's shape ", shape.ToString(), ", got ",
                                  ctx.Describe(2)));
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
// mean, their sum or ("none") the ℓ_r. `prepare` (may be empty) validates the
// inputs first.
template <typename RowLoss>
absl::StatusOr<std::unique_ptr<Kernel>> ReduceRows(const KernelContext& k, RowLoss row_loss,
                                                   std::function<absl::Status()> prepare = {}) {
  GF_ASSIGN_OR_RETURN(Reduction reduction, ReductionOf(k.node));
  const RowsAndDepth rows_depth = Rows(k.in_shape(1));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  float* out = k.out<float>(0);
  auto per_row = std::make_shared<std::vector<double>>(rows);
  return MakeKernel([=](const RunContext&) -> absl::Status {
    if (prepare) GF_RETURN_IF_ERROR(prepare());
    double* losses = per_row->data();
#pragma omp parallel for schedule(static) if (rows * depth > kLossParallelMin)
    for (int64_t r = 0; r < rows; ++r) losses[r] = row_loss(r);
    if (reduction == Reduction::kNone) {
      for (int64_t r = 0; r < rows; ++r) out[r] = static_cast<float>(losses[r]);
      return absl::OkStatus();
    }
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) sum += losses[r];
    // Keras divides by the number of samples; an empty batch gives 0, not NaN.
    const double divisor = reduction == Reduction::kSum || rows == 0 ? 1.0 : static_cast<double>(rows);
    *out = static_cast<float>(sum / divisor);
    return absl::OkStatus();
  });
}

// A gradient kernel: `row_grad(r, scale, dy_row)` writes ∂ℓ_r/∂y_r · scale
// into the row, with scale = dL / rows (sum_over_batch_size), dL (sum) or
// dL_r (none).
template <typename RowGrad>
absl::StatusOr<std::unique_ptr<Kernel>> GradOverRows(const KernelContext& k, RowGrad row_grad,
                                                     std::function<absl::Status()> prepare = {}) {
  GF_ASSIGN_OR_RETURN(Reduction reduction, ReductionOf(k.node));
  const RowsAndDepth rows_depth = Rows(k.in_shape(1));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  const float* dloss = k.in<const float>(2);
  float* dy = k.out<float>(0);
  return MakeKernel([=](const RunContext&) -> absl::Status {
    if (prepare) GF_RETURN_IF_ERROR(prepare());
    if (rows == 0) return absl::OkStatus();
    const float mean_scale = *dloss / static_cast<float>(reduction == Reduction::kSum ? 1 : rows);
#pragma omp parallel for schedule(static) if (rows * depth > kLossParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
      row_grad(r, reduction == Reduction::kNone ? dloss[r] : mean_scale, dy + r * depth);
    }
    return absl::OkStatus();
  });
}

// Keras 3's label smoothing of one target: t (1 − ls) + ls · `toward`
// (1 / num_classes for categorical targets, 1/2 for binary ones).
struct Smoothing {
  float keep = 1, add = 0;
  float operator()(float t) const { return t * keep + add; }
};
Smoothing SmoothingOf(const Node& node, double toward) {
  const double ls = node.attr<double>(kSmoothingAttr);
  return {static_cast<float>(1 - ls), static_cast<float>(ls * toward)};
}

// log Σ_j exp(x_j) of one row, shifted by its max for stability.
float RowLogSumExp(const float* x, int64_t depth) {
  float m = x[0];
  for (int64_t j = 1; j < depth; ++j) m = std::max(m, x[j]);
  float s = 0;
  for (int64_t j = 0; j < depth; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}

// softmax(x) of one row into `out`, shifted by its max as above, each exp
// computed once.
void RowSoftmax(const float* x, int64_t depth, float* out) {
  float m = x[0];
  for (int64_t j = 1; j < depth; ++j) m = std::max(m, x[j]);
  float s = 0;
  for (int64_t j = 0; j < depth; ++j) s += out[j] = std::exp(x[j] - m);
  const float inv_sum = 1.0f / s;
  for (int64_t j = 0; j < depth; ++j) out[j] *= inv_sum;
}

bool Clipped(float p) { return p < kLossEpsilon || p > 1.0f - kLossEpsilon; }
float Clip(float p) { return std::clamp(p, kLossEpsilon, 1.0f - kLossEpsilon); }

Attrs LogitsAttr(bool from_logits) { return {{"from_logits", from_logits}}; }

// One loss: the forward op `name` (targets, y) -> L and its gradient op
// `name + "Grad"` (targets, y, dL) -> dL · ∂L/∂y. Both share the input
// checks and the attrs (Keras's defaults); only the kernels and the
// gradient-check cases differ per loss.
struct LossFamily {
  std::string name;
  bool sparse = false;  // targets are i32 class indices
  std::vector<AttrDef> attrs;  // besides "reduction"
  KernelFn kernel, grad_kernel;
  std::vector<GradCheckCase> grad_checks;
};

AttrDef FromLogitsAttr() { return OptionalAttr("from_logits", false); }
AttrDef SmoothingAttr() { return OptionalAttr(kSmoothingAttr, 0.0).AtLeast(0).AtMost(1); }

bool RegisterLossOps(LossFamily family) {
  const std::string grad_name = family.name + "Grad";
  const bool sparse = family.sparse;
  family.attrs.push_back(OptionalAttr(kReductionAttr, std::string("sum_over_batch_size")));
  RegisterOp(OpDef{
      .name = family.name,
      .num_inputs = 2,  // targets, y
      .attrs = family.attrs,
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
      .attrs = family.attrs,
      .infer = [sparse](InferContext& ctx) { return InferLossGrad(ctx, sparse); },
      .kernel = std::move(family.grad_kernel),
      .no_gradient_reason = kBackwardOpReason,
  });
}

// A grad-check case's attrs with reduction "none" (per-row upstream gradient).
Attrs PerRow(Attrs attrs) {
  attrs[kReductionAttr] = std::string("none");
  return attrs;
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
    return ReduceRows(k, [=](int64_t r) {
      const float* x = y + r * depth;
      return double(RowLogSumExp(x, depth) - x[labels[r]]);
    }, check);
  }
  return ReduceRows(k, [=](int64_t r) {
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
      RowSoftmax(y + r * depth, depth, dx);
      for (int64_t j = 0; j < depth; ++j) dx[j] *= scale;
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
    .attrs = {FromLogitsAttr()},
    .kernel = SparseCceKernel,
    .grad_kernel = SparseCceGradKernel,
    .grad_checks = {{.inputs = {{.dtype = DType::kI32, .shape = {3}, .lo = 0, .hi = 4},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.dtype = DType::kI32, .shape = {3}, .lo = 0, .hi = 4},
                                {.shape = {3, 4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)},
                    {.inputs = {{.dtype = DType::kI32, .shape = {3}, .lo = 0, .hi = 4},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = PerRow(LogitsAttr(true))}},
});

// ---------------------------------------------------------------- categorical

// With the smoothed targets t (rows need not sum to 1), from logits x,
// s = softmax(x):
//   ℓ = Σ_j t_j (logsumexp(x) − x_j),   ∂ℓ/∂x_k = (Σ_j t_j) s_k − t_k.
// From probabilities p (Keras): q = p / Σ p, c = clip(q, eps, 1 − eps),
//   ℓ = −Σ_j t_j log c_j. With g_j = ∂ℓ/∂q_j = −t_j / c_j (0 where q_j is
//   clipped) and ∂q_j/∂p_k = ([j = k] − q_j) / Σ p:
//   ∂ℓ/∂p_k = (g_k − Σ_j g_j q_j) / Σ p.
absl::StatusOr<std::unique_ptr<Kernel>> CceKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const Smoothing smooth = SmoothingOf(k.node, 1.0 / double(std::max<int64_t>(depth, 1)));
  if (FromLogits(k.node)) {
    return ReduceRows(k, [=](int64_t r) {
      const float* x = y + r * depth;
      const float* tr = t + r * depth;
      const float lse = RowLogSumExp(x, depth);
      double loss = 0;
      for (int64_t j = 0; j < depth; ++j) loss += double(smooth(tr[j])) * (lse - x[j]);
      return loss;
    });
  }
  return ReduceRows(k, [=](int64_t r) {
    const float* p = y + r * depth;
    const float* tr = t + r * depth;
    float sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += p[j];
    double loss = 0;
    for (int64_t j = 0; j < depth; ++j) loss -= double(smooth(tr[j])) * std::log(Clip(p[j] / sum));
    return loss;
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> CceGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const Smoothing smooth = SmoothingOf(k.node, 1.0 / double(std::max<int64_t>(depth, 1)));
  if (FromLogits(k.node)) {
    return GradOverRows(k, [=](int64_t r, float scale, float* dx) {
      const float* x = y + r * depth;
      const float* tr = t + r * depth;
      RowSoftmax(x, depth, dx);
      float t_sum = 0;
      for (int64_t j = 0; j < depth; ++j) t_sum += smooth(tr[j]);
      for (int64_t j = 0; j < depth; ++j) dx[j] = scale * (t_sum * dx[j] - smooth(tr[j]));
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
      dp[j] = Clipped(q) ? 0.0f : -smooth(tr[j]) / q;  // g_j, for now
      g_dot_q += dp[j] * q;
    }
    for (int64_t j = 0; j < depth; ++j) dp[j] = scale * (dp[j] - g_dot_q) / sum;
  });
}

Attrs Smoothed(Attrs attrs) {
  attrs[kSmoothingAttr] = 0.2;
  return attrs;
}

[[maybe_unused]] const bool kCceRegistered = RegisterLossOps({
    .name = "CategoricalCrossentropy",
    .attrs = {FromLogitsAttr(), SmoothingAttr()},
    .kernel = CceKernel,
    .grad_kernel = CceGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)},
                    {.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = -2, .hi = 2}},
                     .attrs = PerRow(Smoothed(LogitsAttr(true)))},
                    {.inputs = {{.shape = {3, 4}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 4}, .lo = 0.1, .hi = 0.9}},
                     .attrs = Smoothed(LogitsAttr(false))}},
});

// ---------------------------------------------------------------- binary

// Per element, with the smoothed target t, then averaged over the last axis:
// From logits x (tf.nn.sigmoid_cross_entropy_with_logits' stable form):
//   e = max(x, 0) − x·t + log(1 + exp(−|x|)),   ∂e/∂x = sigmoid(x) − t.
// From probabilities p, c = clip(p, eps, 1 − eps), and d = 0 (Keras 3's
// backend binary_crossentropy) or d = eps (tf.keras 2.x's, attr
// "keras2_log_epsilon"):
//   e = −(t·log(c + d) + (1 − t)·log(1 − c + d)),
//   ∂e/∂p = −t/(c + d) + (1 − t)/(1 − c + d), or 0 where p is clipped.
float BinaryLogitsLoss(float x, float t) { return std::max(x, 0.0f) - x * t + std::log1p(std::exp(-std::abs(x))); }
double BinaryProbsLoss(float p, float t, float d) {
  const double c = Clip(p);
  return -(t * std::log(c + d) + (1 - t) * std::log(1 - c + d));
}
float BinaryProbsGrad(float p, float t, float d) {
  return Clipped(p) ? 0.0f : -t / (p + d) + (1 - t) / (1 - p + d);
}
float LogEpsilonOf(const Node& node) { return node.attr<bool>("keras2_log_epsilon") ? kLossEpsilon : 0.0f; }

absl::StatusOr<std::unique_ptr<Kernel>> BceKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const bool logits = FromLogits(k.node);
  const float d = LogEpsilonOf(k.node);
  const Smoothing smooth = SmoothingOf(k.node, 0.5);
  return ReduceRows(k, [=](int64_t r) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    double sum = 0;
    for (int64_t j = 0; j < depth; ++j) {
      const float tj = smooth(tr[j]);
      sum += logits ? BinaryLogitsLoss(yr[j], tj) : BinaryProbsLoss(yr[j], tj, d);
    }
    return sum / double(depth);
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> BceGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const bool logits = FromLogits(k.node);
  const float d = LogEpsilonOf(k.node);
  const Smoothing smooth = SmoothingOf(k.node, 0.5);
  return GradOverRows(k, [=](int64_t r, float scale, float* dy) {
    const float* yr = y + r * depth;
    const float* tr = t + r * depth;
    const float s = scale / static_cast<float>(depth);
    for (int64_t j = 0; j < depth; ++j) {
      const float tj = smooth(tr[j]);
      dy[j] = s * (logits ? 1.0f / (1.0f + std::exp(-yr[j])) - tj : BinaryProbsGrad(yr[j], tj, d));
    }
  });
}

Attrs Keras2Epsilon(Attrs attrs) {
  attrs["keras2_log_epsilon"] = true;
  return attrs;
}

[[maybe_unused]] const bool kBceRegistered = RegisterLossOps({
    .name = "BinaryCrossentropy",
    .attrs = {FromLogitsAttr(), SmoothingAttr(), OptionalAttr("keras2_log_epsilon", false)},
    .kernel = BceKernel,
    .grad_kernel = BceGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = -3, .hi = 3}},
                     .attrs = LogitsAttr(true)},
                    {.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = 0.1, .hi = 0.9}},
                     .attrs = LogitsAttr(false)},
                    {.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = 0.1, .hi = 0.9}},
                     .attrs = Keras2Epsilon(LogitsAttr(false))},
                    {.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true},
                                {.shape = {3, 2}, .lo = 0.1, .hi = 0.9}},
                     .attrs = PerRow(Smoothed(LogitsAttr(false)))},
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
  return ReduceRows(k, [=](int64_t r) {
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
                    {.inputs = {{.shape = {2, 2, 3}, .no_grad = true}, {.shape = {2, 2, 3}}}},
                    {.inputs = {{.shape = {2, 2, 3}, .no_grad = true}, {.shape = {2, 2, 3}}},
                     .attrs = PerRow({})}},
});

// ---------------------------------------------------------------- huber

// Keras 3 huber, per element with e = y − t and delta δ, averaged over the
// last axis:
//   h = ½ e²            (|e| <= δ),   ∂h/∂y = e
//   h = δ |e| − ½ δ²    (|e| > δ),    ∂h/∂y = δ sign(e).
double HuberElement(double e, double delta) {
  const double a = std::abs(e);
  return a <= delta ? 0.5 * e * e : delta * a - 0.5 * delta * delta;
}
float HuberGrad(float e, float delta) { return std::abs(e) <= delta ? e : std::copysign(delta, e); }

absl::StatusOr<std::unique_ptr<Kernel>> HuberKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const double delta = k.node.attr<double>("delta");
  return ReduceRows(k, [=](int64_t r) {
    double sum = 0;
    for (int64_t j = r * depth; j < (r + 1) * depth; ++j) sum += HuberElement(double(y[j]) - t[j], delta);
    return sum / double(depth);
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> HuberGradKernel(const KernelContext& k) {
  const int64_t depth = Rows(k.in_shape(1)).depth;
  const float* t = k.in<const float>(0);
  const float* y = k.in<const float>(1);
  const float delta = static_cast<float>(k.node.attr<double>("delta"));
  return GradOverRows(k, [=](int64_t r, float scale, float* dy) {
    const float s = scale / static_cast<float>(depth);
    for (int64_t j = 0; j < depth; ++j) dy[j] = s * HuberGrad(y[r * depth + j] - t[r * depth + j], delta);
  });
}

// Targets in [0, 1] and predictions in [-2, 2]: both branches (delta 0.5).
[[maybe_unused]] const bool kHuberRegistered = RegisterLossOps({
    .name = "Huber",
    .attrs = {OptionalAttr("delta", 1.0).AtLeast(0).Finite()},
    .kernel = HuberKernel,
    .grad_kernel = HuberGradKernel,
    .grad_checks = {{.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true}, {.shape = {3, 2}, .lo = -2, .hi = 2}},
                     .attrs = {{"delta", 0.5}}},
                    {.inputs = {{.shape = {3, 2}, .lo = 0, .hi = 1, .no_grad = true}, {.shape = {3, 2}, .lo = -2, .hi = 2}},
                     .attrs = PerRow({})}},
});

}  // namespace

// ---------------------------------------------------------------- builders

namespace {

const char* ReductionName(losses::Reduction r) { return losses::kReductionNames[static_cast<size_t>(r)]; }

// The loss node, or (an invalid config) the error recorded, naming the loss.
template <typename Config>
Output AddLoss(const Scope& scope, const char* op, Output targets, Output y, const Config& config, Attrs attrs) {
  if (absl::Status valid = losses::ValidateLoss(config); !valid.ok()) {
    scope.graph().RecordError(valid);
    return Output{};
  }
  attrs[kReductionAttr] = std::string(ReductionName(config.reduction));
  return scope.graph().AddNode1(scope, op, {targets, y}, std::move(attrs));
}

}  // namespace

Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y, bool from_logits) {
  return SparseCategoricalCrossentropy(scope, labels, y, losses::SparseCategoricalCrossentropy{.from_logits = from_logits});
}
Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y,
                                     const losses::SparseCategoricalCrossentropy& c) {
  return AddLoss(scope, "SparseCategoricalCrossentropy", labels, y, c, LogitsAttr(c.from_logits));
}

Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y, bool from_logits) {
  return CategoricalCrossentropy(scope, onehot, y, losses::CategoricalCrossentropy{.from_logits = from_logits});
}
Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y, const losses::CategoricalCrossentropy& c) {
  Attrs attrs = LogitsAttr(c.from_logits);
  attrs[kSmoothingAttr] = c.label_smoothing;
  return AddLoss(scope, "CategoricalCrossentropy", onehot, y, c, std::move(attrs));
}

Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, bool from_logits) {
  return BinaryCrossentropy(scope, targets, y, losses::BinaryCrossentropy{.from_logits = from_logits});
}
Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, const losses::BinaryCrossentropy& c) {
  Attrs attrs = LogitsAttr(c.from_logits);
  attrs[kSmoothingAttr] = c.label_smoothing;
  attrs["keras2_log_epsilon"] = c.keras2_log_epsilon;
  return AddLoss(scope, "BinaryCrossentropy", targets, y, c, std::move(attrs));
}

Output MeanSquaredError(const Scope& scope, Output targets, Output y, const losses::MeanSquaredError& c) {
  return AddLoss(scope, "MeanSquaredError", targets, y, c, {});
}

Output Huber(const Scope& scope, Output targets, Output y, const losses::Huber& c) {
  return AddLoss(scope, "Huber", targets, y, c, {{"delta", c.delta}});
}

Output Loss(const Scope& scope, Output targets, Output y, const losses::Loss& config) {
  return std::visit(
      [&](const auto& c) -> Output {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, losses::SparseCategoricalCrossentropy>) {
          return SparseCategoricalCrossentropy(scope, targets, y, c);
        } else if constexpr (std::is_same_v<C, losses::CategoricalCrossentropy>) {
          return CategoricalCrossentropy(scope, targets, y, c);
        } else if constexpr (std::is_same_v<C, losses::BinaryCrossentropy>) {
          return BinaryCrossentropy(scope, targets, y, c);
        } else if constexpr (std::is_same_v<C, losses::MeanSquaredError>) {
          return MeanSquaredError(scope, targets, y, c);
        } else {
          static_assert(std::is_same_v<C, losses::Huber>, "every loss needs its builder here");
          return Huber(scope, targets, y, c);
        }
      },
      config);
}

}  // namespace gradflow::ops

namespace gradflow::losses {

absl::Status ValidateLoss(const Loss& loss) {
  return std::visit([](const auto& l) { return ValidateFields(l, absl::StrCat("loss ", l.kName, ":")); }, loss);
}

}  // namespace gradflow::losses
