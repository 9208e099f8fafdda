#ifndef GRADFLOW_OPS_PIECEWISE_H_
#define GRADFLOW_OPS_PIECEWISE_H_

// Piecewise functions of a tensor, elementwise: step functions (the
// piecewise-constant learning-rate schedule, floor) and linear interpolation
// between knots (the 1cycle schedule). All f32.

#include <vector>

#include "graph/graph.h"

namespace gradflow::ops {

// y = values[i] where i is the number of boundaries strictly below x:
// values[0] for x <= boundaries[0], values[1] for boundaries[0] < x <=
// boundaries[1], ..., values.back() above the last boundary (Keras's
// PiecewiseConstantDecay). Needs strictly increasing boundaries and
// values.size() == boundaries.size() + 1.
Output PiecewiseConstant(const Scope& scope, Output x, const std::vector<double>& boundaries,
                         const std::vector<double>& values);

// Linear interpolation through the knots (xs[j], ys[j]), constant beyond the
// first and last knot. Needs at least two strictly increasing xs.
Output PiecewiseLinear(const Scope& scope, Output x, const std::vector<double>& xs,
                       const std::vector<double>& ys);

// The largest integer <= x.
Output Floor(const Scope& scope, Output x);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_PIECEWISE_H_
