#ifndef GRADFLOW_OPS_REDUCE_H_
#define GRADFLOW_OPS_REDUCE_H_

// Reductions (sum, mean, max over axes) and the two shape-moving ops their
// gradients and broadcasting gradients are made of: SumToShapeOf (reduce a
// broadcast result back to an input's shape) and BroadcastLike (its adjoint).

#include <vector>

#include "graph/graph.h"

namespace gradflow::ops {

// Reduce over `axes` (negative axes count from the end; empty = all axes).
// keepdims keeps each reduced axis as size 1. The batch dimension may be
// reduced while still -1: the element count is taken from concrete shapes.
Output ReduceSum(const Scope& scope, Output x, std::vector<int> axes = {}, bool keepdims = false);
Output ReduceMean(const Scope& scope, Output x, std::vector<int> axes = {}, bool keepdims = false);
// Gradient goes to the maximal elements; ties split dy evenly (as TensorFlow).
Output ReduceMax(const Scope& scope, Output x, std::vector<int> axes = {}, bool keepdims = false);

// Sums x over the dimensions along which `like` would be broadcast to x's
// shape (numpy rules: dims where `like` is 1 or missing); the result has
// like's shape. With divide_by_count it averages instead of summing.
// Only like's shape is used.
Output SumToShapeOf(const Scope& scope, Output x, Output like, bool divide_by_count = false);
// Broadcasts x to the shape of `like` (numpy rules). With divide_by_count every
// value is divided by how many times it is repeated (the adjoint of a mean).
Output BroadcastLike(const Scope& scope, Output x, Output like, bool divide_by_count = false);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_REDUCE_H_
