#ifndef GRADFLOW_OPTIMIZERS_UPDATES_H_
#define GRADFLOW_OPTIMIZERS_UPDATES_H_

// What an optimizer provides to ApplyGradients (internal to optimizers/). Each
// optimizer's .cc file defines, for its struct X (optimizers.h):
//
//   UpdateSpec X::DescribeUpdate(const UpdateContext&) const;
//
// and registers its update op (see update_kernel.h); its hyperparameters are
// validated from X::Fields (core/describe.h). ApplyGradients turns the
// UpdateSpecs of all variables into one node per variable, or into one fused
// node of the same op over all of them.

#include <concepts>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/graph.h"
#include "graph/op_registry.h"
#include "optimizers/optimizers.h"

namespace gradflow::optimizers {

struct UpdateContext {
  Scope scope;           // "<variable>/update": where per-variable nodes go
  Output var;            // the variable being trained
  Output grad;           // its gradient (after any clipping)
  Output learning_rate;  // f32 scalar: the constant-rate variable or the schedule's output
  Output step;           // i64 scalar: updates applied so far

  // A non-trainable slot variable named "<variable>/<name>" with the
  // variable's shape (Keras: "dense/kernel/m"), zeros unless `init` says.
  Output Slot(const std::string& name, Initializer init = Zeros()) const;
};

// The update of one variable.
struct UpdateSpec {
  std::string op;               // a registered update op ("ApplyAdam")
  std::vector<Output> tensors;  // the variable, its slots, its gradient (all its shape)
  std::vector<Output> scalars;  // learning rate first; the same for every variable
  Attrs attrs;                  // the same for every variable
};

// An optimizer-wide scalar variable named `name`, created on first use
// (the step counter, the learning rate, Nadam's momentum product).
Output GetOrCreateScalar(Graph& graph, const char* name, DType dtype, double initial);

// Optimizer-wide state written once per step, after every update and before
// the step counter moves: an optimizer that has some (Nadam's momentum
// product) declares `Node* AddAfterUpdates(Graph&, Output step, const
// std::vector<Node*>& updates) const`. Returns the node, or nullptr when the
// optimizer has none.
template <typename Opt>
Node* AddAfterUpdates(const Opt& opt, Graph& graph, Output step, const std::vector<Node*>& updates) {
  if constexpr (requires { opt.AddAfterUpdates(graph, step, updates); }) {
    return opt.AddAfterUpdates(graph, step, updates);
  } else {
    return nullptr;
  }
}

// What ApplyGradients needs of every alternative of Optimizer; a struct that
// lacks a piece fails this at compile time, naming the struct.
template <typename Opt>
concept DescribedOptimizer = requires(const Opt& opt, const UpdateContext& u) {
  { Opt::kName } -> std::convertible_to<const char*>;
  { opt.learning_rate } -> std::convertible_to<double>;
  { opt.DescribeUpdate(u) } -> std::same_as<UpdateSpec>;
};

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_UPDATES_H_
