#ifndef GRADFLOW_OPTIMIZERS_CONSTRAINTS_H_
#define GRADFLOW_OPTIMIZERS_CONSTRAINTS_H_

// Weight constraints (Keras constraints.MaxNorm, described once). A constraint is attached to
// a variable node (attrs "max_norm", "max_norm_axis"); Minimize adds, after
// the variable's update node, a node that rescales the variable in place, so
// the constraint holds after every training step.
//
//   optimizers::SetConstraint(kernel, optimizers::MaxNorm{.max_value = 1.0});

#include <variant>

#include "core/describe.h"
#include "graph/graph.h"

namespace gradflow::optimizers {

// Keras MaxNorm: w * clip(n, 0, max_value) / (epsilon + n), with n the L2
// norms of w over `axis` (kept as size 1). For a Dense kernel [in, out] and
// axis 0 each unit's incoming weight vector gets norm <= max_value.
struct MaxNorm {
  static constexpr const char* kName = "MaxNorm";
  double max_value = 2.0;  // Keras default
  int axis = 0;            // Keras default; negative counts from the end
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("max_value"), s.max_value);
    f(Field::Any("axis"), s.axis);  // checked against the variable's rank by SetConstraint
  }
  friend bool operator==(const MaxNorm&, const MaxNorm&) = default;
};

// Every constraint a layer can hold (core/describe.h: configs and tests
// derive from it). A new one adds its struct and its SetConstraint overload.
using Constraint = std::variant<MaxNorm>;

// Keras backend.epsilon(), the fuzz factor in MaxNorm's denominator.
inline constexpr double kMaxNormEpsilon = 1e-7;

// Attaches `constraint` to the variable `var` (replacing any earlier one).
// A non-variable, max_value <= 0 or an axis out of range records an error.
void SetConstraint(Output var, const MaxNorm& constraint);

// Adds the constraint node of `var`, run after `after` (its update node), and
// returns it; returns `after` when `var` has no constraint. Used by Minimize.
Node* AddConstraint(Graph& graph, Output var, Node* after);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_CONSTRAINTS_H_
