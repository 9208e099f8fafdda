// ApplyGradients: the update half of Minimize. Builds the learning rate (the
// variable or a schedule's subgraph), asks the optimizer for the update of
// every variable (updates.h), and adds them as one fused multi-tensor node or
// one node per variable, then constraints, optimizer-wide state and the step
// increment.

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ops/array.h"
#include "core/status.h"
#include "optimizers/constraints.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {

Output GetOrCreateScalar(Graph& graph, const char* name, DType dtype, double initial) {
  if (Node* existing = graph.FindNode(name)) return existing->output();
  return ops::Variable(graph, name, Shape{}, Constant(initial), /*trainable=*/false, dtype);
}

// Every optimizer provides what ApplyGradients calls (a compile error naming
// the struct otherwise).
static_assert([]<size_t... I>(std::index_sequence<I...>) {
  return (DescribedOptimizer<std::variant_alternative_t<I, Optimizer>> && ...);
}(std::make_index_sequence<std::variant_size_v<Optimizer>>()));

std::string OptimizerName(const Optimizer& optimizer) { return VariantName(optimizer); }

absl::Status ValidateOptimizer(const Optimizer& optimizer, const MinimizeOptions& options) {
  if (options.schedule) {
    GF_RETURN_IF_ERROR(ValidateSchedule(*options.schedule));
  } else {
    const double lr = std::visit([](const auto& o) { return o.learning_rate; }, optimizer);
    if (!(lr > 0) || !std::isfinite(lr)) {
      return absl::InvalidArgumentError(absl::StrCat("the learning rate must be > 0, got ", lr));
    }
  }
  return std::visit([](const auto& o) { return ValidateFields(o); }, optimizer);
}

namespace {

absl::Status CheckPairs(const std::vector<std::pair<Output, Output>>& grads_and_vars) {
  if (grads_and_vars.empty()) return absl::InvalidArgumentError("no variables to update");
  absl::flat_hash_set<const Node*> seen;
  for (const auto& [grad, var] : grads_and_vars) {
    if (!grad.valid() || !var.valid()) return absl::InvalidArgumentError("an invalid gradient or variable");
    if (var.node->op->source != SourceKind::kVariable || var.dtype() != DType::kF32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", var.name(), "' (", var.node->op_name(), " ", var.type().ToString(),
          ") is not a f32 variable: only variables can be updated"));
    }
    if (grad.dtype() != DType::kF32 || grad.shape() != var.shape()) {
      return absl::InvalidArgumentError(absl::StrCat("the gradient '", grad.name(), "' ",
                                                     grad.type().ToString(), " does not match the variable '",
                                                     var.name(), "' ", var.type().ToString()));
    }
    if (!seen.insert(var.node).second) {
      return absl::InvalidArgumentError(absl::StrCat("the variable '", var.name(), "' is listed twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Output ApplyGradients(Graph& graph, const std::vector<std::pair<Output, Output>>& grads_and_vars,
                      const Optimizer& optimizer, const MinimizeOptions& options) {
  if (!graph.ok()) return {};
  absl::Status valid = ValidateOptimizer(optimizer, options);
  if (valid.ok()) valid = CheckPairs(grads_and_vars);
  if (!valid.ok()) {
    graph.RecordError(absl::Status(valid.code(), absl::StrCat("ApplyGradients: ", valid.message())));
    return {};
  }
  Output step = GetOrCreateScalar(graph, kStepName, DType::kI64, 0);
  Output learning_rate =
      options.schedule
          ? BuildSchedule(Scope(graph, graph.UniqueName("optimizer/schedule")), step, *options.schedule)
          : GetOrCreateScalar(graph, kLearningRateName, DType::kF32,
                              std::visit([](const auto& o) { return o.learning_rate; }, optimizer));
  if (!graph.ok()) return {};
  // A graph has one learning-rate variable: a second optimizer asking for
  // another rate would silently train with the first one's.
  const double requested = std::visit([](const auto& o) { return o.learning_rate; }, optimizer);
  const double existing = learning_rate.node->attr<Initializer>("initializer").value;
  if (!options.schedule && existing != requested) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "ApplyGradients: this graph already has '", kLearningRateName, "' starting at ", existing,
        " (an earlier Minimize/ApplyGradients); another optimizer cannot start at ", requested,
        ". Use one optimizer per graph, or give both the same rate and change it with "
        "VariableStore::Set")));
    return {};
  }

  // One UpdateSpec per variable; slots are created here, in variable order.
  std::vector<UpdateSpec> specs;
  std::vector<Scope> scopes;  // per-variable nodes go in "<variable>/update"
  for (const auto& [grad, var] : grads_and_vars) {
    scopes.push_back(options.fused_updates
                         ? Scope(graph)
                         : Scope(graph, graph.UniqueName(absl::StrCat(var.node->name, "/update"))));
    UpdateContext u{scopes.back(), var, grad, learning_rate, step};
    specs.push_back(std::visit([&](const auto& o) { return o.DescribeUpdate(u); }, optimizer));
    if (!graph.ok()) return {};
  }

  // The update node of each variable (the same node for all when fused).
  std::vector<Node*> update_of;
  if (options.fused_updates) {
    std::vector<Output> inputs;
    for (const UpdateSpec& spec : specs) inputs.insert(inputs.end(), spec.tensors.begin(), spec.tensors.end());
    inputs.insert(inputs.end(), specs[0].scalars.begin(), specs[0].scalars.end());
    Attrs attrs = specs[0].attrs;
    attrs["num_vars"] = static_cast<int64_t>(specs.size());
    Node* fused = graph.NewNode(graph, specs[0].op, std::move(inputs), std::move(attrs), "optimizer/update");
    if (fused == nullptr) return {};
    update_of.assign(specs.size(), fused);
  } else {
    for (size_t i = 0; i < specs.size(); ++i) {
      std::vector<Output> inputs = specs[i].tensors;
      inputs.insert(inputs.end(), specs[i].scalars.begin(), specs[i].scalars.end());
      Node* node = graph.NewNode(scopes[i], specs[i].op, std::move(inputs), specs[i].attrs);
      if (node == nullptr) return {};
      update_of.push_back(node);
    }
  }

  // Constraints (max-norm) rescale a variable after its update.
  std::vector<Node*> done;
  for (size_t i = 0; i < grads_and_vars.size(); ++i) {
    Node* last = AddConstraint(graph, grads_and_vars[i].second, update_of[i]);
    if (last == nullptr) return {};
    if (std::find(done.begin(), done.end(), last) == done.end()) done.push_back(last);
  }
  std::vector<Node*> updates = done;
  Node* after = std::visit([&](const auto& o) { return AddAfterUpdates(o, graph, step, updates); }, optimizer);
  if (!graph.ok()) return {};
  if (after != nullptr) done.push_back(after);

  Node* increment = graph.NewNode(graph, "IncrementStep", {step}, {}, "increment_step", done);
  if (increment == nullptr) return {};
  std::vector<Node*> train_deps = {increment};
  train_deps.insert(train_deps.end(), options.extra_updates.begin(), options.extra_updates.end());
  return ops::Group(graph, train_deps, "train");
}

}  // namespace gradflow::optimizers
