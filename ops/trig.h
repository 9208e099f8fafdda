#ifndef GRADFLOW_OPS_TRIG_H_
#define GRADFLOW_OPS_TRIG_H_

// Elementwise sine and cosine (radians), f32. The cosine learning-rate
// schedule is built from Cos.

#include "graph/graph.h"

namespace gradflow::ops {

Output Sin(const Scope& scope, Output x);
Output Cos(const Scope& scope, Output x);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_TRIG_H_
