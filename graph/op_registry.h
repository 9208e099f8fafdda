#ifndef GRADFLOW_GRAPH_OP_REGISTRY_H_
#define GRADFLOW_GRAPH_OP_REGISTRY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/communicator.h"
#include "graph/graph.h"

namespace gradflow {

// Train or inference: fixed when a plan is compiled, so kernels such as
// dropout and batch norm pick their behaviour once, never per step.
enum class Phase { kTrain, kInfer };

// Shape and dtype inference. Runs when a node is built (dim 0 may be -1) and
// again at compile time with concrete shapes; must depend only on the input
// types and the node's attrs.
class InferContext {
 public:
  InferContext(const Node& node, const std::vector<TensorType>& inputs)
      : node_(node), inputs_(inputs) {}

  const Node& node() const { return node_; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const TensorType& input(int i) const { return inputs_[i]; }
  const Shape& shape(int i) const { return inputs_[i].shape; }
  DType dtype(int i) const { return inputs_[i].dtype; }
  void AddOutput(DType dtype, Shape shape) { outputs_.push_back({dtype, std::move(shape)}); }
  std::vector<TensorType>& outputs() { return outputs_; }

  // "'hidden/MatMul' input 1 ('hidden/kernel' f32[300, 10])": names the producing node.
  std::string Describe(int i) const;
  // InvalidArgument prefixed with the node's name and op.
  absl::Status Error(std::string_view message) const;
  // Checks input i has dtype `want`.
  absl::Status ExpectDType(int i, DType want) const;

 private:
  const Node& node_;
  const std::vector<TensorType>& inputs_;
  std::vector<TensorType> outputs_;
};

struct RunContext {
  uint64_t step_seed = 0;  // fresh for every Run: random kernels derive their draws from it
  // Changes whenever a variable may have been written (VariableStore::version):
  // kernels that cache something computed from weights recompute it then.
  uint64_t variables_version = 0;
};

// A compiled kernel: pointers and primitives are fixed at creation; Run only
// computes.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual absl::Status Run(const RunContext& ctx) = 0;
  // Which of its op's implementations this kernel is, for ops with several
  // (graph/autotune.h); empty for the others.
  virtual std::string implementation() const { return {}; }
};

// Everything a kernel factory needs: concrete types and fixed buffer pointers.
struct KernelContext {
  const Node& node;
  Phase phase;
  std::vector<TensorType> input_types;
  std::vector<TensorType> output_types;
  std::vector<void*> inputs;
  std::vector<void*> outputs;
  // SessionOptions::autotune: how an op with several implementations picks
  // one (graph/autotune.h).
  std::string autotune = "first";
  // SessionOptions::communicator: the ranks collectives run over, or null.
  Communicator* communicator = nullptr;

  template <typename T> T* in(int i) const { return static_cast<T*>(inputs[i]); }
  template <typename T> T* out(int i) const { return static_cast<T*>(outputs[i]); }
  const Shape& in_shape(int i) const { return input_types[i].shape; }
  const Shape& out_shape(int i) const { return output_types[i].shape; }
};

// A kernel made of one function, for ops whose work needs no state.
class LambdaKernel : public Kernel {
 public:
  explicit LambdaKernel(std::function<absl::Status(const RunContext&)> fn) : fn_(std::move(fn)) {}
  absl::Status Run(const RunContext& ctx) override { return fn_(ctx); }

 private:
  std::function<absl::Status(const RunContext&)> fn_;
};

// What a gradient function sees: the forward node and the gradient flowing
// into each of its outputs (dy). It returns one gradient per input, or an
// invalid Output for inputs that get none (labels, integer inputs).
struct GradContext {
  Scope scope;  // "gradients/<node>": where gradient nodes go
  Node& node;
  std::vector<Output> dy;

  Output x(int i) const { return node.inputs[i]; }
  Output y(int i = 0) const { return node.output(i); }
};

using InferFn = std::function<absl::Status(InferContext&)>;
using KernelFn = std::function<absl::StatusOr<std::unique_ptr<Kernel>>(const KernelContext&)>;
using GradFn = std::function<std::vector<Output>(GradContext&)>;

// One input of a gradient-check case: its type and the interval its values
// are drawn from (keep away from kinks: e.g. |x| > 0.1 for abs).
struct InputSpec {
  DType dtype = DType::kF32;
  Shape shape;
  double lo = -1, hi = 1;  // integer inputs draw from [lo, hi)
  bool no_grad = false;    // an f32 input the op gives no gradient (e.g. loss targets)
};
struct GradCheckCase {
  std::vector<InputSpec> inputs;
  Attrs attrs;
};

// Plan-time fusion (graph/README.md). A rule on a fused op looks at a node
// of a compiled plan and the nodes producing its inputs, and may replace them
// with one node of its op, which takes over the outputs of `node` index for
// index. `absorbed` are the producers removed with `node`; the session checks
// that nothing else in the plan, and no fetch, reads their outputs, and that
// the fused op provides every output of `node` the plan reads.
struct Fusion {
  std::vector<Output> inputs;
  Attrs attrs;
  std::vector<Node*> absorbed;
};
struct FusionContext {
  Phase phase;
  // How many times the plan reads `output` (inputs of its nodes, plus fetches).
  std::function<int(const Output&)> uses;
};
using FusionRule = std::function<std::optional<Fusion>(Node& node, const FusionContext& ctx)>;

// How the executor provides a node's outputs.
enum class SourceKind {
  kNone,         // computed by its kernel into the arena
  kPlaceholder,  // copied from a feed
  kConstant,     // attr "value"
  kVariable,     // the VariableStore tensor named like the node
};

// The type of an attribute: the AttrValue alternative it holds, in order.
enum class AttrType { kBool, kInt, kFloat, kString, kInts, kTensor, kInitializer };
inline constexpr int kNumAttrTypes = 7;
static_assert(std::variant_size_v<AttrValue> == kNumAttrTypes, "one AttrType per AttrValue alternative");
// "bool", "int", "float", "string", "int list", "tensor", "initializer".
const char* AttrTypeName(AttrType type);

// One declared attribute of an op: required, or optional with a default
// (the only place that value is written: Node::attr falls back to it), or
// optional without one (its absence means something; read it with
// Node::has_attr). A numeric attr may declare a range; NaN is never in range.
struct AttrDef {
  std::string name;
  AttrType type = AttrType::kFloat;
  std::optional<AttrValue> default_value;
  bool required = false;
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  bool finite = false;  // a float attr must not be inf (nor NaN)
  std::string meaning;  // said in range errors: "(the fraction of units dropped)"

  // Range setters for a declaration that reads as one line:
  //   OptionalAttr("rate", 0.5).AtLeast(0).Below(1)
  AttrDef& AtLeast(double lo) { min = lo; min_exclusive = false; return *this; }
  AttrDef& Above(double lo) { min = lo; min_exclusive = true; return *this; }
  AttrDef& AtMost(double hi) { max = hi; max_exclusive = false; return *this; }
  AttrDef& Below(double hi) { max = hi; max_exclusive = true; return *this; }
  AttrDef& Finite() { finite = true; return *this; }
  AttrDef& Means(std::string text) { meaning = std::move(text); return *this; }
};
// An attr every node of the op must set.
AttrDef RequiredAttr(std::string name, AttrType type);
// An attr with a default; its type is the default's.
AttrDef OptionalAttr(std::string name, AttrValue default_value);
// An optional attr without a default (e.g. Dropout's fixed_mask_seed).
AttrDef OptionalAttr(std::string name, AttrType type);

struct OpDef {
  std::string name;
  int num_inputs = 0;  // -1: any number
  // Every attribute a node of this op may carry. Graph::AddNode rejects a
  // missing required attr, an undeclared one, a wrong type and a value out
  // of range, so kernels and shape functions read attrs without checks.
  std::vector<AttrDef> attrs;
  InferFn infer;
  KernelFn kernel;
  // Differentiable ops set `grad` and at least one `grad_checks` case; the
  // registry-walking test gradient-checks them all. Others say why not.
  GradFn grad;
  std::vector<GradCheckCase> grad_checks;
  std::string no_gradient_reason;
  SourceKind source = SourceKind::kNone;
  // >= 0: the op writes into this input (a variable) and is scheduled after
  // every node that only reads, so a step reads the weights before updating.
  int mutates_input = -1;
  // >= 0: output 0 shares the buffer of this input (reshape: no copy).
  int aliases_input = -1;
  // >= 0: output 0 may overwrite this input (same size) when the plan reads
  // that buffer nowhere after this node. Only for kernels correct with
  // output == input (element i of the output depends on element i only).
  int inplace_input = -1;
  // Set on fused ops that plans create themselves (see Fusion).
  FusionRule fuse;
  // The kernel draws from RunContext::step_seed (dropout masks, RReLU slopes):
  // a plan never folds it into a constant, even when its inputs are constants.
  bool random = false;
  // The op's inputs may be bf16 (its infer function says which). Graph::AddNode
  // refuses a bf16 input to any other op, so their kernels need not know bf16.
  bool takes_bf16 = false;
  // Plans run the node as soon as its inputs exist, before other ready nodes
  // (an all-reduce start), so its work overlaps the computation after it;
  // a collective, it is never folded into a constant.
  bool starts_early = false;
};

// The declaration of attr `name` of `op`, or nullptr.
const AttrDef* FindAttrDef(const OpDef& op, std::string_view name);

// Checks `attrs` of a node named `node_name` against op.attrs (see OpDef).
// An int given for a float attr is converted in place (1 -> 1.0). The error
// names the node, the attr, what was expected and what was given.
absl::Status CheckAttrs(const OpDef& op, std::string_view node_name, Attrs& attrs);

class OpRegistry {
 public:
  static OpRegistry& Global();
  // Returns true so registration can initialize a static.
  bool Register(OpDef def);
  const OpDef* Find(std::string_view name) const;
  std::vector<const OpDef*> All() const;

 private:
  std::map<std::string, std::unique_ptr<OpDef>, std::less<>> ops_;
};

// Adds `def` to the global registry; returns true so it can initialize a static.
bool RegisterOp(OpDef def);

#define GF_REGISTER_OP_CONCAT_INNER(a, b) a##b
#define GF_REGISTER_OP_CONCAT(a, b) GF_REGISTER_OP_CONCAT_INNER(a, b)
// Usage, at namespace scope in the op's .cc file: GF_REGISTER_OP(OpDef{...});
// The macro takes no arguments (the parenthesis is the call of RegisterOp),
// so the definition may contain #pragma lines. The library needs
// alwayslink = True so the linker keeps the registration.
#define GF_REGISTER_OP \
  [[maybe_unused]] static const bool GF_REGISTER_OP_CONCAT(gf_registered_op_, __COUNTER__) = \
      ::gradflow::RegisterOp

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_OP_REGISTRY_H_
