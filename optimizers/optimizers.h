#ifndef GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_
#define GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_

// Optimizers as graph rewrites: Minimize adds the gradient nodes, one update
// node per trainable variable, and the step counter increment, and returns a
// single train op to run as a plan target.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "graph/graph.h"
#include "optimizers/clipping.h"

namespace gradflow::optimizers {

// Keras SGD: velocity = momentum * velocity - lr * g;
// w += velocity (or, with Nesterov, w += momentum * velocity - lr * g).
struct SGD {
  double learning_rate = 0.01;  // Keras default
  double momentum = 0.0;
  bool nesterov = false;
};

using Optimizer = std::variant<SGD>;

struct MinimizeOptions {
  // Variables to train; empty means every trainable variable the loss depends on.
  std::vector<Output> var_list;
  // Clipping between the gradients and the updates (optimizers/clipping.h):
  // ClipByValue / ClipByNorm / ClipByGlobalNorm, Keras's clipvalue /
  // clipnorm / global_clipnorm.
  std::optional<GradientClipping> clip;
  // Other update nodes to run with every training step, e.g. batch norm's
  // moving statistics (nn layers' updates()): the train op depends on them.
  std::vector<Node*> extra_updates;
};

// The names of the variables Minimize creates.
inline constexpr char kStepName[] = "global_step";                   // i64 scalar
inline constexpr char kLearningRateName[] = "optimizer/learning_rate";  // f32 scalar

// Adds the training step for `loss` (a f32 scalar) and returns its handle.
// Errors (non-scalar loss, nothing to train) are recorded in graph.status()
// and an invalid Output is returned.
Output Minimize(Graph& graph, Output loss, const Optimizer& optimizer,
                const MinimizeOptions& options = {});

// Trainable variables (attr "trainable") that `y` depends on, in creation order.
std::vector<Output> TrainableVariables(Graph& graph, Output y);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_
