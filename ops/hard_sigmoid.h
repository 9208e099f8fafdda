#ifndef GRADFLOW_OPS_HARD_SIGMOID_H_
#define GRADFLOW_OPS_HARD_SIGMOID_H_

// Hard sigmoid, the piecewise-linear approximation of the logistic function.
// Keras 3 (the default; keras/src/backend/tensorflow/nn.py):
//   y = relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)   (0 for x < -3, 1 for x > 3),
// tf.keras 2.x (attr keras2 = true, the Keras of the book):
//   y = clip(0.2 x + 0.5, 0, 1)                    (0 for x < -2.5, 1 for x > 2.5).
// Plain OpenMP loops: oneDNN 2.6 has no hardsigmoid algorithm (2.7 added it).

#include "graph/graph.h"

namespace gradflow::ops {

// tf.keras 2.x backend.hard_sigmoid: slope 0.2, offset 0.5.
inline constexpr double kKeras2HardSigmoidSlope = 0.2;
inline constexpr double kHardSigmoidOffset = 0.5;

// Registered for Activation(scope, x, "hard_sigmoid") (Keras 3's form);
// keras2 = true gives tf.keras 2.x's slope 0.2.
Output HardSigmoid(const Scope& scope, Output x, bool keras2);
// Activation's builder: Keras 3's form.
inline Output HardSigmoid(const Scope& scope, Output x) { return HardSigmoid(scope, x, false); }

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_HARD_SIGMOID_H_
