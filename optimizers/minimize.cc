#include "absl/strings/str_cat.h"
#include "graph/autodiff.h"
#include "ops/array.h"
#include "ops/op_util.h"
#include "ops/penalty.h"
#include "optimizers/regularizers.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {

// step += 1 (an i64 scalar variable), after the updates of a training step.
GF_REGISTER_OP(OpDef{
    .name = "IncrementStep",
    .num_inputs = 1,
    .infer = [](InferContext& ctx) {
      if (ctx.dtype(0) != DType::kI64 || ctx.shape(0).rank() != 0) {
        return ctx.Error(absl::StrCat(ctx.Describe(0), " must be an i64 scalar variable"));
      }
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      int64_t* step = k.in<int64_t>(0);
      return ops::MakeKernel([step](const RunContext&) {
        ++*step;
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: writes a variable, produces no value",
    .mutates_input = 0,
});

Output UpdateContext::Slot(const std::string& name, Initializer init) const {
  Scope root(scope.graph());
  return ops::Variable(root, absl::StrCat(var.node->name, "/", name), var.shape(), std::move(init),
                       /*trainable=*/false);
}

std::vector<Output> TrainableVariables(Graph& graph, Output y) {
  std::vector<char> needed(graph.num_nodes(), 0);
  needed[y.node->id] = 1;
  std::vector<Output> vars;
  for (int i = y.node->id; i >= 0; --i) {
    if (!needed[i]) continue;
    Node& node = graph.node(i);
    for (const Output& in : node.inputs) needed[in.node->id] = 1;
    if (node.op->source == SourceKind::kVariable && node.attr<bool>("trainable")) {
      vars.push_back(node.output());
    }
  }
  std::reverse(vars.begin(), vars.end());
  return vars;
}

Output Minimize(Graph& graph, Output loss, const Optimizer& optimizer,
                const MinimizeOptions& options) {
  if (!graph.ok() || !loss.valid()) return {};
  if (loss.dtype() != DType::kF32 || loss.shape().rank() != 0) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "Minimize: the loss '", loss.name(), "' must be a f32 scalar, got ", loss.type().ToString(),
        " (reduce it with ops::ReduceMean)")));
    return {};
  }
  loss = AddRegularizationLosses(graph, loss);  // each penalty once, even if already added
  std::vector<Output> vars = options.var_list.empty() ? TrainableVariables(graph, loss)
                                                      : options.var_list;
  if (vars.empty()) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "Minimize: the loss '", loss.name(), "' depends on no trainable variable")));
    return {};
  }
  // Hyperparameters are checked before anything is added to the graph.
  if (absl::Status valid = ValidateOptimizer(optimizer, options); !valid.ok()) {
    graph.RecordError(absl::Status(valid.code(), absl::StrCat("Minimize: ", valid.message())));
    return {};
  }
  auto grads = AddGradients(graph, loss, vars);
  if (!grads.ok()) {
    graph.RecordError(grads.status());
    return {};
  }
  for (Output& grad : *grads) grad = ops::FusePenaltyGradient(grad);  // data + penalty gradient in one pass
  if (options.data_parallel) {
    *grads = AllReduceGradients(graph, *grads, *options.data_parallel);
    if (!graph.ok()) return {};
  }
  if (options.clip) {
    *grads = ClipGradients(graph.Scope("gradient_clipping"), *grads, *options.clip);
    if (!graph.ok()) return {};
  }
  // Updates, constraints (max-norm after each update) and the step increment.
  std::vector<std::pair<Output, Output>> grads_and_vars;
  for (size_t i = 0; i < vars.size(); ++i) grads_and_vars.push_back({(*grads)[i], vars[i]});
  return ApplyGradients(graph, grads_and_vars, optimizer, options);
}

}  // namespace gradflow::optimizers
