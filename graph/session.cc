#include "graph/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/random.h"
#include "core/status.h"

namespace gradflow {

// ---------------------------------------------------------------- variables

absl::StatusOr<Tensor> VariableStore::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    return absl::NotFoundError(absl::StrCat("no variable named '", std::string(name),
                                            "' (compile a plan that uses it first)"));
  }
  MarkWritten();  // the caller may write through the live tensor
  return it->second;
}

absl::Status VariableStore::Set(std::string_view name, const Tensor& value) {
  MarkWritten();
  auto it = values_.find(name);
  if (it == values_.end()) {
    values_.emplace(std::string(name), value.Clone());
    return absl::OkStatus();
  }
  Tensor& dst = it->second;
  if (dst.dtype() != value.dtype() || dst.shape() != value.shape()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "variable '", std::string(name), "' is ", std::string(DTypeName(dst.dtype())), dst.shape().ToString(),
        " but the new value is ", std::string(DTypeName(value.dtype())), value.shape().ToString()));
  }
  std::memcpy(dst.raw(), value.raw(), value.num_bytes());
  return absl::OkStatus();
}

absl::Status VariableStore::Bind(std::string_view name, const Tensor& value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot bind variable '", std::string(name),
                                                   "' to a tensor without storage"));
  }
  shares_storage_ = true;
  MarkWritten();
  auto [it, inserted] = values_.try_emplace(std::string(name), value);
  if (!inserted && (it->second.raw() != value.raw() || it->second.dtype() != value.dtype() ||
                    it->second.shape() != value.shape())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "variable '", std::string(name), "' already exists; bind it before it is created ",
        "(before compiling a plan that uses it), or use Set to copy a value into it"));
  }
  return absl::OkStatus();
}

std::vector<std::string> VariableStore::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, value] : values_) names.push_back(name);
  return names;
}

absl::StatusOr<Tensor*> VariableStore::GetOrCreate(const std::string& name, DType dtype, const Shape& shape,
                                                   bool* created) {
  MarkWritten();
  *created = false;
  auto it = values_.find(name);
  if (it != values_.end()) return &it->second;
  absl::StatusOr<Tensor> value = Tensor::Create(dtype, shape);
  if (!value.ok()) {
    return absl::Status(value.status().code(),
                        absl::StrCat("variable ", QuoteUserText(name), ": ", value.status().message()));
  }
  *created = true;
  return &values_.emplace(name, *std::move(value)).first->second;
}

// ---------------------------------------------------------------- executable

namespace {

constexpr size_t kArenaAlignment = Tensor::kAlignment;

size_t RoundUp(size_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// First-fit allocator over offsets of one arena; adjacent free blocks merge.
class ArenaPlanner {
 public:
  size_t Allocate(size_t bytes) {
    bytes = RoundUp(std::max<size_t>(bytes, 1));
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes) {
        size_t offset = it->first;
        it->first += bytes;
        it->second -= bytes;
        if (it->second == 0) free_.erase(it);
        return offset;
      }
    }
    size_t offset = end_;
    // A free block touching the end grows instead of leaving a hole.
    if (!free_.empty() && free_.back().first + free_.back().second == end_) {
      offset = free_.back().first;
      free_.pop_back();
    }
    end_ = offset + bytes;
    return offset;
  }

  void Free(size_t offset, size_t bytes) {
    bytes = RoundUp(std::max<size_t>(bytes, 1));
    auto it = std::lower_bound(free_.begin(), free_.end(), std::make_pair(offset, size_t{0}));
    it = free_.insert(it, {offset, bytes});
    if (it + 1 != free_.end() && it->first + it->second == (it + 1)->first) {
      it->second += (it + 1)->second;
      free_.erase(it + 1);
    }
    if (it != free_.begin() && (it - 1)->first + (it - 1)->second == it->first) {
      (it - 1)->second += it->second;
      free_.erase(it);
    }
  }

  size_t size() const { return end_; }

 private:
  std::vector<std::pair<size_t, size_t>> free_;  // (offset, bytes), sorted
  size_t end_ = 0;
};

// Index of the first NaN or Inf among `count` floats, or -1.
int64_t FirstNonFinite(const float* data, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) return i;
  }
  return -1;
}

// "NaN at element 17 (row 0)", naming the row for tensors with a batch dim.
std::string DescribeNonFinite(float value, int64_t element, const Shape& shape) {
  std::string s = absl::StrCat(std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf"),
                               " at element ", element);
  if (shape.rank() >= 2 && shape[0] > 0) {
    absl::StrAppend(&s, " (row ", element / (shape.NumElements() / shape[0]), ")");
  }
  return s;
}

// SessionOptions::check_numerics: runs a node's kernel, then scans its f32
// outputs -- and, for a node that writes variables, those variables -- for
// NaN or Inf. Only plans of a session with the option get this wrapper.
class NumericsCheckedKernel : public Kernel {
 public:
  struct Value {
    const float* data;
    TensorType type;
    std::string what;  // "output 0", "variable 'dense/kernel' (input 2)"
  };

  NumericsCheckedKernel(std::unique_ptr<Kernel> kernel, const KernelContext& k)
      : kernel_(std::move(kernel)), node_(k.node) {
    for (size_t i = 0; i < k.output_types.size(); ++i) {
      if (k.output_types[i].dtype == DType::kF32) {
        outputs_.push_back({static_cast<const float*>(k.outputs[i]), k.output_types[i],
                            absl::StrCat("output ", i)});
      }
    }
    for (size_t i = 0; i < k.input_types.size(); ++i) {
      if (k.input_types[i].dtype != DType::kF32) continue;
      const Node* from = node_.inputs[i].node;
      Value v{static_cast<const float*>(k.inputs[i]), k.input_types[i],
              absl::StrCat("input ", i, " '", node_.inputs[i].name(), "'")};
      // A node that mutates an input writes variables: check what it wrote.
      if (node_.op->mutates_input >= 0 && from->op->source == SourceKind::kVariable) {
        outputs_.push_back({v.data, v.type, absl::StrCat("variable '", from->name, "' (input ", i, ")")});
      }
      inputs_.push_back(std::move(v));
    }
  }

  absl::Status Run(const RunContext& ctx) override {
    GF_RETURN_IF_ERROR(kernel_->Run(ctx));
    for (const Value& out : outputs_) {
      int64_t bad = FirstNonFinite(out.data, out.type.shape.NumElements());
      if (bad >= 0) return Error(out, bad);
    }
    return absl::OkStatus();
  }
  std::string implementation() const override { return kernel_->implementation(); }

 private:
  absl::Status Error(const Value& out, int64_t bad) const {
    // Say which inputs already held non-finite values (variables are not
    // checked when read, e.g. weights loaded from a file).
    std::vector<std::string> bad_inputs;
    for (const Value& in : inputs_) {
      int64_t i = FirstNonFinite(in.data, in.type.shape.NumElements());
      if (i >= 0) bad_inputs.push_back(absl::StrCat(in.what, " ", in.type.ToString(), " has ",
                                                    DescribeNonFinite(in.data[i], i, in.type.shape)));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "CheckNumerics: node '", node_.name, "' (op ", node_.op_name(), ") produced ",
        DescribeNonFinite(out.data[bad], bad, out.type.shape), " in its ", out.what, " ",
        out.type.ToString(), "; ",
        bad_inputs.empty() ? std::string("all its f32 inputs are finite")
                           : absl::StrCat("but its ", absl::StrJoin(bad_inputs, "; ")),
        ". Typical causes: a learning rate too large (lower it or clip gradients), log or "
        "division of 0, or NaN in the data"));
  }

  std::unique_ptr<Kernel> kernel_;
  const Node& node_;
  std::vector<Value> outputs_, inputs_;
};

// Runs its kernel only when the variables may have changed since its last
// successful run (ExecutableBuilder::FindPerVersionNodes).
class PerVersionKernel : public Kernel {
 public:
  explicit PerVersionKernel(std::unique_ptr<Kernel> kernel) : kernel_(std::move(kernel)) {}
  absl::Status Run(const RunContext& ctx) override {
    if (ctx.variables_version == computed_for_) return absl::OkStatus();
    GF_RETURN_IF_ERROR(kernel_->Run(ctx));
    computed_for_ = ctx.variables_version;
    return absl::OkStatus();
  }
  std::string implementation() const override { return kernel_->implementation(); }

 private:
  std::unique_ptr<Kernel> kernel_;
  uint64_t computed_for_ = 0;  // VariableStore versions start at 1
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

class Executable {
 public:
  struct Slot {
    void* data;
    TensorType type;
  };

  struct Copy {
    const void* src;
    void* dst;
    size_t bytes;
  };

  Tensor arena;
  std::vector<std::unique_ptr<Kernel>> kernels;
  size_t num_early_kernels = 0;  // kernels before the first variable update
  bool has_collectives = false;  // an op that starts_early: progress collectives between kernels
  std::vector<Copy> snapshots;   // fetched variables, copied before the updates
  std::vector<Slot> feeds;    // one per Plan::placeholders_
  std::vector<Slot> fetches;  // one per Plan::fetches_
  std::vector<int> kernel_positions;  // per kernel: its node's position in Plan::order_
  // Profiling: per kernel, its row in Plan::profile_.nodes, found for Plan::profile_epoch_.
  std::vector<int> profile_rows;
  uint64_t profile_epoch = 0;
};

namespace {

// One output of one plan node at a concrete batch size, as the passes of
// ExecutableBuilder see it. Values are numbered flat: node p's output k is
// value first_value[p] + k.
struct PlannedValue {
  int p = 0;              // the position of the node producing it
  TensorType type;
  int root = -1;          // the value owning its buffer: itself, the input it aliases or overwrites
  void* fixed = nullptr;  // constants and variables (and their aliases): their own storage
  int last_read = -1;     // the last position reading it directly (n: fetched)
  // Kept on roots only:
  int root_last_read = -1;  // the latest last_read of the values placed on it so far
  int last_use = -1;        // the last position reading any value on its buffer
  size_t offset = 0;        // in the arena, for a root without fixed storage

  size_t bytes() const { return type.shape.NumElements() * SizeOf(type.dtype); }
};

}  // namespace

// Builds the Executable of one plan for one batch size, in named passes over
// one table of values (see graph/README.md, "The executor").
class ExecutableBuilder {
 public:
  ExecutableBuilder(const Plan& plan, int64_t batch)
      : plan_(plan), order_(plan.order_), batch_(batch), n_(static_cast<int>(order_.size())) {}

  absl::StatusOr<std::unique_ptr<Executable>> Build() {
    NumberValues();
    FindPerVersionNodes();
    GF_RETURN_IF_ERROR(InferTypes());
    GF_RETURN_IF_ERROR(CheckSizes());
    GF_RETURN_IF_ERROR(PlaceValues());
    GF_RETURN_IF_ERROR(AssignOffsets());
    GF_RETURN_IF_ERROR(CreateKernels());
    BindFetches();
    return std::move(exe_);
  }

 private:
  int ValueOf(const Output& o) const { return first_value_[position_[o.node->id]] + o.index; }
  PlannedValue& RootOf(int value) { return values_[values_[value].root]; }
  void* Pointer(int value) const {
    const PlannedValue& v = values_[value];
    return v.fixed ? v.fixed : static_cast<uint8_t*>(exe_->arena.raw()) + values_[v.root].offset;
  }
  bool IsPlaceholder(int p) const { return order_[p]->op->source == SourceKind::kPlaceholder; }

  // Positions by node id (a node absorbed into a fusion maps to the fused
  // node providing its outputs) and the flat numbering of values.
  void NumberValues() {
    position_.assign(plan_.session_->graph().num_nodes() + plan_.fused_nodes_.size(), -1);
    for (int p = 0; p < n_; ++p) position_[order_[p]->id] = p;
    for (auto [node, fused] : plan_.replaced_) position_[node->id] = position_[fused->id];
    first_value_.resize(n_ + 1);
    first_value_[0] = 0;
    for (int p = 0; p < n_; ++p) {
      first_value_[p + 1] = first_value_[p] + static_cast<int>(order_[p]->outputs.size());
    }
    values_.resize(first_value_[n_]);
    for (int p = 0; p < n_; ++p) {
      for (int v = first_value_[p]; v < first_value_[p + 1]; ++v) values_[v].p = p;
    }
  }

  // A plan that writes no variables (inference, evaluation) computes the
  // nodes that read only variables and constants (a mixed-precision kernel's
  // bf16 cast) once per variable version instead of every run: their values
  // get buffers of their own, never freed nor overwritten in place, and
  // their kernels run again only when RunContext::variables_version moves.
  void FindPerVersionNodes() {
    per_version_.assign(n_, 0);
    if (plan_.num_early_ < n_) return;  // a training plan writes its variables every step
    std::vector<char> from_variables(n_, 0);  // the node's outputs depend on variables and constants only
    for (int p = 0; p < n_; ++p) {
      const Node& node = *order_[p];
      const OpDef& op = *node.op;
      if (op.source == SourceKind::kVariable || op.source == SourceKind::kConstant) {
        from_variables[p] = 1;
        continue;
      }
      if (op.source != SourceKind::kNone || op.random || op.starts_early || op.mutates_input >= 0 ||
          node.inputs.empty()) {
        continue;
      }
      bool all = true;
      for (const Output& in : node.inputs) all &= from_variables[position_[in.node->id]] != 0;
      from_variables[p] = all;
      per_version_[p] = all && op.kernel != nullptr;
    }
  }

  // After InferTypes: every value's byte size, and their sum, fit in int64 (the arena
  // planner adds them up unchecked); otherwise InvalidArgument /
  // ResourceExhausted naming the node, now rather than as a wrapped size at Run.
  absl::Status CheckSizes() const {
    int64_t total = 0;
    for (const PlannedValue& v : values_) {
      absl::StatusOr<size_t> bytes = v.type.shape.CheckedNumBytes(v.type.dtype);
      const std::string node = QuoteUserText(order_[v.p]->name);
      if (!bytes.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("node ", node, " at batch size ", batch_, ": ", bytes.status().message()));
      }
      if (__builtin_add_overflow(total, static_cast<int64_t>(*bytes), &total)) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the plan's buffers at batch size ", batch_, " need more than 2^63 bytes (at node ", node, ")"));
      }
    }
    return absl::OkStatus();
  }

  // 1. Concrete types: the placeholders' unknown batch dimension becomes batch_.
  absl::Status InferTypes() {
    std::vector<TensorType> input_types;
    for (int p = 0; p < n_; ++p) {
      const Node* node = order_[p];
      if (IsPlaceholder(p)) {
        TensorType t = node->outputs[0];
        if (t.shape.rank() > 0 && t.shape[0] < 0) t.shape[0] = batch_;
        values_[first_value_[p]].type = std::move(t);
        continue;
      }
      input_types.clear();
      for (const Output& in : node->inputs) input_types.push_back(values_[ValueOf(in)].type);
      InferContext ctx(*node, input_types);
      GF_RETURN_IF_ERROR(node->op->infer(ctx));
      if (ctx.outputs().size() != node->outputs.size()) {
        return absl::InternalError(absl::StrCat("node '", node->name, "' (", node->op_name(), ") inferred ",
                                                ctx.outputs().size(), " outputs at batch ", batch_,
                                                " but declares ", node->outputs.size()));
      }
      for (size_t k = 0; k < ctx.outputs().size(); ++k) {
        values_[first_value_[p] + k].type = std::move(ctx.outputs()[k]);
      }
    }
    return absl::OkStatus();
  }

  // 2. Liveness. Every value maps to a root buffer (itself, the input it
  //    aliases, or the input it overwrites in place); a root lives until the
  //    last use of any value on it.
  absl::Status PlaceValues() {
    for (int p = 0; p < n_; ++p) {
      for (const Output& in : order_[p]->inputs) values_[ValueOf(in)].last_read = p;
    }
    for (const Output& f : plan_.fetches_) values_[ValueOf(f)].last_read = n_;
    for (int p = 0; p < n_; ++p) {
      for (int value = first_value_[p]; value < first_value_[p + 1]; ++value) {
        if (per_version_[p]) values_[value].last_read = n_;  // kept for the next run: never overwritten
        GF_RETURN_IF_ERROR(PlaceValue(value));
      }
      for (const Output& in : order_[p]->inputs) {
        PlannedValue& root = RootOf(ValueOf(in));
        root.last_use = std::max(root.last_use, p);
      }
    }
    for (const Output& f : plan_.fetches_) RootOf(ValueOf(f)).last_use = n_;
    return absl::OkStatus();
  }

  // Decides the buffer of one value: fixed storage, an input's buffer, or its own.
  absl::Status PlaceValue(int value) {
    PlannedValue& v = values_[value];
    const Node& node = *order_[v.p];
    const int k = value - first_value_[v.p];
    v.root = value;
    v.last_use = v.p;
    const int shared = k > 0 ? -1 : node.op->aliases_input >= 0 ? node.op->aliases_input : node.op->inplace_input;
    if (node.op->source == SourceKind::kConstant) {
      // Kernels take non-const pointers; a constant's kernel-side readers never write it.
      v.fixed = const_cast<void*>(node.attr<Tensor>("value").raw());
    } else if (node.op->source == SourceKind::kVariable) {
      GF_ASSIGN_OR_RETURN(v.fixed, VariableStorage(node, v.type));
    } else if (shared >= 0 && (shared == node.op->aliases_input || CanOverwrite(v.p, shared))) {
      const PlannedValue& in = values_[ValueOf(node.inputs[shared])];
      v.root = in.root;
      v.fixed = in.fixed;
    }
    PlannedValue& root = values_[v.root];
    root.root_last_read = std::max(root.root_last_read, v.last_read);
    return absl::OkStatus();
  }

  absl::StatusOr<void*> VariableStorage(const Node& node, const TensorType& type) {
    GF_ASSIGN_OR_RETURN(Tensor var, plan_.session_->variables().Get(node.name));
    if (var.shape() != type.shape || var.dtype() != type.dtype) {
      return absl::FailedPreconditionError(absl::StrCat(
          "variable '", node.name, "' holds ", std::string(DTypeName(var.dtype())), var.shape().ToString(),
          " but the graph declares ", type.ToString()));
    }
    return var.raw();  // the store keeps the tensor alive
  }

  // An op may overwrite input `i` in place only if nothing reads that
  // buffer after it, the sizes agree and no other input shares the buffer.
  bool CanOverwrite(int p, int i) const {
    const std::vector<Output>& inputs = order_[p]->inputs;
    const PlannedValue& v = values_[ValueOf(inputs[i])];
    const PlannedValue& root = values_[v.root];
    const TensorType& out = values_[first_value_[p]].type;
    if (v.fixed || root.root_last_read > p) return false;
    if (root.type.dtype != out.dtype || root.type.shape.NumElements() != out.shape.NumElements()) return false;
    for (int j = 0; j < static_cast<int>(inputs.size()); ++j) {
      if (j != i && values_[ValueOf(inputs[j])].root == v.root) return false;
    }
    return true;
  }

  // 3. Offsets: allocate each root when produced, free it after its last use.
  //    Feeds are all copied in before the first kernel runs, so placeholders
  //    are allocated first and never share a buffer with an earlier value.
  //    A fetched variable is read by the step before the updates write it,
  //    so it is fetched from a copy taken between the two phases (Keras
  //    returns pre-update values); like feeds, these buffers are never shared.
  absl::Status AssignOffsets() {
    ArenaPlanner planner;
    std::vector<std::vector<int>> frees_at(n_ + 1);
    auto allocate = [&](int value) {
      PlannedValue& v = values_[value];
      v.offset = planner.Allocate(v.bytes());
      frees_at[v.last_use].push_back(value);
    };
    auto own_root = [&](int value) { return !values_[value].fixed && values_[value].root == value; };
    for (int p = 0; p < n_; ++p) {
      if (IsPlaceholder(p)) allocate(first_value_[p]);
    }
    // Per-version values (FindPerVersionNodes) outlive the run: allocated
    // before any other, so no value of an earlier position shares their bytes.
    for (int p = 0; p < n_; ++p) {
      for (int value = first_value_[p]; per_version_[p] && value < first_value_[p + 1]; ++value) {
        if (own_root(value)) values_[value].offset = planner.Allocate(values_[value].bytes());
      }
    }
    const bool has_updates = plan_.num_early_ < n_;
    for (const Output& f : plan_.fetches_) {
      const PlannedValue& root = RootOf(ValueOf(f));
      const bool variable = root.fixed && order_[root.p]->op->source == SourceKind::kVariable;
      snapshot_offsets_.push_back(variable && has_updates ? planner.Allocate(root.bytes()) : SIZE_MAX);
    }
    for (int p = 0; p < n_; ++p) {
      if (IsPlaceholder(p) || per_version_[p]) continue;
      for (int value = first_value_[p]; value < first_value_[p + 1]; ++value) {
        if (own_root(value)) allocate(value);
      }
      for (int root : frees_at[p]) planner.Free(values_[root].offset, values_[root].bytes());
    }
    exe_ = std::make_unique<Executable>();
    GF_ASSIGN_OR_RETURN(exe_->arena,
                        Tensor::Create(DType::kF32, Shape{static_cast<int64_t>(RoundUp(planner.size()) / 4 + 16)}));
    return absl::OkStatus();
  }

  // 4. Kernels, each created once with its final pointers.
  absl::Status CreateKernels() {
    const bool check_numerics = plan_.session_->check_numerics();
    for (int p = 0; p < n_; ++p) {
      const Node& node = *order_[p];
      if (IsPlaceholder(p)) exe_->feeds.push_back({Pointer(first_value_[p]), values_[first_value_[p]].type});
      if (!node.op->kernel) continue;
      KernelContext ctx{node, plan_.phase_, {}, {}, {}, {}, plan_.session_->autotune(),
                        plan_.session_->communicator()};
      for (const Output& in : node.inputs) {
        ctx.input_types.push_back(values_[ValueOf(in)].type);
        ctx.inputs.push_back(Pointer(ValueOf(in)));
      }
      for (int value = first_value_[p]; value < first_value_[p + 1]; ++value) {
        ctx.output_types.push_back(values_[value].type);
        ctx.outputs.push_back(Pointer(value));
      }
      GF_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, node.op->kernel(ctx));
      if (kernel && check_numerics) kernel = std::make_unique<NumericsCheckedKernel>(std::move(kernel), ctx);
      if (kernel && per_version_[p]) kernel = std::make_unique<PerVersionKernel>(std::move(kernel));
      if (kernel) {
        exe_->kernels.push_back(std::move(kernel));
        exe_->kernel_positions.push_back(p);
      }
      if (p < plan_.num_early_) exe_->num_early_kernels = exe_->kernels.size();
      exe_->has_collectives |= node.op->starts_early;
    }
    return absl::OkStatus();
  }

  // 5. Fetches: where each is read after a step (a snapshot for variables).
  void BindFetches() {
    auto* base = static_cast<uint8_t*>(exe_->arena.raw());
    for (size_t i = 0; i < plan_.fetches_.size(); ++i) {
      const int value = ValueOf(plan_.fetches_[i]);
      void* data = Pointer(value);
      if (snapshot_offsets_[i] != SIZE_MAX) {
        exe_->snapshots.push_back({data, base + snapshot_offsets_[i], values_[value].bytes()});
        data = base + snapshot_offsets_[i];
      }
      exe_->fetches.push_back({data, values_[value].type});
    }
  }

  const Plan& plan_;
  const std::vector<Node*>& order_;
  const int64_t batch_;
  const int n_;
  std::vector<int> position_;     // node id -> plan position
  std::vector<int> first_value_;  // plan position -> its first value (n_: the count)
  std::vector<PlannedValue> values_;
  std::vector<size_t> snapshot_offsets_;  // per fetch; SIZE_MAX: read in place
  std::vector<char> per_version_;         // per position: computed once per variable version
  std::unique_ptr<Executable> exe_;
};

Plan::Plan(Session* session, std::vector<Node*> order, int num_early, std::vector<Output> fetches,
           Phase phase)
    : session_(session), order_(std::move(order)), num_early_(num_early),
      fetches_(std::move(fetches)), phase_(phase),
      graph_version_(session->graph().version()) {
  for (Node* node : order_) {
    if (node->op->source == SourceKind::kPlaceholder) placeholders_.push_back(node);
  }
  fed_.resize(placeholders_.size());
}
Plan::Plan(Plan&&) noexcept = default;
Plan& Plan::operator=(Plan&&) noexcept = default;
Plan::~Plan() = default;

std::vector<std::string> Plan::NodeNames() const {
  std::vector<std::string> names;
  for (const Node* node : order_) names.push_back(node->name);
  return names;
}

// A small cache, most recently used first: a linear scan of a few entries
// is cheaper than hashing, and a steady loop finds its executable first.
absl::StatusOr<Executable*> Plan::ForBatch(int64_t batch) {
  for (size_t i = 0; i < by_batch_.size(); ++i) {
    if (by_batch_[i].batch != batch) continue;
    if (i > 0) std::rotate(by_batch_.begin(), by_batch_.begin() + i, by_batch_.begin() + i + 1);
    return by_batch_.front().executable.get();
  }
  GF_ASSIGN_OR_RETURN(std::unique_ptr<Executable> exe, ExecutableBuilder(*this, batch).Build());
  // Evict the least recently used: its arena may stay alive while a caller
  // still holds a FeedBuffer view of it; the next Run of that size rebuilds.
  if (by_batch_.size() >= session_->max_cached_batch_sizes()) by_batch_.pop_back();
  by_batch_.insert(by_batch_.begin(), CachedExecutable{batch, std::move(exe)});
  return by_batch_.front().executable.get();
}

size_t Plan::cached_batch_sizes() const {
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  return by_batch_.size();
}

absl::StatusOr<Tensor> Plan::FeedBuffer(const ValueRef& placeholder, int64_t batch) {
  GF_ASSIGN_OR_RETURN(Output key, session_->Resolve(placeholder));
  auto it = std::find(placeholders_.begin(), placeholders_.end(), key.node);
  if (it == placeholders_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", key.name(), "' is not a placeholder this plan reads, so it has no feed buffer"));
  }
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  const Executable::Slot& slot = exe->feeds[it - placeholders_.begin()];
  const size_t offset = static_cast<uint8_t*>(slot.data) - static_cast<uint8_t*>(exe->arena.raw());
  return exe->arena.View(offset, slot.type.dtype, slot.type.shape);
}

absl::StatusOr<size_t> Plan::ArenaBytes(int64_t batch) {
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  return exe->arena.num_bytes();
}

absl::Status Plan::CheckFeed(const Output& key, const Tensor& value) const {
  const TensorType& want = key.type();
  bool shape_ok = value.shape().rank() == want.shape.rank();
  for (int d = 0; shape_ok && d < want.shape.rank(); ++d) {
    shape_ok = want.shape[d] < 0 || want.shape[d] == value.shape()[d];
  }
  if (value.dtype() != want.dtype || !shape_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feed for placeholder '", key.name(), "' is ", std::string(DTypeName(value.dtype())),
        value.shape().ToString(), " but the placeholder is ", want.ToString(), " (-1 matches any batch size)"));
  }
  return absl::OkStatus();
}

// Matches feeds to placeholders into fed_ and returns the batch size, which
// comes from the fed tensors.
absl::StatusOr<int64_t> Plan::MatchFeeds(const std::vector<Feed>& feeds) {
  std::fill(fed_.begin(), fed_.end(), nullptr);
  int64_t batch = 0;
  const Node* batch_from = nullptr;
  for (const Feed& feed : feeds) {
    GF_ASSIGN_OR_RETURN(Output key, session_->Resolve(feed.key));
    auto it = std::find(placeholders_.begin(), placeholders_.end(), key.node);
    if (it == placeholders_.end()) {
      if (key.node->op->source == SourceKind::kPlaceholder) continue;  // not needed here
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot feed '", key.name(), "' (", key.node->op_name(), "): only placeholders are fed"));
    }
    GF_RETURN_IF_ERROR(CheckFeed(key, feed.value));
    const Shape& want = key.type().shape;
    if (want.rank() > 0 && want[0] < 0) {
      if (batch_from && feed.value.shape()[0] != batch) {
        return absl::InvalidArgumentError(absl::StrCat("feeds disagree on the batch size: '", batch_from->name,
                                                       "' has ", batch, ", '", key.name(), "' has ",
                                                       feed.value.shape()[0]));
      }
      batch = feed.value.shape()[0];
      batch_from = key.node;
    }
    fed_[it - placeholders_.begin()] = &feed.value;
  }
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    if (fed_[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "placeholder '", placeholders_[i]->name, "' ", placeholders_[i]->outputs[0].ToString(),
          " must be fed: the fetched values depend on it"));
    }
  }
  return batch;
}

absl::Status Plan::CheckFeedNumerics() const {
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    if (fed_[i]->dtype() != DType::kF32) continue;
    int64_t bad = FirstNonFinite(fed_[i]->data<float>(), fed_[i]->num_elements());
    if (bad >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CheckNumerics: the feed for placeholder '", placeholders_[i]->name, "' ",
          TensorType{DType::kF32, fed_[i]->shape()}.ToString(), " holds ",
          DescribeNonFinite(fed_[i]->data<float>()[bad], bad, fed_[i]->shape()), "; clean or impute the input data"));
    }
  }
  return absl::OkStatus();
}

// Copies the feeds in, runs the kernels (reads, snapshots of fetched
// variables, then updates).
absl::Status Plan::RunKernels(Executable& exe) {
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    if (fed_[i]->raw() != exe.feeds[i].data) {  // else: written into FeedBuffer
      std::memcpy(exe.feeds[i].data, fed_[i]->raw(), fed_[i]->num_bytes());
    }
  }
  // Each plan draws its own stream (by default its compile index; the first
  // plan's is 0), so an MC dropout plan does not replay the masks of the
  // training plan's steps.
  const uint64_t salt = random_stream_ * 0x9e3779b97f4a7c15ULL;
  VariableStore& variables = session_->variables_;
  RunContext ctx{Mix64(session_->seed() ^ Mix64(salt + ++run_count_)), variables.version()};
  if (profiling_) FindProfileRows(exe);
  auto run = [&](size_t i) {
    if (!profiling_) return exe.kernels[i]->Run(ctx);
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = exe.kernels[i]->Run(ctx);
    NodeTime& row = profile_.nodes[exe.profile_rows[i]];
    row.seconds += SecondsSince(start);
    ++row.runs;
    return status;
  };
  // Started all-reduces advance while the rest of the backward pass runs.
  Communicator* progress = exe.has_collectives ? session_->communicator() : nullptr;
  for (size_t i = 0; i < exe.num_early_kernels; ++i) {
    GF_RETURN_IF_ERROR(run(i));
    if (progress) progress->Progress();
  }
  for (const Executable::Copy& c : exe.snapshots) std::memcpy(c.dst, c.src, c.bytes);
  if (num_early_ < static_cast<int>(order_.size())) variables.MarkWritten();
  for (size_t i = exe.num_early_kernels; i < exe.kernels.size(); ++i) GF_RETURN_IF_ERROR(run(i));
  return absl::OkStatus();
}

// One row per (node, implementation): executables of different batch sizes
// share a node's row unless autotuning chose another implementation.
void Plan::FindProfileRows(Executable& exe) {
  if (exe.profile_epoch == profile_epoch_) return;
  absl::flat_hash_map<std::string, int> row_of;
  for (size_t r = 0; r < profile_.nodes.size(); ++r) {
    row_of[absl::StrCat(profile_.nodes[r].node, "\n", profile_.nodes[r].implementation)] = static_cast<int>(r);
  }
  exe.profile_rows.clear();
  for (size_t i = 0; i < exe.kernels.size(); ++i) {
    const Node& node = *order_[exe.kernel_positions[i]];
    const std::string implementation = exe.kernels[i]->implementation();
    auto [it, added] = row_of.emplace(absl::StrCat(node.name, "\n", implementation), profile_.nodes.size());
    if (added) profile_.nodes.push_back({node.name, node.op_name(), implementation});
    exe.profile_rows.push_back(it->second);
  }
  exe.profile_epoch = profile_epoch_;
}

void Plan::set_profiling(bool on) {
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  if (on && !profiling_) {
    profile_ = {};
    ++profile_epoch_;
  }
  profiling_ = on;
}

PlanProfile Plan::Profile() const {
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  PlanProfile profile = profile_;
  std::erase_if(profile.nodes, [](const NodeTime& n) { return n.runs == 0; });
  std::stable_sort(profile.nodes.begin(), profile.nodes.end(),
                   [](const NodeTime& a, const NodeTime& b) { return a.seconds > b.seconds; });
  return profile;
}

// Copies the fetches out, reusing the caller's tensors when their shapes match.
void Plan::CopyFetches(const Executable& exe, std::vector<Tensor>& fetched) const {
  fetched.resize(exe.fetches.size());
  for (size_t i = 0; i < exe.fetches.size(); ++i) {
    const Executable::Slot& slot = exe.fetches[i];
    Tensor& out = fetched[i];
    if (out.empty() || out.dtype() != slot.type.dtype || out.shape() != slot.type.shape || out.raw() == slot.data) {
      out = Tensor(slot.type.dtype, slot.type.shape);
    }
    std::memcpy(out.raw(), slot.data, out.num_bytes());
  }
}

absl::Status Plan::Run(const std::vector<Feed>& feeds, std::vector<Tensor>* fetched) {
  // One run at a time per session: its plans share the variable store and
  // each plan its arena (see "Threads" in graph/README.md).
  std::lock_guard<std::mutex> lock(session_->run_mutex_);
  const auto start = std::chrono::steady_clock::now();
  GF_ASSIGN_OR_RETURN(int64_t batch, MatchFeeds(feeds));
  if (session_->check_numerics_) GF_RETURN_IF_ERROR(CheckFeedNumerics());
  const auto building = std::chrono::steady_clock::now();
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  const double build_seconds = SecondsSince(building);  // a new batch size: not a step's time
  GF_RETURN_IF_ERROR(RunKernels(*exe));
  if (fetched != nullptr) CopyFetches(*exe, *fetched);
  if (profiling_) {
    ++profile_.steps;
    profile_.run_seconds += SecondsSince(start) - build_seconds;
  }
  return absl::OkStatus();
}
absl::StatusOr<std::vector<Tensor>> Plan::Run(const std::vector<Feed>& feeds) {
  std::vector<Tensor> fetched;
  GF_RETURN_IF_ERROR(Run(feeds, &fetched));
  return fetched;
}

// ---------------------------------------------------------------- session

Session::Session(Graph& graph, SessionOptions options)
    : graph_(graph), seed_(options.seed ? options.seed : graph.seed()),
      check_numerics_(options.check_numerics), fuse_ops_(options.fuse_ops),
      fold_constants_(options.fold_constants),
      max_cached_batch_sizes_(std::max<size_t>(options.max_cached_batch_sizes, 1)),
      autotune_(std::move(options.autotune)), communicator_(options.communicator) {}

absl::StatusOr<Output> Session::Resolve(const ValueRef& ref) const {
  if (ref.output.valid()) {
    if (ref.output.node->graph != &graph_) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", ref.output.name(), "' belongs to another graph than this session's"));
    }
    return ref.output;
  }
  Output o = graph_.FindOutput(ref.name);
  if (!o.valid()) {
    return absl::NotFoundError(absl::StrCat("no node output named '", ref.name, "' in the graph"));
  }
  return o;
}

absl::Status Session::InitializeVariable(const Node& node) {
  bool created = false;
  GF_ASSIGN_OR_RETURN(Tensor* variable,
                      variables_.GetOrCreate(node.name, node.outputs[0].dtype, node.outputs[0].shape, &created));
  Tensor& value = *variable;
  if (created && value.dtype() == DType::kF32 && node.has_attr("initializer")) {
    Rng rng(Mix64(seed_ ^ HashName(node.name)));
    Initialize(node.attr<Initializer>("initializer"), rng, value);
  }
  return absl::OkStatus();
}

absl::Status Session::InitializeVariables() {
  GF_RETURN_IF_ERROR(graph_.status());
  std::lock_guard<std::mutex> lock(run_mutex_);
  for (const Node& node : graph_.nodes()) {
    if (node.op->source == SourceKind::kVariable) GF_RETURN_IF_ERROR(InitializeVariable(node));
  }
  return absl::OkStatus();
}

absl::Status Session::BroadcastVariables(Communicator& communicator) {
  GF_RETURN_IF_ERROR(InitializeVariables());
  std::lock_guard<std::mutex> lock(run_mutex_);
  std::vector<std::string> names = variables_.Names();  // sorted: the same order on every rank
  std::string description;
  for (const std::string& name : names) {
    const Tensor value = *variables_.Get(name);
    absl::StrAppend(&description, name, " ", std::string(DTypeName(value.dtype())),
                    value.shape().ToString(), "\n");
  }
  GF_RETURN_IF_ERROR(communicator.CheckSame("the variables", description));
  for (const std::string& name : names) {
    Tensor value = *variables_.Get(name);
    GF_RETURN_IF_ERROR(communicator.Broadcast(value.raw(), value.num_bytes(), 0));
  }
  variables_.MarkWritten();  // with bound storage, every store's version moves
  return absl::OkStatus();
}

namespace {

// Everything a node waits for: its data inputs and control inputs.
template <typename Visit> void ForEachPredecessor(const Node& node, Visit visit) {
  for (const Output& in : node.inputs) visit(in.node);
  for (Node* c : node.control_inputs) visit(c);
}

// The error for nodes Kahn's algorithm could not order: walks back from one
// of them through unordered inputs until a node repeats, and names the loop
// in data-flow order.
absl::Status CycleError(const std::vector<Node*>& needed, const std::vector<int>& pending) {
  Node* node = nullptr;
  for (Node* n : needed) {
    if (n != nullptr && pending[n->id] > 0) node = n;
  }
  std::vector<Node*> path;
  std::vector<int> seen_at(needed.size(), -1);
  while (seen_at[node->id] < 0) {
    seen_at[node->id] = static_cast<int>(path.size());
    path.push_back(node);
    Node* next = nullptr;
    ForEachPredecessor(*node, [&](Node* pred) {
      if (next == nullptr && pending[pred->id] > 0) next = pred;
    });
    node = next;
  }
  std::vector<std::string> names;
  for (int i = static_cast<int>(path.size()) - 1; i >= seen_at[node->id]; --i) names.push_back(path[i]->name);
  names.push_back(path.back()->name);  // back to where the loop started
  return absl::FailedPreconditionError(absl::StrCat(
      "the graph has a cycle: ", absl::StrJoin(names, " -> "),
      " (each reads the one before it; a node's inputs were changed after it was built, e.g. "
      "through Graph::FindNode); a dataflow graph must not feed a node its own output"));
}

}  // namespace

// Prunes to what `roots` need, then orders by Kahn's algorithm taking the
// smallest id first: creation order (always valid for graphs made by
// builders) wherever the edges allow it, except that a ready node whose op
// starts_early goes before the others. Graph::FindNode hands out mutable
// nodes, so an edge may have been rewired into a cycle: that is an error.
absl::StatusOr<std::vector<Node*>> Session::NeededInOrder(std::vector<Node*> roots) const {
  const int n = graph_.num_nodes();
  std::vector<Node*> needed(n, nullptr);  // by id; the pointers come from the edges
  while (!roots.empty()) {
    Node* node = roots.back();
    roots.pop_back();
    if (needed[node->id] != nullptr) continue;
    needed[node->id] = node;
    ForEachPredecessor(*node, [&](Node* pred) { roots.push_back(pred); });
  }
  std::vector<int> pending(n, 0);  // predecessors not yet ordered
  std::vector<std::vector<int>> consumers(n);
  int count = 0;
  for (Node* node : needed) {
    if (node == nullptr) continue;
    ++count;
    ForEachPredecessor(*node, [&](Node* pred) {
      ++pending[node->id];
      consumers[pred->id].push_back(node->id);
    });
  }
  // Ready nodes by (not starts_early, id): early starters first.
  using Key = std::pair<bool, int>;
  std::priority_queue<Key, std::vector<Key>, std::greater<Key>> ready;
  auto make_ready = [&](int id) { ready.push({!needed[id]->op->starts_early, id}); };
  for (Node* node : needed) {
    if (node != nullptr && pending[node->id] == 0) make_ready(node->id);
  }
  std::vector<Node*> order;
  order.reserve(count);
  while (!ready.empty()) {
    const int id = ready.top().second;
    ready.pop();
    order.push_back(needed[id]);
    for (int c : consumers[id]) {
      if (--pending[c] == 0) make_ready(c);
    }
  }
  if (static_cast<int>(order.size()) < count) return CycleError(needed, pending);
  return order;
}

absl::StatusOr<Plan> Session::Compile(const std::vector<ValueRef>& fetches,
                                      const std::vector<ValueRef>& targets, Phase phase) {
  if (!graph_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the graph has a build error: ", graph_.status().message()));
  }
  std::vector<Output> fetch_outputs;
  std::vector<Node*> roots;
  for (const ValueRef& ref : fetches) {
    GF_ASSIGN_OR_RETURN(Output o, Resolve(ref));
    fetch_outputs.push_back(o);
    roots.push_back(o.node);
  }
  for (const ValueRef& ref : targets) {
    GF_ASSIGN_OR_RETURN(Output o, Resolve(ref));
    roots.push_back(o.node);
  }
  std::lock_guard<std::mutex> lock(run_mutex_);  // creates variables in the shared store
  GF_ASSIGN_OR_RETURN(std::vector<Node*> needed, NeededInOrder(std::move(roots)));
  // Nodes that write variables, and all that depend on them, run last,
  // after every read of the weights.
  std::vector<char> late(graph_.num_nodes(), 0);
  std::vector<Node*> early_nodes, late_nodes;
  for (Node* node : needed) {
    bool is_late = node->op->mutates_input >= 0;
    ForEachPredecessor(*node, [&](const Node* pred) { is_late |= late[pred->id] != 0; });
    late[node->id] = is_late;
    (is_late ? late_nodes : early_nodes).push_back(node);
    if (node->op->source == SourceKind::kVariable) GF_RETURN_IF_ERROR(InitializeVariable(*node));
  }
  const int num_early = static_cast<int>(early_nodes.size());
  early_nodes.insert(early_nodes.end(), late_nodes.begin(), late_nodes.end());
  Plan plan(this, std::move(early_nodes), num_early, std::move(fetch_outputs), phase);
  plan.random_stream_ = plans_compiled_++;
  // With check_numerics every node runs, so a NaN is reported where it is made.
  if (fold_constants_ && !check_numerics_) FoldConstants(plan);
  if (fuse_ops_) Fuse(plan);
  return plan;
}

Node* Plan::AddPlanNode(const Node& replaced, const OpDef* op, std::string name,
                        std::vector<Output> inputs, Attrs attrs, std::vector<TensorType> outputs) {
  auto node = std::make_unique<Node>();
  // Ids past the graph's: positions in an executable are indexed by id.
  node->id = session_->graph().num_nodes() + static_cast<int>(fused_nodes_.size());
  node->name = std::move(name);
  node->op = op;
  node->inputs = std::move(inputs);
  node->attrs = std::move(attrs);
  node->outputs = std::move(outputs);
  node->graph = &session_->graph();
  replaced_.push_back({&replaced, node.get()});
  fused_nodes_.push_back(std::move(node));
  return fused_nodes_.back().get();
}

void Session::FoldConstants(Plan& plan) {
  static const OpDef* const constant_op = [] {
    for (const OpDef* op : OpRegistry::Global().All()) {
      if (op->source == SourceKind::kConstant) return op;
    }
    return static_cast<const OpDef*>(nullptr);
  }();
  constexpr size_t kMaxFoldedBytes = size_t{16} << 20;  // never trade a kernel for a huge constant
  if (constant_op == nullptr) return;
  std::map<const Node*, const Node*> folded;  // graph node -> its constant
  auto value_of = [&](const Output& o) -> const Tensor* {
    auto it = folded.find(o.node);
    const Node* n = it == folded.end() ? o.node : it->second;
    return n->op->source == SourceKind::kConstant && o.index == 0 ? &n->attr<Tensor>("value") : nullptr;
  };
  for (int p = 0; p < plan.num_early_; ++p) {  // updates write variables: never folded
    Node* node = plan.order_[p];
    const OpDef& op = *node->op;
    const bool alias = op.aliases_input >= 0;  // Reshape: same bytes, new shape
    if (op.source != SourceKind::kNone || !(op.kernel || alias) || op.random || op.starts_early || op.mutates_input >= 0 ||
        node->outputs.size() != 1 || node->inputs.empty()) {
      continue;
    }
    std::vector<const Tensor*> values;
    for (const Output& in : node->inputs) values.push_back(value_of(in));
    if (std::find(values.begin(), values.end(), nullptr) != values.end()) continue;
    KernelContext k{*node, plan.phase_, {}, {}, {}, {}, "first"};  // computed once: not worth timing
    for (const Tensor* v : values) {
      k.input_types.push_back({v->dtype(), v->shape()});
      k.inputs.push_back(const_cast<void*>(v->raw()));
    }
    InferContext infer(*node, k.input_types);
    if (!op.infer(infer).ok() || infer.outputs().size() != 1) continue;  // Run reports it
    const TensorType type = infer.outputs()[0];
    bool known = true;
    for (int64_t d : type.shape.dims()) known &= d >= 0;
    if (!known || type.shape.NumElements() * SizeOf(type.dtype) > kMaxFoldedBytes) continue;
    Tensor result;
    if (alias) {
      absl::StatusOr<Tensor> reshaped = values[op.aliases_input]->Reshaped(type.shape);
      if (!reshaped.ok()) continue;  // Run reports it
      result = *std::move(reshaped);
    } else {
      result = Tensor(type.dtype, type.shape);
      k.output_types = {type};
      k.outputs = {result.raw()};
      absl::StatusOr<std::unique_ptr<Kernel>> kernel = op.kernel(k);
      if (!kernel.ok() || (*kernel && !(*kernel)->Run(RunContext{}).ok())) continue;  // Run reports it
    }
    Node* constant = plan.AddPlanNode(*node, constant_op, absl::StrCat(node->name, " (folded)"), {},
                                      {{"value", result}}, {type});
    folded[node] = constant;
    plan.order_[p] = constant;
  }
}

void Session::Fuse(Plan& plan) {
  static const std::vector<const OpDef*> fused_ops = [] {
    std::vector<const OpDef*> ops;
    for (const OpDef* op : OpRegistry::Global().All()) {
      if (op->fuse) ops.push_back(op);
    }
    return ops;
  }();
  if (fused_ops.empty()) return;
  std::map<std::pair<int, int>, int> uses;  // (node id, output index) -> reads
  for (const Node* node : plan.order_) {
    for (const Output& in : node->inputs) ++uses[{in.node->id, in.index}];
  }
  for (const Output& f : plan.fetches_) ++uses[{f.node->id, f.index}];
  auto uses_of = [&](int id, int index) {
    auto it = uses.find({id, index});
    return it == uses.end() ? 0 : it->second;
  };
  const FusionContext ctx{plan.phase_, [&](const Output& o) { return uses_of(o.node->id, o.index); }};
  // Only outputs every read of which comes from inside the fusion may vanish.
  auto contained = [&](Node& node, const Fusion& f) {
    auto inside = [&](const Node* n) {
      return n == &node || std::find(f.absorbed.begin(), f.absorbed.end(), n) != f.absorbed.end();
    };
    for (const Output& in : f.inputs) {
      if (in.node != &node && inside(in.node)) return false;
    }
    for (const Node* a : f.absorbed) {
      for (int k = 0; k < static_cast<int>(a->outputs.size()); ++k) {
        int reads = 0;
        for (const Node* n : f.absorbed) {
          for (const Output& in : n->inputs) reads += in.node == a && in.index == k;
        }
        for (const Output& in : node.inputs) reads += in.node == a && in.index == k;
        if (reads != uses_of(a->id, k)) return false;
      }
    }
    return true;
  };
  // From the last node back, so the longest chain ending at a node fuses
  // before a shorter one inside it could; updates (late nodes) never fuse.
  std::vector<char> absorbed(graph_.num_nodes(), 0);
  for (int p = plan.num_early_ - 1; p >= 0; --p) {
    Node* node = plan.order_[p];
    if (node->id >= graph_.num_nodes() || absorbed[node->id]) continue;  // plan-owned: done
    for (const OpDef* op : fused_ops) {
      std::optional<Fusion> f = op->fuse(*node, ctx);
      if (!f || !contained(*node, *f)) continue;
      // The fused node must provide every output of `node` the plan reads.
      std::vector<TensorType> input_types;
      for (const Output& in : f->inputs) input_types.push_back(in.type());
      Node probe{.op = op, .attrs = f->attrs};
      InferContext infer(probe, input_types);
      if (!op->infer(infer).ok()) continue;
      const int provided = static_cast<int>(infer.outputs().size());
      bool complete = true;
      for (int k = provided; k < static_cast<int>(node->outputs.size()); ++k) {
        complete &= ctx.uses(node->output(k)) == 0;
      }
      if (!complete) continue;
      std::string name;  // "dense/Dense+bn/BatchNorm+act/Elu"
      for (const Node* a : f->absorbed) absl::StrAppend(&name, a->name, "+");
      absl::StrAppend(&name, node->name);
      for (const Node* a : f->absorbed) absorbed[a->id] = 1;
      plan.order_[p] = plan.AddPlanNode(*node, op, std::move(name), std::move(f->inputs),
                                        std::move(f->attrs), std::move(infer.outputs()));
      break;
    }
  }
  int removed_early = 0;
  for (int p = 0; p < plan.num_early_; ++p) {
    removed_early += plan.order_[p]->id < graph_.num_nodes() && absorbed[plan.order_[p]->id];
  }
  std::erase_if(plan.order_, [&](const Node* n) { return n->id < graph_.num_nodes() && absorbed[n->id]; });
  plan.num_early_ -= removed_early;
}

}  // namespace gradflow
