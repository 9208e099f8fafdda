#ifndef GRADFLOW_OPS_METRICS_H_
#define GRADFLOW_OPS_METRICS_H_

// Evaluation ops: argmax, elementwise equality and Keras's accuracy metrics
// (per-batch values; averaging over batches belongs to nn/'s metric objects).
// None has a gradient: they stop gradients silently (their gradient functions
// return nothing), as Keras metrics are never differentiated.

#include "graph/graph.h"

namespace gradflow::ops {

// Index (i32) of the largest value along `axis` (negative counts from the end);
// the first one on ties, as tf.argmax. Output: x's shape without `axis`.
Output Argmax(const Scope& scope, Output x, int axis = -1);

// 1.0f where a == b, else 0.0f. a and b: the same dtype and shape.
Output Equal(const Scope& scope, Output a, Output b);

// Each accuracy is a scalar f32 fraction hits / n of the batch or, with
// `statistics`, f32 [2] = {hits, n}: the statistics nn/metrics.h sums over
// the batches of an epoch (ops/metric_statistics.h).

// The fraction of rows whose argmax of y [N, C] equals the label (labels
// i32 [N] or [N, 1]).
Output SparseCategoricalAccuracy(const Scope& scope, Output labels, Output y, bool statistics = false);

// Keras: mean of (y > threshold) == targets, over the last axis and then
// over the rest (targets 0/1, of y's shape): n counts elements.
Output BinaryAccuracy(const Scope& scope, Output targets, Output y, double threshold = 0.5,
                      bool statistics = false);

// The fraction of rows where argmax(onehot) == argmax(y).
Output CategoricalAccuracy(const Scope& scope, Output onehot, Output y, bool statistics = false);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_METRICS_H_
