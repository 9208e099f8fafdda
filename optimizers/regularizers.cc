#include "optimizers/regularizers.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/op_registry.h"
#include "ops/array.h"
#include "ops/penalty.h"

namespace gradflow::optimizers {

void SetRegularizer(Output var, const Regularizer& regularizer) {
  if (!var.valid()) return;  // an earlier builder failed; its error is kept
  Graph& graph = *var.node->graph;
  if (var.node->op->source != SourceKind::kVariable) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "SetRegularizer: '", var.name(), "' is a ", var.node->op_name(),
        " node; a regularizer attaches to a variable")));
    return;
  }
  if (!std::isfinite(regularizer.l1) || !std::isfinite(regularizer.l2)) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "SetRegularizer: the factors for '", var.name(), "' must be finite numbers, got l1 = ",
        regularizer.l1, ", l2 = ", regularizer.l2)));
    return;
  }
  var.node->attrs["l1"] = regularizer.l1;
  var.node->attrs["l2"] = regularizer.l2;
}

Output AddRegularizationLosses(Graph& graph, Output loss) {
  if (!graph.ok() || !loss.valid()) return loss;
  // Walk everything the loss depends on (ids are topological): collect the
  // penalized variables, and the variables whose penalty is already there.
  std::vector<char> needed(graph.num_nodes(), 0);
  needed[loss.node->id] = 1;
  std::vector<Node*> penalized;
  absl::flat_hash_set<const Node*> already;
  for (int i = loss.node->id; i >= 0; --i) {
    if (!needed[i]) continue;
    Node& node = graph.node(i);
    for (const Output& in : node.inputs) needed[in.node->id] = 1;
    for (Node* c : node.control_inputs) needed[c->id] = 1;
    if (ops::IsL1L2Penalty(node)) already.insert(node.inputs[0].node);
    if (node.op->source == SourceKind::kVariable && node.has_attr("l1")) penalized.push_back(&node);
  }
  std::vector<Output> terms = {loss};
  for (auto it = penalized.rbegin(); it != penalized.rend(); ++it) {  // creation order
    Node* var = *it;
    const double l1 = var->attr<double>("l1"), l2 = var->attr<double>("l2");
    if (already.contains(var) || (l1 == 0 && l2 == 0)) continue;
    terms.push_back(ops::L1L2Penalty(Scope(graph, var->name), var->output(), l1, l2));
  }
  if (terms.size() == 1) return loss;
  return graph.AddNode1(graph, "AddN", std::move(terms), {}, "regularized_loss");
}

}  // namespace gradflow::optimizers
