#ifndef GRADFLOW_OPS_CONCAT_H_
#define GRADFLOW_OPS_CONCAT_H_

// Joining tensors along one axis (Keras's Concatenate layer) and taking a
// slice of one axis back out (Concat's gradient).

#include <cstdint>
#include <vector>

#include "graph/graph.h"

namespace gradflow::ops {

// The inputs side by side along `axis` (negative: from the end). Every other
// dimension must agree; the batch dimension may be unknown (-1).
Output Concat(const Scope& scope, std::vector<Output> xs, int64_t axis = -1);
// x[..., begin:begin+size, ...] along `axis` (negative: from the end).
Output SliceAxis(const Scope& scope, Output x, int64_t axis, int64_t begin, int64_t size);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_CONCAT_H_
