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

// Scalar f32: the fraction of rows whose argmax of y [N, C] equals the label
// (labels i32 [N] or [N, 1]).
Output SparseCategoricalAccuracy(const Scope& scope, Output labels, Output y);

// Scalar f32 (Keras): mean of (y > threshold) == targets, over the last axis
// and then over the rest (targets 0/1, of y's shape).
Output BinaryAccuracy(const Scope& scope, Output targets, Output y, double threshold = 0.5);

// Scalar f32: the fraction of rows where argmax(onehot) == argmax(y).
Output CategoricalAccuracy(const Scope& scope, Output onehot, Output y);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_METRICS_H_
