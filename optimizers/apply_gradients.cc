// ApplyGradients: the update half of Minimize. Builds the learning rate (the
// variable or a schedule's subgraph), asks the optimizer for the update of
// every variable (updates.h), and adds them as one fused multi-tensor node or
// one node per variable, then constraints, optimizer-wide state and the step
// increment.

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

namespace {

double InitialLearningRate(const Optimizer& optimizer) {
  return std::visit([](const auto& o) { return o.learning_rate; }, optimizer);
}

}  // namespace

std::string OptimizerName(const Optimizer& optimizer) { return VariantName(optimizer); }

absl::StatusOr<Optimizer> OptimizerFromName(std::string_view name) {
  for (const Optimizer& optimizer : EveryAlternative<Optimizer>()) {
    if (absl::AsciiStrToLower(OptimizerName(optimizer)) == absl::AsciiStrToLower(absl::string_view(name.data(), name.size()))) {
      return optimizer;
    }
  }
  std::vector<std::string> names;
  for (const std::string& n : VariantNames<Optimizer>()) names.push_back(absl::AsciiStrToLower(n));
  return absl::InvalidArgumentError(absl::StrCat("unknown optimizer ", QuoteUserText(name),
                                                 "; valid names (any case, Keras 3's defaults): ",
                                                 absl::StrJoin(names, ", ")));
}

OptimizerSpec::OptimizerSpec(std::string_view name) : Optimizer(SGD{}) {
  absl::StatusOr<Optimizer> named = OptimizerFromName(name);
  if (named.ok()) {
    Optimizer::operator=(*named);
  } else {
    status_ = named.status();
  }
}

absl::Status ValidateOptimizer(const Optimizer& optimizer, const MinimizeOptions& options) {
  if (options.schedule) {
    GF_RETURN_IF_ERROR(ValidateSchedule(*options.schedule));
  } else {
    const double lr = InitialLearningRate(optimizer);
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

// The rate the updates read: the schedule's subgraph, or the graph's one
// learning-rate variable. Invalid (with the error recorded) when the graph
// already has a variable starting at another rate: a second optimizer asking
// for another rate would silently train with the first one's.
Output LearningRate(Graph& graph, Output step, const Optimizer& optimizer, const MinimizeOptions& options) {
  if (options.schedule) {
    return BuildSchedule(Scope(graph, graph.UniqueName("optimizer/schedule")), step, *options.schedule);
  }
  const double requested = InitialLearningRate(optimizer);
  Output rate = GetOrCreateScalar(graph, kLearningRateName, DType::kF32, requested);
  if (!rate.valid()) return {};
  const double existing = rate.node->attr<Initializer>("initializer").constant_value();
  if (existing == requested) return rate;
  graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
      "ApplyGradients: this graph already has '", kLearningRateName, "' starting at ", existing,
      " (an earlier Minimize/ApplyGradients); another optimizer cannot start at ", requested,
      ". Use one optimizer per graph, or give both the same rate and change it with "
      "VariableStore::Set")));
  return {};
}

// One UpdateSpec per variable, in variable order (its slots are created
// here), and the scope of each variable's update node ("<variable>/update").
struct DescribedUpdates {
  std::vector<UpdateSpec> specs;
  std::vector<Scope> scopes;
};

DescribedUpdates DescribeUpdates(Graph& graph, const std::vector<std::pair<Output, Output>>& grads_and_vars,
                                 const Optimizer& optimizer, const MinimizeOptions& options,
                                 Output learning_rate, Output step) {
  DescribedUpdates d;
  for (const auto& [grad, var] : grads_and_vars) {
    d.scopes.push_back(options.fused_updates
                           ? Scope(graph)
                           : Scope(graph, graph.UniqueName(absl::StrCat(var.node->name, "/update"))));
    UpdateContext u{d.scopes.back(), var, grad, learning_rate, step};
    d.specs.push_back(std::visit([&](const auto& o) { return o.DescribeUpdate(u); }, optimizer));
    if (!graph.ok()) break;
  }
  return d;
}

// The update node of each variable: one multi-tensor node shared by all when
// fused, else one each. Empty on error.
std::vector<Node*> AddUpdateNodes(Graph& graph, const DescribedUpdates& d, bool fused_updates) {
  const std::vector<UpdateSpec>& specs = d.specs;
  if (fused_updates) {
    std::vector<Output> inputs;
    for (const UpdateSpec& spec : specs) inputs.insert(inputs.end(), spec.tensors.begin(), spec.tensors.end());
    inputs.insert(inputs.end(), specs[0].scalars.begin(), specs[0].scalars.end());
    Attrs attrs = specs[0].attrs;
    attrs["num_vars"] = static_cast<int64_t>(specs.size());
    Node* fused = graph.NewNode(graph, specs[0].op, std::move(inputs), std::move(attrs), "optimizer/update");
    if (fused == nullptr) return {};
    return std::vector<Node*>(specs.size(), fused);
  }
  std::vector<Node*> update_of;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<Output> inputs = specs[i].tensors;
    inputs.insert(inputs.end(), specs[i].scalars.begin(), specs[i].scalars.end());
    Node* node = graph.NewNode(d.scopes[i], specs[i].op, std::move(inputs), specs[i].attrs);
    if (node == nullptr) return {};
    update_of.push_back(node);
  }
  return update_of;
}

// The nodes the step increment waits for: each variable's constraint (which
// rescales it after its update) or its update, then the optimizer-wide state
// update if the optimizer has one. Empty on error.
std::vector<Node*> AddAfterUpdateNodes(Graph& graph, const std::vector<std::pair<Output, Output>>& grads_and_vars,
                                       const std::vector<Node*>& update_of, const Optimizer& optimizer,
                                       Output step) {
  std::vector<Node*> done;
  for (size_t i = 0; i < grads_and_vars.size(); ++i) {
    Node* last = AddConstraint(graph, grads_and_vars[i].second, update_of[i]);
    if (last == nullptr) return {};
    if (std::find(done.begin(), done.end(), last) == done.end()) done.push_back(last);
  }
  const std::vector<Node*> updates = done;
  Node* after = std::visit([&](const auto& o) { return AddAfterUpdates(o, graph, step, updates); }, optimizer);
  if (!graph.ok()) return {};
  if (after != nullptr) done.push_back(after);
  return done;
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
  Output learning_rate = LearningRate(graph, step, optimizer, options);
  if (!graph.ok()) return {};
  const DescribedUpdates described = DescribeUpdates(graph, grads_and_vars, optimizer, options, learning_rate, step);
  if (!graph.ok()) return {};
  const std::vector<Node*> update_of = AddUpdateNodes(graph, described, options.fused_updates);
  if (update_of.empty()) return {};
  const std::vector<Node*> done = AddAfterUpdateNodes(graph, grads_and_vars, update_of, optimizer, step);
  if (done.empty()) return {};
  Node* increment = graph.NewNode(graph, "IncrementStep", {step}, {}, "increment_step", done);
  if (increment == nullptr) return {};
  std::vector<Node*> train_deps = {increment};
  train_deps.insert(train_deps.end(), options.extra_updates.begin(), options.extra_updates.end());
  return ops::Group(graph, train_deps, "train");
}

}  // namespace gradflow::optimizers
