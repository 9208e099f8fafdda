#ifndef GRADFLOW_OPTIMIZERS_CLIPPING_H_
#define GRADFLOW_OPTIMIZERS_CLIPPING_H_

// Gradient clipping (Pascanu, Mikolov & Bengio 2013) as nodes between the
// gradient nodes and the update nodes, with Keras's three optimizer options:
//
//   ClipByValue(v)       clipvalue:        g = clip(g, -v, v) elementwise
//   ClipByNorm(n)        clipnorm:         g = g * n / max(||g||, n), per tensor
//   ClipByGlobalNorm(n)  global_clipnorm:  g_i = g_i * n / max(G, n),
//                                          G = sqrt(sum_i ||g_i||^2)
//
// Norms are L2, summed in double in a fixed order (independent of the thread
// count). Clipping by value can change a gradient's direction; the norm
// forms only rescale. A non-finite norm makes the clipped gradients NaN, as
// tf.clip_by_global_norm does, so a diverging step is visible instead of
// being silently scaled to zero.
//
// Select it with optimizers::MinimizeOptions::clip or nn::CompileOptions::clip.

#include <vector>

#include "graph/graph.h"

namespace gradflow::optimizers {

struct GradientClipping {
  enum class Kind { kValue, kNorm, kGlobalNorm };
  Kind kind = Kind::kGlobalNorm;
  double threshold = 1.0;  // the clip value or the clip norm; must be > 0
};

GradientClipping ClipByValue(double clip_value);
GradientClipping ClipByNorm(double clip_norm);
GradientClipping ClipByGlobalNorm(double clip_norm);

// The clipped gradients, in the order of `grads`, built under `scope`.
// A threshold that is not a positive finite number is an error recorded in
// the graph (invalid Outputs are returned).
std::vector<Output> ClipGradients(const Scope& scope, const std::vector<Output>& grads,
                                  const GradientClipping& clip);

// The L2 norm of all `tensors` together, sqrt(sum of squares), as a f32
// scalar (the global norm of a gradient list; a tensor's norm for one).
Output GlobalNorm(const Scope& scope, const std::vector<Output>& tensors);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_CLIPPING_H_
