#ifndef GRADFLOW_OPS_LOSSES_H_
#define GRADFLOW_OPS_LOSSES_H_

// Keras losses as single fused ops. Each returns a scalar f32: the per-sample
// loss (reduced over the last axis) averaged over all samples, Keras's
// SUM_OVER_BATCH_SIZE reduction. The batch size comes from the concrete shape
// at compile time, so a graph built with batch -1 works for any batch.
//
// Gradients flow to the predictions `y` only: the targets (labels, one-hot
// rows, binary targets, regression targets) get none (an invalid Output from
// the gradient function), since they are data, not parameters. This differs
// from TensorFlow, which can differentiate softmax cross-entropy with respect
// to its labels.

#include "graph/graph.h"

namespace gradflow::ops {

// Keras's backend.epsilon(): the clip margin of the probability-based losses.
inline constexpr float kLossEpsilon = 1e-7f;

// labels i32 [N] (or [N, 1]; generally y's shape without its last axis), y
// [N, C]. from_logits: y holds logits, the loss is a fused, numerically stable
// log-softmax + negative log-likelihood. Otherwise y holds probabilities:
// clipped to [eps, 1 − eps], loss = −log(c[label] / Σ c) (Keras's TensorFlow
// backend: log of the clipped probabilities fed to
// sparse_softmax_cross_entropy_with_logits). A label outside [0, C) is a run
// time InvalidArgument error naming the node, the row and the value.
Output SparseCategoricalCrossentropy(const Scope& scope, Output labels, Output y,
                                     bool from_logits = false);

// onehot f32 of y's shape [N, C]. from_logits: Σ_j t_j·(logsumexp(x) − x_j).
// Otherwise Keras: y / Σ y, clipped to [eps, 1 − eps], then −Σ t·log.
Output CategoricalCrossentropy(const Scope& scope, Output onehot, Output y,
                               bool from_logits = false);

// targets f32 of y's shape [N, ...]. from_logits: max(x, 0) − x·t +
// log(1 + exp(−|x|)). Otherwise Keras 2: p clipped to [eps, 1 − eps], then
// −(t·log(p + eps) + (1 − t)·log(1 − p + eps)). Mean over the last axis, then
// over the rest.
Output BinaryCrossentropy(const Scope& scope, Output targets, Output y, bool from_logits = false);

// mean((y − t)²) over the last axis, then over the rest.
Output MeanSquaredError(const Scope& scope, Output targets, Output y);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_LOSSES_H_
