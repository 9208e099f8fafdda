#ifndef GRADFLOW_OPS_HARD_SIGMOID_H_
#define GRADFLOW_OPS_HARD_SIGMOID_H_

// Hard sigmoid, the piecewise-linear approximation of the logistic function,
// with tf.keras 2.x's formula (the Keras of the book):
//   y = clip(0.2 x + 0.5, 0, 1)   (0 for x < -2.5, 1 for x > 2.5).
// Keras 3 changed it to relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1); this file
// keeps the Keras 2 slope, like the initializers keep Keras 2 semantics.
// Plain OpenMP loops: oneDNN 2.6 has no hardsigmoid algorithm (2.7 added it).

#include "graph/graph.h"

namespace gradflow::ops {

// tf.keras 2.x backend.hard_sigmoid: slope 0.2, offset 0.5.
inline constexpr double kHardSigmoidSlope = 0.2;
inline constexpr double kHardSigmoidOffset = 0.5;

// y = clip(0.2 x + 0.5, 0, 1). Registered for Activation(scope, x, "hard_sigmoid").
Output HardSigmoid(const Scope& scope, Output x);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_HARD_SIGMOID_H_
