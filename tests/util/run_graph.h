#ifndef GRADFLOW_TESTS_UTIL_RUN_GRAPH_H_
#define GRADFLOW_TESTS_UTIL_RUN_GRAPH_H_

// Builds, compiles and runs a graph in one call, for tests that check what
// one forward pass computes; a graph left in error returns its error.

#include <vector>

#include "absl/status/statusor.h"
#include "graph/session.h"

namespace gradflow::testing_util {

inline absl::StatusOr<std::vector<Tensor>> RunGraph(Graph& g, const std::vector<Output>& fetches,
                                                    const std::vector<Feed>& feeds) {
  if (!g.ok()) return g.status();
  Session s(g);
  std::vector<ValueRef> refs(fetches.begin(), fetches.end());
  auto plan = s.Compile(refs);
  if (!plan.ok()) return plan.status();
  return plan->Run(feeds);
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_RUN_GRAPH_H_
