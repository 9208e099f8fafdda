#ifndef GRADFLOW_OPS_PENALTY_H_
#define GRADFLOW_OPS_PENALTY_H_

// Weight penalties (Keras's L1L2 regularizer) as one fused op, so a
// regularized layer costs one pass over its weights forward and one backward.
// optimizers/regularizers.h attaches penalties to variables and adds them to
// the loss.

#include "graph/graph.h"

namespace gradflow::ops {

// y = l1 * sum(|w|) + l2 * sum(w^2), a f32 scalar, for w of any shape.
// Sums run in double in a fixed order, independent of the thread count.
// l1 and l2 must be finite (Keras accepts any finite number).
Output L1L2Penalty(const Scope& scope, Output w, double l1, double l2);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_PENALTY_H_
