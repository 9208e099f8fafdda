#ifndef GRADFLOW_OPS_ALL_REDUCE_H_
#define GRADFLOW_OPS_ALL_REDUCE_H_

// The mean of tensors over the ranks of a data-parallel job (ops/all_reduce.cc).

#include <vector>

#include "graph/graph.h"

namespace gradflow::ops {

// The mean over every rank of each of `tensors` (f32, known shapes), as one
// fused bucket: an AllReduceStart node packs them and starts the sum as soon
// as they are computed; an AllReduceWait node completes it and unpacks the
// means, one output per tensor. The ranks come from the session's
// Communicator (SessionOptions::communicator); with one rank, the means are
// the tensors.
std::vector<Output> AllReduceMean(const Scope& scope, const std::vector<Output>& tensors);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_ALL_REDUCE_H_
