#ifndef GRADFLOW_OPS_RRELU_H_
#define GRADFLOW_OPS_RRELU_H_

// Randomized leaky ReLU (Xu, Wang, Chen & Li, "Empirical Evaluation of
// Rectified Activations in Convolutional Network", 2015):
//   y = x          for x >= 0
//   y = a x        for x <  0
// In a training plan every element draws its own slope a ~ U[lower, upper]
// at every step; in an inference plan a = (lower + upper) / 2. The phase is
// read once, when the plan's kernel is created (never branched per step).
//
// Draws: element i of node n at a step uses Mix64(Mix64(step_seed ^
// HashName(n)) + i), so a run is reproducible for a session seed and does not
// depend on the thread count. The op's second output is the slope actually
// applied to each element (1 where x >= 0): the gradient multiplies dy by
// it, so the backward of a step uses exactly the slopes of its forward.
//
// Parameterization: the paper draws the divisor 1/a ~ U(3, 8) and divides by
// (3 + 8) / 2 at test time; like PyTorch's nn.RReLU this draws the slope
// itself uniformly from [1/8, 1/3] and uses their mean (0.2292) at
// inference (the paper's test slope is 2 / 11 = 0.1818).

#include "graph/graph.h"

namespace gradflow::ops {

// The reciprocals of the paper's divisor bounds (3 and 8); PyTorch's defaults.
inline constexpr double kRReluDefaultLower = 1.0 / 8.0;
inline constexpr double kRReluDefaultUpper = 1.0 / 3.0;

struct RReluOutputs {
  Output y;      // the activation
  Output slope;  // the slope applied per element (1 where x >= 0)
};

// Requires lower <= upper (lower == upper makes it a leaky ReLU in both phases).
RReluOutputs RReluWithSlopes(const Scope& scope, Output x, double lower = kRReluDefaultLower,
                             double upper = kRReluDefaultUpper);
// Just y. Registered for Activation(scope, x, "rrelu") with the default bounds.
Output RRelu(const Scope& scope, Output x, double lower = kRReluDefaultLower,
             double upper = kRReluDefaultUpper);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_RRELU_H_
