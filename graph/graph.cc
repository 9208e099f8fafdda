#include "graph/graph.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "graph/op_registry.h"

namespace gradflow {

std::string TensorType::ToString() const {
  return absl::StrCat(std::string(DTypeName(dtype)), shape.ToString());
}

const TensorType& Output::type() const { return node->outputs[index]; }

std::string Output::name() const {
  return index == 0 ? node->name : absl::StrCat(node->name, ":", index);
}

const std::string& Node::op_name() const { return op->name; }

const AttrValue* Node::FindAttr(std::string_view key) const {
  auto it = attrs.find(key);
  if (it != attrs.end()) return &it->second;
  const AttrDef* def = op == nullptr ? nullptr : FindAttrDef(*op, key);
  return def != nullptr && def->default_value ? &*def->default_value : nullptr;
}

Scope Scope::Sub(std::string_view name) const {
  return ::gradflow::Scope(*graph_, graph_->UniqueName(Qualify(name)));
}

std::string Scope::Qualify(std::string_view name) const {
  return prefix_.empty() ? std::string(name) : absl::StrCat(prefix_, "/", std::string(name));
}

std::string Graph::UniqueName(std::string_view base_view) {
  const std::string base(base_view);
  std::string name = base;
  int& suffix = next_suffix_[name];
  while (used_names_.contains(name)) name = absl::StrCat(base, "_", ++suffix);
  used_names_.insert(name);
  return name;
}

void Graph::RecordError(absl::Status error) {
  if (status_.ok()) status_ = std::move(error);
}

std::vector<Output> Graph::AddNode(const ::gradflow::Scope& scope, std::string_view op_name,
                                   std::vector<Output> inputs, Attrs attrs,
                                   std::string_view name, std::vector<Node*> control_inputs) {
  Node* node = NewNode(scope, op_name, std::move(inputs), std::move(attrs), name,
                       std::move(control_inputs));
  std::vector<Output> outs;
  if (node == nullptr) return outs;
  for (int i = 0; i < static_cast<int>(node->outputs.size()); ++i) outs.push_back(node->output(i));
  return outs;
}

namespace {

// bf16 is storage for the few ops that say they take it (OpDef::takes_bf16):
// every other kernel reads its inputs as C++ arithmetic types.
absl::Status CheckBFloat16Inputs(const OpDef& op, const std::string& node_name,
                                 const std::vector<Output>& inputs) {
  if (op.takes_bf16) return absl::OkStatus();
  for (const Output& in : inputs) {
    if (in.dtype() != DType::kBF16) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "node '", node_name, "' (", op.name, "): input '", in.name(),
        "' is bf16, which only the matrix-product ops and Cast take; cast it to f32 first (ops::Cast)"));
  }
  return absl::OkStatus();
}

}  // namespace

Node* Graph::NewNode(const ::gradflow::Scope& scope, std::string_view op_name,
                     std::vector<Output> inputs, Attrs attrs, std::string_view name,
                     std::vector<Node*> control_inputs) {
  const OpDef* op = OpRegistry::Global().Find(op_name);
  std::string full_name = UniqueName(scope.Qualify(name.empty() ? op_name : name));
  if (op == nullptr) {
    RecordError(absl::NotFoundError(absl::StrCat(
        "node '", full_name, "': op '", std::string(op_name), "' is not registered (is its library linked?)")));
    return nullptr;
  }
  for (const Output& in : inputs) {
    if (!in.valid()) return nullptr;  // an earlier builder failed; its error is kept
    if (in.node->graph != this) {
      RecordError(absl::InvalidArgumentError(absl::StrCat(
          "node '", full_name, "': input '", in.name(), "' belongs to another graph")));
      return nullptr;
    }
  }
  if (op->num_inputs >= 0 && static_cast<int>(inputs.size()) != op->num_inputs) {
    RecordError(absl::InvalidArgumentError(absl::StrCat("node '", full_name, "' (", std::string(op_name),
                                                        "): takes ", op->num_inputs,
                                                        " inputs, got ", inputs.size())));
    return nullptr;
  }
  if (absl::Status s = CheckAttrs(*op, full_name, attrs); !s.ok()) {
    RecordError(std::move(s));
    return nullptr;
  }
  if (absl::Status s = CheckBFloat16Inputs(*op, full_name, inputs); !s.ok()) {
    RecordError(std::move(s));
    return nullptr;
  }
  Node& node = nodes_.emplace_back();
  node.id = static_cast<int>(nodes_.size()) - 1;
  node.name = full_name;
  node.op = op;
  node.inputs = std::move(inputs);
  node.control_inputs = std::move(control_inputs);
  node.attrs = std::move(attrs);
  node.graph = this;

  std::vector<TensorType> input_types;
  for (const Output& in : node.inputs) input_types.push_back(in.type());
  InferContext ctx(node, input_types);
  absl::Status s = op->infer(ctx);
  if (!s.ok()) {
    RecordError(s);
    nodes_.pop_back();  // nothing refers to it yet
    return nullptr;
  }
  node.outputs = std::move(ctx.outputs());
  for (const TensorType& out : node.outputs) {
    // An output whose known dims alone overflow int64 bytes would wrap every
    // size computed from it later (issue 13 item 6): refuse it here.
    Shape known = out.shape;
    for (int i = 0; i < known.rank(); ++i) known[i] = std::max<int64_t>(known[i], 1);
    if (absl::StatusOr<size_t> bytes = known.CheckedNumBytes(out.dtype); !bytes.ok()) {
      RecordError(absl::InvalidArgumentError(absl::StrCat("node '", full_name, "' (", std::string(op_name),
                                                          "): output ", out.shape.ToString(), ": ",
                                                          bytes.status().message())));
      nodes_.pop_back();
      return nullptr;
    }
  }
  by_name_[node.name] = &node;
  return &node;
}

Output Graph::AddNode1(const ::gradflow::Scope& scope, std::string_view op_name,
                       std::vector<Output> inputs, Attrs attrs, std::string_view name) {
  std::vector<Output> outs = AddNode(scope, op_name, std::move(inputs), std::move(attrs), name);
  return outs.empty() ? Output{} : outs[0];
}

Node* Graph::FindNode(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

Output Graph::FindOutput(std::string_view name) const {
  int index = 0;
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && absl::SimpleAtoi(std::string(name.substr(colon + 1)), &index)) {
    name = name.substr(0, colon);
  } else {
    index = 0;
  }
  Node* node = FindNode(name);
  if (node == nullptr || index < 0 || index >= static_cast<int>(node->outputs.size())) return {};
  return Output{node, index};
}

std::string DotQuoted(std::initializer_list<std::string_view> lines) {
  std::string dot = "\"";
  for (const std::string_view* line = lines.begin(); line != lines.end(); ++line) {
    if (line != lines.begin()) dot += "\\n";  // DOT's line break
    dot += absl::StrReplaceAll(std::string(*line), {{"\\", "\\\\"}, {"\"", "\\\""}});
  }
  return dot + "\"";
}

namespace {

// An edge's shape, with its dtype when it is not f32 (the casts of a mixed
// precision graph, integer labels).
std::string EdgeLabel(const TensorType& type) {
  return type.dtype == DType::kF32 ? type.shape.ToString() : type.ToString();
}

}  // namespace

std::string Graph::ToDot() const {
  std::string dot = "digraph gradflow {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n";
  for (const Node& n : nodes_) {
    std::string shape = "box";
    std::string style;
    switch (n.op->source) {
      case SourceKind::kVariable: shape = "ellipse"; style = ", style=filled, fillcolor=lightyellow"; break;
      case SourceKind::kPlaceholder: shape = "invhouse"; break;
      case SourceKind::kConstant: shape = "plaintext"; break;
      case SourceKind::kNone:
        if (n.op->mutates_input >= 0) style = ", style=filled, fillcolor=lightpink";
        else if (n.name.starts_with("gradients/")) style = ", style=filled, fillcolor=lightblue";
        break;
    }
    absl::StrAppend(&dot, "  n", n.id, " [label=", DotQuoted({n.name, n.op->name}),
                    ", shape=", shape, style, "];\n");
    for (const Output& in : n.inputs) {
      absl::StrAppend(&dot, "  n", in.node->id, " -> n", n.id, " [label=",
                      DotQuoted({EdgeLabel(in.type())}), "];\n");
    }
    for (const Node* c : n.control_inputs) {
      absl::StrAppend(&dot, "  n", c->id, " -> n", n.id, " [style=dashed];\n");
    }
  }
  return dot + "}\n";
}

}  // namespace gradflow
