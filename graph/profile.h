#ifndef GRADFLOW_GRAPH_PROFILE_H_
#define GRADFLOW_GRAPH_PROFILE_H_

// Where a plan's steps spend their time, node by node (Plan::set_profiling):
// the answer to "which op do I make faster" without an external profiler,
// and what benchmarks/README.md's breakdowns come from.

#include <cstdint>
#include <string>
#include <vector>

namespace gradflow {

// One node's kernel over the profiled runs.
struct NodeTime {
  std::string node;            // the plan's node (a fused one: "dense/Dense+act/Elu")
  std::string op;
  std::string implementation;  // an autotuned op's candidate ("inner_product", "matmul"), else ""
  int64_t runs = 0;
  double seconds = 0;
};

struct PlanProfile {
  int64_t steps = 0;            // Plan::Run calls since profiling was turned on
  double run_seconds = 0;       // their whole time: the kernels plus feeds, checks and fetches
  std::vector<NodeTime> nodes;  // most time first
};

// A table, one line per node: its share of run_seconds, microseconds per
// run, runs, node (op, implementation); last, the time outside the kernels.
std::string FormatProfile(const PlanProfile& profile);

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_PROFILE_H_
