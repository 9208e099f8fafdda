#ifndef GRADFLOW_OPTIMIZERS_UPDATES_H_
#define GRADFLOW_OPTIMIZERS_UPDATES_H_

// What an optimizer needs to add the update node of one variable. Each
// optimizer file defines `Node* AddUpdate(const TheOptimizer&, const UpdateContext&)`.

#include <string>

#include "graph/graph.h"
#include "graph/op_registry.h"
#include "optimizers/optimizers.h"

namespace gradflow::optimizers {

struct UpdateContext {
  Scope scope;           // "<variable>/update": where update nodes go
  Output var;            // the variable being trained
  Output grad;           // its gradient (after any clipping)
  Output learning_rate;  // f32 scalar
  Output step;           // i64 scalar: updates applied so far

  // A zero-initialized, non-trainable slot variable named "<variable>/<name>"
  // with the variable's shape (Keras: "dense/kernel/m").
  Output Slot(const std::string& name) const;
};

Node* AddUpdate(const SGD& opt, const UpdateContext& u);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_UPDATES_H_
