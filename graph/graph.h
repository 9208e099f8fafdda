#ifndef GRADFLOW_GRAPH_GRAPH_H_
#define GRADFLOW_GRAPH_GRAPH_H_

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "core/dtype.h"
#include "core/initializers.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace gradflow {

class Graph;
struct Node;
struct OpDef;

// The static type of a value flowing along an edge.
struct TensorType {
  DType dtype = DType::kF32;
  Shape shape;
  std::string ToString() const;  // "f32[-1, 784]"
};

// A typed handle to one output of a node. Invalid (node == nullptr) when the
// builder that made it failed; the error is kept in Graph::status().
struct Output {
  Node* node = nullptr;
  int index = 0;

  bool valid() const { return node != nullptr; }
  const TensorType& type() const;
  const Shape& shape() const { return type().shape; }
  DType dtype() const { return type().dtype; }
  // "node_name" for output 0, "node_name:1" otherwise.
  std::string name() const;
  friend bool operator==(const Output&, const Output&) = default;
};

using AttrValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                               Tensor, Initializer>;
using Attrs = std::map<std::string, AttrValue, std::less<>>;

struct Node {
  int id = 0;  // creation order; inputs always have smaller ids
  std::string name;
  const OpDef* op = nullptr;
  std::vector<Output> inputs;
  std::vector<Node*> control_inputs;  // run before this node; no data flows
  Attrs attrs;
  std::vector<TensorType> outputs;
  Graph* graph = nullptr;

  Output output(int i = 0) { return Output{this, i}; }
  // Set on this node (a declared default does not count).
  bool has_attr(std::string_view key) const { return attrs.find(key) != attrs.end(); }
  // The attr's value, else its default from the op's declaration
  // (OpDef::attrs). Graph::AddNode has checked every attr against that
  // declaration, so for a declared attr this is the value; a key the op does
  // not declare, or a wrong T, is a bug in the op and yields T{} (never UB,
  // never an exception).
  template <typename T> const T& attr(std::string_view key) const {
    if (const T* value = std::get_if<T>(FindAttr(key))) return *value;
    static const T kEmpty{};
    return kEmpty;
  }
  // The value set on the node (of type T), else `fallback`: for code outside
  // the op, such as tests, probing an attr the node may not carry. Ops read
  // their own declared attrs with attr<T>, whose defaults are the declaration's.
  template <typename T> T attr_or(std::string_view key, T fallback) const {
    auto it = attrs.find(key);
    const T* value = it == attrs.end() ? nullptr : std::get_if<T>(&it->second);
    return value != nullptr ? *value : fallback;
  }
  // The value set on the node or declared as default; nullptr if neither.
  const AttrValue* FindAttr(std::string_view key) const;
  const std::string& op_name() const;
};

// A name prefix for the nodes a builder adds ("hidden/kernel"). Builders take
// a Scope; a Graph converts to its root scope.
class Scope {
 public:
  Scope(Graph& graph) : graph_(&graph) {}  // NOLINT: implicit by design
  Scope(Graph& graph, std::string prefix) : graph_(&graph), prefix_(std::move(prefix)) {}

  Graph& graph() const { return *graph_; }
  const std::string& prefix() const { return prefix_; }
  // A child scope; its name is made unique in the graph ("dense", "dense_1").
  Scope Sub(std::string_view name) const;
  // The full name of a node named `name` in this scope.
  std::string Qualify(std::string_view name) const;

 private:
  Graph* graph_;
  std::string prefix_;
};

// A static dataflow graph. Builders add nodes through AddNode, which checks the
// inputs, runs the op's shape inference and records the first error.
class Graph {
 public:
  explicit Graph(uint64_t seed = 42) : seed_(seed) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Adds a node of op `op_name`. On any error returns invalid outputs and keeps
  // the first error in status(); invalid inputs (an earlier error) propagate.
  std::vector<Output> AddNode(const ::gradflow::Scope& scope, std::string_view op_name,
                              std::vector<Output> inputs, Attrs attrs = {},
                              std::string_view name = "",
                              std::vector<Node*> control_inputs = {});
  // As AddNode, returning the node itself (nullptr on error): for ops with
  // no outputs, such as variable updates.
  Node* NewNode(const ::gradflow::Scope& scope, std::string_view op_name,
                std::vector<Output> inputs, Attrs attrs = {}, std::string_view name = "",
                std::vector<Node*> control_inputs = {});
  // As AddNode, for ops with exactly one output.
  Output AddNode1(const ::gradflow::Scope& scope, std::string_view op_name, std::vector<Output> inputs,
                  Attrs attrs = {}, std::string_view name = "");

  // A child scope of the root: g.Scope("hidden") names nodes "hidden/...".
  ::gradflow::Scope Scope(std::string_view name) { return ::gradflow::Scope(*this).Sub(name); }

  const absl::Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  // Records `error` unless an earlier one is kept; returns it for convenience.
  void RecordError(absl::Status error);

  Node* FindNode(std::string_view name) const;
  // The node with this name plus optional ":index" suffix.
  Output FindOutput(std::string_view name) const;
  const std::deque<Node>& nodes() const { return nodes_; }
  // Node `id` (0 <= id < num_nodes()), editable: for passes over a graph
  // they may change (optimizers walking the loss's inputs).
  Node& node(int id) { return nodes_[id]; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  uint64_t seed() const { return seed_; }
  // Bumped on every added node: plans compiled earlier can tell the graph changed.
  int64_t version() const { return static_cast<int64_t>(nodes_.size()); }

  // Graphviz DOT of the whole graph (ops as boxes, variables as ellipses,
  // edges labelled with shapes).
  std::string ToDot() const;

  // A unique name: `base` itself if unused, else base_1, base_2, ...
  std::string UniqueName(std::string_view base);

 private:
  uint64_t seed_;
  std::deque<Node> nodes_;  // deque: Node* stay valid as nodes are added
  absl::flat_hash_map<std::string, Node*> by_name_;
  absl::flat_hash_set<std::string> used_names_;         // nodes and scopes
  absl::flat_hash_map<std::string, int> next_suffix_;  // base name -> last suffix used
  absl::Status status_;
};

// A Graphviz DOT string of `lines` (a label's lines): quotes and
// backslashes escaped, as names come from users.
std::string DotQuoted(std::initializer_list<std::string_view> lines);

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_GRAPH_H_
