#ifndef GRADFLOW_OPS_TARGETS_H_
#define GRADFLOW_OPS_TARGETS_H_

// The input check shared by the loss and metric ops: inputs 0 and 1 are
// (targets f32, predictions f32) of one shape of rank >= 1, or, with
// `sparse`, (labels i32, predictions) with the labels shaped as the
// predictions without their class axis (a trailing 1 allowed, as Keras
// squeezes it). Dim 0 may be unknown on either side.

#include "absl/status/status.h"
#include "graph/op_registry.h"

namespace gradflow::ops {

absl::Status InferTargetsAndPredictions(InferContext& ctx, bool sparse);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_TARGETS_H_
