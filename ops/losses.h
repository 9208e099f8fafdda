#ifndef GRADFLOW_OPS_LOSSES_H_
#define GRADFLOW_OPS_LOSSES_H_

// Keras losses as single fused ops. By default each returns a scalar f32: the
// per-sample loss (reduced over the last axis) averaged over all samples,
// Keras's SUM_OVER_BATCH_SIZE reduction. The batch size comes from the
// concrete shape at compile time, so a graph built with batch -1 works for
// any batch.
//
// Gradients flow to the predictions `y` only: the targets (labels, one-hot
// rows, binary targets, regression targets) get none (an invalid Output from
// the gradient function), since they are data, not parameters. This differs
// from TensorFlow, which can differentiate softmax cross-entropy with respect
// to its labels.

#include <string>
#include <variant>

#include "absl/status/status.h"
#include "core/describe.h"
#include "graph/graph.h"

namespace gradflow {

// ---------------------------------------------------------------- described losses
// Keras 3's loss classes with their defaults (core/describe.h): what a loss
// is configured with, in C++ (ops::Loss, nn::CompileOptions::loss_config)
// and in model configs (nn/config_reader.h ReadDescribed / DescribedToJson).
namespace losses {

// Keras 3's `reduction`: "sum_over_batch_size" (the mean over samples, the
// default), "sum", or "none" (one value per sample: y's shape without its
// last axis).
enum class Reduction { kSumOverBatchSize, kSum, kNone };
inline constexpr const char* kReductionNames[] = {"sum_over_batch_size", "sum", "none"};
inline Field ReductionField() { return Field::OneOf("reduction", kReductionNames); }

// Keras 3 SparseCategoricalCrossentropy (it has no label_smoothing).
struct SparseCategoricalCrossentropy {
  static constexpr const char* kName = "SparseCategoricalCrossentropy";
  bool from_logits = false;
  Reduction reduction = Reduction::kSumOverBatchSize;
  template <typename Self, typename F> static void Fields(Self& l, F&& f) {
    f(Field::Any("from_logits"), l.from_logits);
    f(ReductionField(), l.reduction);
  }
};

// Keras 3 CategoricalCrossentropy: targets smoothed to
// t (1 - label_smoothing) + label_smoothing / num_classes.
struct CategoricalCrossentropy {
  static constexpr const char* kName = "CategoricalCrossentropy";
  bool from_logits = false;
  double label_smoothing = 0;
  Reduction reduction = Reduction::kSumOverBatchSize;
  template <typename Self, typename F> static void Fields(Self& l, F&& f) {
    f(Field::Any("from_logits"), l.from_logits);
    f(Field::InRange("label_smoothing", 0, 1, /*hi_inclusive=*/true), l.label_smoothing);
    f(ReductionField(), l.reduction);
  }
};

// Keras 3 BinaryCrossentropy: targets smoothed to
// t (1 - label_smoothing) + 0.5 label_smoothing. From probabilities Keras 3
// clips p to [eps, 1 - eps] and takes -(t log p + (1 - t) log(1 - p));
// keras2_log_epsilon = true gives tf.keras 2.x's backend.binary_crossentropy,
// which also adds eps inside both logs (-log(2e-7) instead of -log(1e-7)
// for a clipped p).
struct BinaryCrossentropy {
  static constexpr const char* kName = "BinaryCrossentropy";
  bool from_logits = false;
  double label_smoothing = 0;
  Reduction reduction = Reduction::kSumOverBatchSize;
  bool keras2_log_epsilon = false;  // tf.keras 2.x's formula (not in Keras 3)
  template <typename Self, typename F> static void Fields(Self& l, F&& f) {
    f(Field::Any("from_logits"), l.from_logits);
    f(Field::InRange("label_smoothing", 0, 1, /*hi_inclusive=*/true), l.label_smoothing);
    f(ReductionField(), l.reduction);
    f(Field::Any("keras2_log_epsilon").NotInKeras(), l.keras2_log_epsilon);
  }
};

// Keras 3 MeanSquaredError.
struct MeanSquaredError {
  static constexpr const char* kName = "MeanSquaredError";
  Reduction reduction = Reduction::kSumOverBatchSize;
  template <typename Self, typename F> static void Fields(Self& l, F&& f) { f(ReductionField(), l.reduction); }
};

// Keras 3 Huber: e = y - t, 0.5 e^2 where |e| <= delta, else
// delta |e| - 0.5 delta^2; the mean over the last axis.
struct Huber {
  static constexpr const char* kName = "Huber";
  double delta = 1.0;
  Reduction reduction = Reduction::kSumOverBatchSize;
  template <typename Self, typename F> static void Fields(Self& l, F&& f) {
    f(Field::NonNegative("delta"), l.delta);
    f(ReductionField(), l.reduction);
  }
};

using Loss = std::variant<SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                          MeanSquaredError, Huber>;

// The ranges its Fields declare, as an InvalidArgument naming the loss.
absl::Status ValidateLoss(const Loss& loss);

}  // namespace losses

namespace ops {

// Keras's backend.epsilon(): the clip margin of the probability-based losses.
inline constexpr float kLossEpsilon = 1e-7f;

// Every loss below returns, with the default reduction, a scalar f32: the
// per-sample loss (reduced over the last axis) averaged over the samples.
// reduction "sum" sums them; "none" returns them, shaped as y without its
// last axis. An invalid configuration records an InvalidArgument naming the
// loss and the field and returns an invalid Output.

// labels i32 [N] (or [N, 1]; generally y's shape without its last axis), y
// [N, C]. from_logits: y holds logits, the loss is a fused, numerically stable
// log-softmax + negative log-likelihood. Otherwise y holds probabilities:
// clipped to [eps, 1 − eps], loss = −log(c[label] / Σ c) (Keras's TensorFlow
// backend: log of the clipped probabilities fed to
// sparse_softmax_cross_entropy_with_logits). A label outside [0, C) is a run
// time InvalidArgument error naming the node, the row and the value.
Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y,
                                     bool from_logits = false);
Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y,
                                     const losses::SparseCategoricalCrossentropy& config);

// onehot f32 of y's shape [N, C] (smoothed by label_smoothing). from_logits:
// Σ_j t_j·(logsumexp(x) − x_j). Otherwise Keras: y / Σ y, clipped to
// [eps, 1 − eps], then −Σ t·log.
Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y,
                               bool from_logits = false);
Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y,
                               const losses::CategoricalCrossentropy& config);

// targets f32 of y's shape [N, ...] (smoothed by label_smoothing).
// from_logits: max(x, 0) − x·t + log(1 + exp(−|x|)). Otherwise Keras 3: p
// clipped to [eps, 1 − eps], then −(t·log(p) + (1 − t)·log(1 − p))
// (keras2_log_epsilon: tf.keras 2.x's log(p + eps), log(1 − p + eps)). Mean
// over the last axis.
Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, bool from_logits = false);
Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, const losses::BinaryCrossentropy& config);

// mean((y − t)²) over the last axis.
Output MeanSquaredError(const Scope& scope, Output targets, Output y,
                        const losses::MeanSquaredError& config = {});

// Keras 3 Huber (see losses::Huber), mean over the last axis.
Output Huber(const Scope& scope, Output targets, Output y, const losses::Huber& config = {});

// The loss `config` describes, of targets and y.
Output Loss(const Scope& scope, Output targets, Output y, const losses::Loss& config);

}  // namespace ops
}  // namespace gradflow

#endif  // GRADFLOW_OPS_LOSSES_H_
