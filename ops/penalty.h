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

// True for a node L1L2Penalty made: its input 0 is the penalized weight.
bool IsL1L2Penalty(const Node& node);

// A peephole for a weight's gradient from AddGradients: where `grad` is
// AddN(data terms..., L1L2PenaltyGrad(w, dy)), returns one L1L2PenaltyGrad
// that adds the data gradient itself (one pass over the weights instead of
// two); any other gradient is returned unchanged. The AddN and the unfused
// penalty gradient are left unused, and plans prune them.
Output FusePenaltyGradient(Output grad);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_PENALTY_H_
