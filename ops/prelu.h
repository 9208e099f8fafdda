#ifndef GRADFLOW_OPS_PRELU_H_
#define GRADFLOW_OPS_PRELU_H_

// Parametric ReLU (He, Zhang, Ren & Sun, "Delving Deep into Rectifiers",
// 2015) on oneDNN's prelu_forward / prelu_backward:
//   y = x          for x > 0
//   y = alpha x    for x <= 0
// with alpha a learned tensor broadcast against x. As Keras's PReLU layer,
// alpha has the shape of x without its batch dimension, with 1 along any
// shared axis (e.g. x [N, H, W, C], shared_axes {1, 2} -> alpha [1, 1, C]).

#include "graph/graph.h"

namespace gradflow::ops {

// x: f32 of rank >= 2; alpha: f32 of rank(x) - 1 whose dim d is x's dim d+1
// or 1. Creates no variable: nn::PReLU owns alpha.
Output PRelu(const Scope& scope, Output x, Output alpha);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_PRELU_H_
