#ifndef GRADFLOW_OPS_METRIC_STATISTICS_H_
#define GRADFLOW_OPS_METRIC_STATISTICS_H_

// The per-batch statistics of Keras's streaming metrics (nn/metrics.h):
// f32 tensors of a fixed shape that the epoch loop sums over the batches of
// one pass, from which each metric computes its value at the end (Keras's
// metric objects accumulate the same state in variables). None has a
// gradient (metrics are never differentiated).

#include "core/tensor.h"
#include "graph/graph.h"

namespace gradflow::ops {

// f32 [2] = {sum over rows of mean over the last axis of e(t, y), rows}
// (rows: elements / last dimension). e by `kind`: "absolute" |t - y|,
// "squared" (t - y)^2, "absolute_percentage" 100 |t - y| / max(|t|, 1e-7)
// (Keras's mean_absolute_percentage_error). targets, y: f32, one shape.
Output MeanErrorStatistics(const Scope& scope, Output targets, Output y, const std::string& kind);

// f32 [2] = {rows whose target class is among the k largest of y's row,
// rows}. Targets: one-hot f32 of y's shape (the class is their argmax), or
// with `sparse` i32 labels [N] / [N, 1]. As tf.math.in_top_k, a class tied
// with the k-th largest value counts as in the top k (the target is in the
// top k when fewer than k classes score strictly higher). k must be in
// [1, classes]: a build error otherwise.
Output TopKStatistics(const Scope& scope, Output targets, Output y, int64_t k, bool sparse);

// f32 [T, 4]: per threshold j of `thresholds` (f32 [T]) the confusion counts
// {tp, fp, tn, fn} over every element (Keras's confusion metrics with
// multi_label false: all elements flattened). Predicted positive: y >
// thresholds[j]. `soft_labels` false: a target != 0 is positive (Keras's
// cast to bool, Precision / Recall); true: an element adds t to the
// positives and 1 - t to the negatives (Keras's evenly-spaced-threshold
// path, which AUC takes; the same for 0/1 targets).
Output ConfusionStatistics(const Scope& scope, Output targets, Output y, const Tensor& thresholds,
                           bool soft_labels);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_METRIC_STATISTICS_H_
