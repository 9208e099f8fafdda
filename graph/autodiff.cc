#include "graph/autodiff.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "graph/op_registry.h"

namespace gradflow {
namespace {

// Autodiff needs three helper ops; they live in ops/ and are found by name.
constexpr char kAddN[] = "AddN";
constexpr char kOnesLike[] = "OnesLike";
constexpr char kZerosLike[] = "ZerosLike";

struct ValueKey {
  int node, index;
  auto operator<=>(const ValueKey&) const = default;
};

ValueKey KeyOf(const Output& o) { return {o.node->id, o.index}; }

// Sums the partial gradients of one value (AddN if there are several).
Output SumPartials(const Scope& scope, const std::vector<Output>& partials) {
  if (partials.size() == 1) return partials[0];
  return scope.graph().AddNode1(scope, kAddN, partials, {}, "AddN");
}

}  // namespace

absl::StatusOr<std::vector<Output>> AddGradients(Graph& graph, Output y,
                                                 const std::vector<Output>& xs) {
  if (!graph.ok()) return graph.status();
  if (!y.valid()) return absl::InvalidArgumentError("AddGradients: y is not a valid output");
  if (y.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AddGradients: y '", y.name(), "' is ", y.type().ToString(), "; only f32 is differentiable"));
  }
  const int n = graph.num_nodes();
  // from_x[i]: node i depends on some x; to_y[i]: y depends on node i.
  std::vector<char> from_x(n, 0), to_y(n, 0);
  for (const Output& x : xs) {
    if (!x.valid() || x.node->graph != &graph) {
      return absl::InvalidArgumentError("AddGradients: an x is invalid or from another graph");
    }
    from_x[x.node->id] = 1;
  }
  for (const Node& node : graph.nodes()) {
    for (const Output& in : node.inputs) from_x[node.id] |= from_x[in.node->id];
  }
  // The nodes y depends on, by id, reached through y's edges (which hold
  // the mutable nodes gradient functions take).
  std::vector<Node*> nodes(n, nullptr);
  nodes[y.node->id] = y.node;
  to_y[y.node->id] = 1;
  for (int i = y.node->id; i >= 0; --i) {
    if (!to_y[i]) continue;
    for (const Output& in : nodes[i]->inputs) {
      to_y[in.node->id] = 1;
      nodes[in.node->id] = in.node;
    }
  }

  std::map<ValueKey, std::vector<Output>> partials;
  Scope root(graph, "gradients");
  partials[KeyOf(y)].push_back(graph.AddNode1(root, kOnesLike, {y}, {}, "seed"));

  for (int i = y.node->id; i >= 0; --i) {
    Node* node = nodes[i];
    if (!to_y[i]) continue;
    bool feeds_from_x = false;  // some input carries gradient back toward an x
    for (const Output& in : node->inputs) feeds_from_x |= from_x[in.node->id] != 0;
    if (!feeds_from_x) continue;
    bool has_dy = false;
    for (int k = 0; k < static_cast<int>(node->outputs.size()); ++k) {
      has_dy |= partials.contains({i, k});
    }
    if (!has_dy) continue;
    if (!node->op->grad) {
      return absl::InvalidArgumentError(absl::StrCat(
          "AddGradients: node '", node->name, "' (", node->op_name(),
          ") lies between y and an x but has no gradient: ", node->op->no_gradient_reason));
    }
    Scope scope(graph, graph.UniqueName(absl::StrCat("gradients/", node->name)));
    std::vector<Output> dy;
    for (int k = 0; k < static_cast<int>(node->outputs.size()); ++k) {
      auto it = partials.find({i, k});
      dy.push_back(it == partials.end()
                       ? graph.AddNode1(scope, kZerosLike, {node->output(k)}, {}, "zeros")
                       : SumPartials(scope, it->second));
    }
    GradContext ctx{scope, *node, dy};
    std::vector<Output> dx = node->op->grad(ctx);
    if (!graph.ok()) return graph.status();
    for (int j = 0; j < static_cast<int>(node->inputs.size()) && j < static_cast<int>(dx.size()); ++j) {
      const Output& in = node->inputs[j];
      if (dx[j].valid() && from_x[in.node->id]) partials[KeyOf(in)].push_back(dx[j]);
    }
  }

  std::vector<Output> grads;
  for (const Output& x : xs) {
    auto it = partials.find(KeyOf(x));
    if (it == partials.end()) {
      grads.push_back(graph.AddNode1(root, kZerosLike, {x}, {}, "zeros"));
    } else {
      grads.push_back(SumPartials(root, it->second));
    }
  }
  if (!graph.ok()) return graph.status();
  return grads;
}

}  // namespace gradflow
