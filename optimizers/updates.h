#ifndef GRADFLOW_OPTIMIZERS_UPDATES_H_
#define GRADFLOW_OPTIMIZERS_UPDATES_H_

// What an optimizer provides to ApplyGradients (internal to optimizers/). Each
// optimizer file defines, for its struct X:
//
//   absl::Status Validate(const X&);   // hyperparameters, before anything is built
//   UpdateSpec DescribeUpdate(const X&, const UpdateContext&);
//
// and registers its update op (see update_kernel.h). ApplyGradients turns the
// UpdateSpecs of all variables into one node per variable, or into one fused
// node of the same op over all of them.

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

absl::Status Validate(const SGD& opt);
absl::Status Validate(const Adagrad& opt);
absl::Status Validate(const RMSprop& opt);
absl::Status Validate(const Adam& opt);
absl::Status Validate(const AdamW& opt);
absl::Status Validate(const Nadam& opt);
absl::Status Validate(const Adamax& opt);

UpdateSpec DescribeUpdate(const SGD& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const Adagrad& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const RMSprop& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const Adam& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const AdamW& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const Nadam& opt, const UpdateContext& u);
UpdateSpec DescribeUpdate(const Adamax& opt, const UpdateContext& u);

// Optimizer-wide state written once per step, after every update and before
// the step counter moves (Nadam's momentum product). Returns the node, or
// nullptr when the optimizer has none (the default).
template <typename Opt>
Node* AddAfterUpdates(const Opt&, Graph&, Output /*step*/, const std::vector<Node*>& /*updates*/) {
  return nullptr;
}
Node* AddAfterUpdates(const Nadam& opt, Graph& graph, Output step, const std::vector<Node*>& updates);

// Helpers for Validate: InvalidArgument "<Optimizer>: <field> must be ..., got x".
absl::Status CheckInRange(const char* optimizer, const char* field, double value, double lo,
                          double hi, bool hi_inclusive);
absl::Status CheckNonNegative(const char* optimizer, const char* field, double value);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_UPDATES_H_
