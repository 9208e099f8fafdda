#ifndef GRADFLOW_GRAPH_AUTODIFF_H_
#define GRADFLOW_GRAPH_AUTODIFF_H_

#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace gradflow {

// Reverse-mode differentiation as a graph transformation: adds nodes (under
// "gradients/") computing d(sum y)/dx for each x in xs and returns them in
// order. Gradients reaching a value along several paths are summed (AddN). An
// x that y does not depend on gets zeros. Errors name the op on the path that
// has no gradient.
absl::StatusOr<std::vector<Output>> AddGradients(Graph& graph, Output y,
                                                 const std::vector<Output>& xs);

// True if `grad` is the zeros AddGradients made for `x`: x is one of xs that
// y does not depend on, or an output of a node on the path that nothing
// downstream differentiates (gradient functions may skip work for it).
bool IsZeroGradientOf(const Output& grad, const Output& x);

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_AUTODIFF_H_
