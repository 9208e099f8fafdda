#ifndef GRADFLOW_OPTIMIZERS_DATA_PARALLEL_H_
#define GRADFLOW_OPTIMIZERS_DATA_PARALLEL_H_

// Data-parallel training as a graph rewrite: between the gradients and the
// updates, every gradient is replaced by its mean over the ranks of the job,
// reduced in a few fused buckets (ops/all_reduce.h). The graph does not know
// the ranks: the session's Communicator (SessionOptions::communicator) does,
// so one graph runs on any number of processes.

#include <cstdint>
#include <vector>

#include "graph/graph.h"

namespace gradflow::optimizers {

struct DataParallelOptions {
  // Gradients are packed, in the order the backward pass computes them
  // (last layer first), into buckets of at most this many bytes; a gradient
  // larger than a bucket is one of its own. Fewer buckets mean fewer
  // collectives; more mean each starts sooner. PyTorch DDP's defaults:
  int64_t bucket_bytes = int64_t{25} << 20;     // bucket_cap_mb = 25
  int64_t first_bucket_bytes = int64_t{1} << 20;  // small, so reducing starts early
};

// The gradients' bucket assignment: bucket b holds grads[i] for i in
// result[b], in the order the buckets are reduced. Fixed by the graph and the
// options alone, so every rank (and every run) packs the same buckets.
std::vector<std::vector<int>> GradientBuckets(const std::vector<Output>& grads,
                                              const DataParallelOptions& options);

// `grads`, each replaced by its mean over the ranks (scope "data_parallel").
// MinimizeOptions::data_parallel calls it before clipping, so clipping and
// the updates see the global batch's gradients. Errors go to the graph.
std::vector<Output> AllReduceGradients(Graph& graph, const std::vector<Output>& grads,
                                       const DataParallelOptions& options = {});

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_DATA_PARALLEL_H_
