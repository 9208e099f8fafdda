#ifndef GRADFLOW_OPS_SOFTMAX_H_
#define GRADFLOW_OPS_SOFTMAX_H_

// Softmax and log-softmax over the last axis (Keras's default axis=-1), on
// oneDNN's softmax / logsoftmax primitives (log-softmax's forward is a plain
// loop: see softmax.cc for the accuracy reason).

#include "graph/graph.h"

namespace gradflow::ops {

// y_i = exp(x_i) / sum_j exp(x_j) over the last axis (computed stably, with
// the row maximum subtracted). Any rank >= 1.
Output Softmax(const Scope& scope, Output x);
// y_i = x_i - log(sum_j exp(x_j)) over the last axis: log(softmax(x)) without
// its underflow for very negative logits.
Output LogSoftmax(const Scope& scope, Output x);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_SOFTMAX_H_
