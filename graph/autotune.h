#ifndef GRADFLOW_GRAPH_AUTOTUNE_H_
#define GRADFLOW_GRAPH_AUTOTUNE_H_

// Ops with several implementations of one computation (Dense and its
// backward ops: oneDNN's inner product or its matmul) offer each as a
// candidate; ChooseKernel keeps one, as SessionOptions::autotune says. Which
// is faster depends on the CPU and the shape, so "fastest" (opt-in)
// measures: the candidates run in interleaved rounds on the plan's own
// buffers, the default (the first) gives way only to a clearly faster one,
// and the choice is remembered for the process per op, attrs, types and
// thread count, so later plans of that shape only make the chosen kernel.
//
// The candidates compute the same values up to float rounding (their sums
// run in different orders), so only a fixed choice ("first", the default, or
// an implementation's name) is bit-reproducible across processes.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/op_registry.h"

namespace gradflow {

struct KernelCandidate {
  std::string name;  // "inner_product", "matmul"
  std::function<absl::StatusOr<std::unique_ptr<Kernel>>()> make;
};

// The kernel of k.node among `candidates` (the first is the op's default),
// per k.autotune: "fastest", "first", or a candidate's name. The kernel
// reports its candidate's name (Kernel::implementation). Another autotune
// value is an InvalidArgument error naming the node and the candidates.
absl::StatusOr<std::unique_ptr<Kernel>> ChooseKernel(const KernelContext& k,
                                                     const std::vector<KernelCandidate>& candidates);

// The choices "fastest" made in this process, by key (for tests and --print_plan).
std::vector<std::pair<std::string, std::string>> AutotuneChoices();
// The time "fastest" has spent on them: making and timing the candidates.
double AutotuneSeconds();

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_AUTOTUNE_H_
