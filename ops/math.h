#ifndef GRADFLOW_OPS_MATH_H_
#define GRADFLOW_OPS_MATH_H_

// Elementwise arithmetic: binary ops with numpy broadcasting and unary
// functions. All f32.

#include "graph/graph.h"

namespace gradflow::ops {

// Binary ops broadcast like numpy: shapes align at the right; a dim of 1 (or a
// missing leading dim) stretches to the other input's size. The gradient of a
// broadcast input is summed back to its shape.
Output Add(const Scope& scope, Output a, Output b);
Output Sub(const Scope& scope, Output a, Output b);
Output Mul(const Scope& scope, Output a, Output b);
Output Div(const Scope& scope, Output a, Output b);
// Elementwise max / min. On ties the gradient goes to `a` (as TensorFlow).
Output Maximum(const Scope& scope, Output a, Output b);
Output Minimum(const Scope& scope, Output a, Output b);

// With a float scalar (a Const node broadcast against the tensor).
Output Add(const Scope& scope, Output a, float b);
Output Sub(const Scope& scope, Output a, float b);
Output Sub(const Scope& scope, float a, Output b);
Output Mul(const Scope& scope, Output a, float b);
Output Div(const Scope& scope, Output a, float b);
Output Div(const Scope& scope, float a, Output b);
Output Maximum(const Scope& scope, Output a, float b);
Output Minimum(const Scope& scope, Output a, float b);

Output Neg(const Scope& scope, Output x);
Output Square(const Scope& scope, Output x);
Output Sqrt(const Scope& scope, Output x);
Output Exp(const Scope& scope, Output x);
Output Log(const Scope& scope, Output x);
Output Abs(const Scope& scope, Output x);
// -1, 0 or 1. Piecewise constant: no gradient flows through it.
Output Sign(const Scope& scope, Output x);
// min(max(x, lo), hi); the gradient passes only where lo < x < hi.
Output Clip(const Scope& scope, Output x, float lo, float hi);
// y = alpha * x, one node (no constant, no broadcasting).
Output Scale(const Scope& scope, Output x, float alpha);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_MATH_H_
