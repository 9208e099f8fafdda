#ifndef GRADFLOW_OPS_POW_H_
#define GRADFLOW_OPS_POW_H_

// Elementwise power with a constant exponent, f32 (the power and polynomial
// learning-rate schedules use it).

#include "graph/graph.h"

namespace gradflow::ops {

// y = x^exponent (std::pow: x must be >= 0 unless the exponent is an integer).
Output Pow(const Scope& scope, Output x, double exponent);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_POW_H_
