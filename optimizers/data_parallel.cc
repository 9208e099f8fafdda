#include "optimizers/data_parallel.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "ops/all_reduce.h"

namespace gradflow::optimizers {

std::vector<std::vector<int>> GradientBuckets(const std::vector<Output>& grads,
                                              const DataParallelOptions& options) {
  // Plans run nodes in id order where the edges allow: the gradient made
  // first (the last layer's) is ready first.
  std::vector<int> order(grads.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return grads[a].node->id < grads[b].node->id; });
  std::vector<std::vector<int>> buckets;
  int64_t bytes = 0, limit = options.first_bucket_bytes;
  for (int i : order) {
    const int64_t size = grads[i].shape().NumElements() * static_cast<int64_t>(sizeof(float));
    if (!buckets.empty() && bytes + size > limit) {
      buckets.emplace_back();
      bytes = 0;
      limit = options.bucket_bytes;
    }
    if (buckets.empty()) buckets.emplace_back();
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

std::vector<Output> AllReduceGradients(Graph& graph, const std::vector<Output>& grads,
                                       const DataParallelOptions& options) {
  if (!graph.ok()) return {};
  if (options.bucket_bytes <= 0 || options.first_bucket_bytes <= 0) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "DataParallelOptions: bucket_bytes (", options.bucket_bytes, ") and first_bucket_bytes (",
        options.first_bucket_bytes, ") must be positive")));
    return {};
  }
  std::vector<Output> reduced(grads.size());
  const std::vector<std::vector<int>> buckets = GradientBuckets(grads, options);
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<Output> bucket;
    for (int i : buckets[b]) bucket.push_back(grads[i]);
    std::vector<Output> means =
        ops::AllReduceMean(graph.Scope(absl::StrCat("data_parallel/bucket_", b)), bucket);
    if (!graph.ok()) return {};
    for (size_t j = 0; j < means.size(); ++j) reduced[buckets[b][j]] = means[j];
  }
  return reduced;
}

}  // namespace gradflow::optimizers
