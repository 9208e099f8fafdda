#include "graph/autodiff.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "core/status.h"
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

using Partials = std::map<ValueKey, std::vector<Output>>;

// The nodes between the xs and y. from_x[i]: node i depends on some x.
// to_y[i]: y depends on node i, reached through y's edges (which hold the
// mutable nodes gradient functions take); nullptr for the others.
struct Path {
  std::vector<char> from_x;
  std::vector<Node*> to_y;
};

Path FindPath(const Graph& graph, Output y, const std::vector<Output>& xs) {
  const int n = graph.num_nodes();
  Path path{std::vector<char>(n, 0), std::vector<Node*>(n, nullptr)};
  for (const Output& x : xs) path.from_x[x.node->id] = 1;
  for (const Node& node : graph.nodes()) {
    for (const Output& in : node.inputs) path.from_x[node.id] |= path.from_x[in.node->id];
  }
  path.to_y[y.node->id] = y.node;
  for (int i = y.node->id; i >= 0; --i) {
    if (path.to_y[i] == nullptr) continue;
    for (const Output& in : path.to_y[i]->inputs) path.to_y[in.node->id] = in.node;
  }
  return path;
}

// Adds the gradient nodes of `node` (whose outputs have partial gradients
// in `partials`) and records the partials of its inputs that lead to an x.
absl::Status Backpropagate(Graph& graph, Node& node, const std::vector<char>& from_x, Partials& partials) {
  bool feeds_from_x = false;  // some input carries gradient back toward an x
  for (const Output& in : node.inputs) feeds_from_x |= from_x[in.node->id] != 0;
  bool has_dy = false;
  for (int k = 0; k < static_cast<int>(node.outputs.size()); ++k) has_dy |= partials.contains({node.id, k});
  if (!feeds_from_x || !has_dy) return absl::OkStatus();
  if (!node.op->grad) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AddGradients: node '", node.name, "' (", node.op_name(),
        ") lies between y and an x but has no gradient: ", node.op->no_gradient_reason));
  }
  Scope scope(graph, graph.UniqueName(absl::StrCat("gradients/", node.name)));
  std::vector<Output> dy;
  for (int k = 0; k < static_cast<int>(node.outputs.size()); ++k) {
    auto it = partials.find({node.id, k});
    dy.push_back(it == partials.end() ? graph.AddNode1(scope, kZerosLike, {node.output(k)}, {}, "zeros")
                                      : SumPartials(scope, it->second));
  }
  GradContext ctx{scope, node, dy};
  std::vector<Output> dx = node.op->grad(ctx);
  if (!graph.ok()) return graph.status();
  for (int j = 0; j < static_cast<int>(node.inputs.size()) && j < static_cast<int>(dx.size()); ++j) {
    const Output& in = node.inputs[j];
    if (dx[j].valid() && from_x[in.node->id]) partials[KeyOf(in)].push_back(dx[j]);
  }
  return absl::OkStatus();
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
  for (const Output& x : xs) {
    if (!x.valid() || x.node->graph != &graph) {
      return absl::InvalidArgumentError("AddGradients: an x is invalid or from another graph");
    }
  }
  const Path path = FindPath(graph, y, xs);
  Partials partials;
  Scope root(graph, "gradients");
  partials[KeyOf(y)].push_back(graph.AddNode1(root, kOnesLike, {y}, {}, "seed"));
  for (int i = y.node->id; i >= 0; --i) {
    if (path.to_y[i] != nullptr) GF_RETURN_IF_ERROR(Backpropagate(graph, *path.to_y[i], path.from_x, partials));
  }
  std::vector<Output> grads;
  for (const Output& x : xs) {
    auto it = partials.find(KeyOf(x));
    grads.push_back(it == partials.end() ? graph.AddNode1(root, kZerosLike, {x}, {}, "zeros")
                                         : SumPartials(root, it->second));
  }
  if (!graph.ok()) return graph.status();
  return grads;
}

bool IsZeroGradientOf(const Output& grad, const Output& x) {
  return grad.valid() && grad.node->op_name() == kZerosLike && grad.node->inputs[0] == x;
}

}  // namespace gradflow
