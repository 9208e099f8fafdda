#include "graph/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
  ++version_;  // the caller may write through the live tensor
  return it->second;
}

absl::Status VariableStore::Set(std::string_view name, const Tensor& value) {
  ++version_;
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
  ++version_;
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
  ++version_;
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

// Every value's byte size, and their sum, fit in int64 (the arena planner
// adds them up unchecked); otherwise InvalidArgument / ResourceExhausted
// naming the node, at compile time rather than as a wrapped size at Run.
absl::Status CheckBufferSizes(const std::vector<Node*>& order, const std::vector<std::vector<TensorType>>& types,
                              int64_t batch) {
  int64_t total = 0;
  for (size_t p = 0; p < order.size(); ++p) {
    for (const TensorType& t : types[p]) {
      absl::StatusOr<size_t> bytes = t.shape.CheckedNumBytes(t.dtype);
      if (!bytes.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("node ", QuoteUserText(order[p]->name), " at batch size ",
                                                       batch, ": ", bytes.status().message()));
      }
      if (__builtin_add_overflow(total, static_cast<int64_t>(*bytes), &total)) {
        return absl::ResourceExhaustedError(absl::StrCat("the plan's buffers at batch size ", batch,
                                                         " need more than 2^63 bytes (at node ",
                                                         QuoteUserText(order[p]->name), ")"));
      }
    }
  }
  return absl::OkStatus();
}

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
  std::vector<Copy> snapshots;   // fetched variables, copied before the updates
  std::vector<Slot> feeds;    // one per Plan::placeholders_
  std::vector<Slot> fetches;  // one per Plan::fetches_
};

Plan::Plan(Session* session, std::vector<Node*> order, int num_early, std::vector<Output> fetches,
           Phase phase)
    : session_(session), order_(std::move(order)), num_early_(num_early),
      fetches_(std::move(fetches)), phase_(phase),
      graph_version_(session->graph().version()) {
  for (Node* node : order_) {
    if (node->op->source == SourceKind::kPlaceholder) placeholders_.push_back(node);
  }
}
Plan::Plan(Plan&&) noexcept = default;
Plan& Plan::operator=(Plan&&) noexcept = default;
Plan::~Plan() = default;

std::vector<std::string> Plan::NodeNames() const {
  std::vector<std::string> names;
  for (const Node* node : order_) names.push_back(node->name);
  return names;
}

absl::StatusOr<Executable*> Plan::ForBatch(int64_t batch) {
  auto it = by_batch_.find(batch);
  if (it != by_batch_.end()) return it->second.get();

  auto exe = std::make_unique<Executable>();
  const int n = static_cast<int>(order_.size());
  std::vector<int> position(session_->graph().num_nodes() + fused_nodes_.size(), -1);
  for (int p = 0; p < n; ++p) position[order_[p]->id] = p;
  for (auto [node, fused] : replaced_) position[node->id] = position[fused->id];

  // 1. Concrete types: the placeholders' unknown batch dimension becomes `batch`.
  std::vector<std::vector<TensorType>> types(n);
  for (int p = 0; p < n; ++p) {
    Node* node = order_[p];
    if (node->op->source == SourceKind::kPlaceholder) {
      TensorType t = node->outputs[0];
      if (t.shape.rank() > 0 && t.shape[0] < 0) t.shape[0] = batch;
      types[p] = {t};
      continue;
    }
    std::vector<TensorType> input_types;
    for (const Output& in : node->inputs) input_types.push_back(types[position[in.node->id]][in.index]);
    InferContext ctx(*node, input_types);
    GF_RETURN_IF_ERROR(node->op->infer(ctx));
    types[p] = std::move(ctx.outputs());
  }
  GF_RETURN_IF_ERROR(CheckBufferSizes(order_, types, batch));

  // 2. Liveness. Every value maps to a root buffer (itself, the input it
  //    aliases, or the input it overwrites in place); a root lives until the
  //    last use of any value on it.
  struct Value {
    int root_p, root_k;  // owner of the buffer
    void* fixed = nullptr;
  };
  // The last position reading each value directly (n: fetched).
  std::vector<std::vector<int>> last_read(n);
  for (int p = 0; p < n; ++p) last_read[p].assign(types[p].size(), -1);
  for (int p = 0; p < n; ++p) {
    for (const Output& in : order_[p]->inputs) last_read[position[in.node->id]][in.index] = p;
  }
  for (const Output& f : fetches_) last_read[position[f.node->id]][f.index] = n;
  std::vector<std::vector<Value>> values(n);
  std::vector<std::vector<int>> last_use(n);
  // Per root: the last read of any value placed on it so far. An op may
  // overwrite an input in place only if nothing reads that buffer after it.
  std::vector<std::vector<int>> root_last_read(n);
  auto can_overwrite = [&](int p, int i) {
    const Output& in = order_[p]->inputs[i];
    const Value& v = values[position[in.node->id]][in.index];
    if (v.fixed || root_last_read[v.root_p][v.root_k] > p) return false;
    if (types[v.root_p][v.root_k].dtype != types[p][0].dtype ||
        types[v.root_p][v.root_k].shape.NumElements() != types[p][0].shape.NumElements()) {
      return false;
    }
    for (int j = 0; j < static_cast<int>(order_[p]->inputs.size()); ++j) {  // no other input on it
      const Output& other = order_[p]->inputs[j];
      const Value& w = values[position[other.node->id]][other.index];
      if (j != i && w.root_p == v.root_p && w.root_k == v.root_k) return false;
    }
    return true;
  };
  for (int p = 0; p < n; ++p) {
    Node* node = order_[p];
    values[p].resize(types[p].size());
    last_use[p].assign(types[p].size(), p);
    root_last_read[p].assign(types[p].size(), -1);
    for (int k = 0; k < static_cast<int>(types[p].size()); ++k) {
      Value& v = values[p][k];
      v.root_p = p;
      v.root_k = k;
      const int shared = k > 0 ? -1 : node->op->aliases_input >= 0 ? node->op->aliases_input
                                                                    : node->op->inplace_input;
      if (node->op->source == SourceKind::kConstant) {
        v.fixed = const_cast<void*>(node->attr<Tensor>("value").raw());
      } else if (node->op->source == SourceKind::kVariable) {
        GF_ASSIGN_OR_RETURN(Tensor var, session_->variables().Get(node->name));
        if (var.shape() != types[p][k].shape || var.dtype() != types[p][k].dtype) {
          return absl::FailedPreconditionError(absl::StrCat(
              "variable '", node->name, "' holds ", std::string(DTypeName(var.dtype())),
              var.shape().ToString(), " but the graph declares ", types[p][k].ToString()));
        }
        v.fixed = var.raw();
      } else if (shared >= 0 && (shared == node->op->aliases_input || can_overwrite(p, shared))) {
        const Output& in = node->inputs[shared];
        v = values[position[in.node->id]][in.index];
      }
      int& root_last = root_last_read[v.root_p][v.root_k];
      root_last = std::max(root_last, last_read[p][k]);
    }
    for (const Output& in : node->inputs) {
      const Value& v = values[position[in.node->id]][in.index];
      last_use[v.root_p][v.root_k] = std::max(last_use[v.root_p][v.root_k], p);
    }
  }
  for (const Output& f : fetches_) {
    const Value& v = values[position[f.node->id]][f.index];
    last_use[v.root_p][v.root_k] = n;
  }

  // 3. Offsets: allocate each root when produced, free it after its last use.
  //    Feeds are all copied in before the first kernel runs, so placeholders
  //    are allocated first and never share a buffer with an earlier value.
  ArenaPlanner planner;
  std::vector<std::vector<size_t>> offsets(n);
  std::vector<std::vector<std::pair<int, int>>> frees_at(n + 1);
  for (int p = 0; p < n; ++p) offsets[p].resize(types[p].size());
  auto allocate = [&](int p, int k) {
    size_t bytes = types[p][k].shape.NumElements() * SizeOf(types[p][k].dtype);
    offsets[p][k] = planner.Allocate(bytes);
    frees_at[last_use[p][k]].push_back({p, k});
  };
  for (int p = 0; p < n; ++p) {
    if (order_[p]->op->source == SourceKind::kPlaceholder) allocate(p, 0);
  }
  // A fetched variable is read by the step before the updates write it, so
  // fetch a copy taken between the two phases (Keras returns pre-update
  // values). Like feeds, these buffers are never shared.
  std::vector<size_t> snapshot_offsets;
  for (const Output& f : fetches_) {
    const Value& v = values[position[f.node->id]][f.index];
    bool variable = v.fixed && order_[v.root_p]->op->source == SourceKind::kVariable;
    snapshot_offsets.push_back(
        variable && num_early_ < n ? planner.Allocate(types[v.root_p][v.root_k].shape.NumElements() *
                                                      SizeOf(types[v.root_p][v.root_k].dtype))
                                   : SIZE_MAX);
  }
  for (int p = 0; p < n; ++p) {
    if (order_[p]->op->source == SourceKind::kPlaceholder) continue;
    for (int k = 0; k < static_cast<int>(types[p].size()); ++k) {
      const Value& v = values[p][k];
      if (!v.fixed && v.root_p == p && v.root_k == k) allocate(p, k);
    }
    for (auto [rp, rk] : frees_at[p]) {
      planner.Free(offsets[rp][rk], types[rp][rk].shape.NumElements() * SizeOf(types[rp][rk].dtype));
    }
  }
  GF_ASSIGN_OR_RETURN(exe->arena,
                      Tensor::Create(DType::kF32, Shape{static_cast<int64_t>(RoundUp(planner.size()) / 4 + 16)}));
  auto* base = static_cast<uint8_t*>(exe->arena.raw());
  auto pointer = [&](int p, int k) -> void* {
    const Value& v = values[p][k];
    return v.fixed ? v.fixed : base + offsets[v.root_p][v.root_k];
  };

  // 4. Kernels, each created once with its final pointers.
  for (int p = 0; p < n; ++p) {
    Node* node = order_[p];
    if (node->op->source == SourceKind::kPlaceholder) {
      exe->feeds.push_back({pointer(p, 0), types[p][0]});
    }
    if (!node->op->kernel) continue;
    KernelContext ctx{*node, phase_, {}, types[p], {}, {}};
    for (const Output& in : node->inputs) {
      int q = position[in.node->id];
      ctx.input_types.push_back(types[q][in.index]);
      ctx.inputs.push_back(pointer(q, in.index));
    }
    for (int k = 0; k < static_cast<int>(types[p].size()); ++k) ctx.outputs.push_back(pointer(p, k));
    GF_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, node->op->kernel(ctx));
    if (kernel && session_->check_numerics_) {
      kernel = std::make_unique<NumericsCheckedKernel>(std::move(kernel), ctx);
    }
    if (kernel) exe->kernels.push_back(std::move(kernel));
    if (p < num_early_) exe->num_early_kernels = exe->kernels.size();
  }
  for (size_t i = 0; i < fetches_.size(); ++i) {
    int p = position[fetches_[i].node->id];
    const TensorType& type = types[p][fetches_[i].index];
    void* data = pointer(p, fetches_[i].index);
    if (snapshot_offsets[i] != SIZE_MAX) {
      exe->snapshots.push_back({data, base + snapshot_offsets[i],
                                type.shape.NumElements() * SizeOf(type.dtype)});
      data = base + snapshot_offsets[i];
    }
    exe->fetches.push_back({data, type});
  }
  Executable* raw = exe.get();
  by_batch_[batch] = std::move(exe);
  return raw;
}

absl::StatusOr<Tensor> Plan::FeedBuffer(const ValueRef& placeholder, int64_t batch) {
  GF_ASSIGN_OR_RETURN(Output key, session_->Resolve(placeholder));
  auto it = std::find(placeholders_.begin(), placeholders_.end(), key.node);
  if (it == placeholders_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", key.name(), "' is not a placeholder this plan reads, so it has no feed buffer"));
  }
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  const Executable::Slot& slot = exe->feeds[it - placeholders_.begin()];
  const size_t offset = static_cast<uint8_t*>(slot.data) - static_cast<uint8_t*>(exe->arena.raw());
  return exe->arena.View(offset, slot.type.dtype, slot.type.shape);
}

absl::StatusOr<size_t> Plan::ArenaBytes(int64_t batch) {
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  return exe->arena.num_bytes();
}

absl::Status Plan::Run(const std::vector<Feed>& feeds, std::vector<Tensor>* fetched) {
  // Match feeds to placeholders; the batch size comes from the fed tensors.
  const Tensor* fed[64] = {};
  if (placeholders_.size() > 64) return absl::UnimplementedError("more than 64 placeholders");
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
    const Tensor& value = feed.value;
    const TensorType& want = key.type();
    bool shape_ok = value.shape().rank() == want.shape.rank();
    for (int d = 0; shape_ok && d < want.shape.rank(); ++d) {
      shape_ok = want.shape[d] < 0 || want.shape[d] == value.shape()[d];
    }
    if (value.dtype() != want.dtype || !shape_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feed for placeholder '", key.name(), "' is ", std::string(DTypeName(value.dtype())),
          value.shape().ToString(), " but the placeholder is ", want.ToString(),
          " (-1 matches any batch size)"));
    }
    if (want.shape.rank() > 0 && want.shape[0] < 0) {
      if (batch_from && value.shape()[0] != batch) {
        return absl::InvalidArgumentError(absl::StrCat(
            "feeds disagree on the batch size: '", batch_from->name, "' has ", batch, ", '",
            key.name(), "' has ", value.shape()[0]));
      }
      batch = value.shape()[0];
      batch_from = key.node;
    }
    fed[it - placeholders_.begin()] = &value;
  }
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    if (fed[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "placeholder '", placeholders_[i]->name, "' ", placeholders_[i]->outputs[0].ToString(),
          " must be fed: the fetched values depend on it"));
    }
  }

  if (session_->check_numerics_) {
    for (size_t i = 0; i < placeholders_.size(); ++i) {
      if (fed[i]->dtype() != DType::kF32) continue;
      int64_t bad = FirstNonFinite(fed[i]->data<float>(), fed[i]->num_elements());
      if (bad >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "CheckNumerics: the feed for placeholder '", placeholders_[i]->name, "' ",
            TensorType{DType::kF32, fed[i]->shape()}.ToString(), " holds ",
            DescribeNonFinite(fed[i]->data<float>()[bad], bad, fed[i]->shape()),
            "; clean or impute the input data"));
      }
    }
  }
  GF_ASSIGN_OR_RETURN(Executable * exe, ForBatch(batch));
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    if (fed[i]->raw() != exe->feeds[i].data) {  // else: written into FeedBuffer
      std::memcpy(exe->feeds[i].data, fed[i]->raw(), fed[i]->num_bytes());
    }
  }
  // Each plan draws its own stream (salted by its compile index; the first
  // plan's salt is 0), so an MC dropout plan does not replay the masks of the
  // training plan's steps.
  const uint64_t salt = (plan_index_ - 1) * 0x9e3779b97f4a7c15ULL;
  VariableStore& variables = session_->variables_;
  RunContext ctx{Mix64(session_->seed() ^ Mix64(salt + ++run_count_)), variables.version()};
  for (size_t i = 0; i < exe->num_early_kernels; ++i) GF_RETURN_IF_ERROR(exe->kernels[i]->Run(ctx));
  for (const Executable::Copy& c : exe->snapshots) std::memcpy(c.dst, c.src, c.bytes);
  if (num_early_ < static_cast<int>(order_.size())) variables.MarkWritten();
  for (size_t i = exe->num_early_kernels; i < exe->kernels.size(); ++i) {
    GF_RETURN_IF_ERROR(exe->kernels[i]->Run(ctx));
  }

  if (fetched == nullptr) return absl::OkStatus();
  fetched->resize(exe->fetches.size());
  for (size_t i = 0; i < exe->fetches.size(); ++i) {
    const Executable::Slot& slot = exe->fetches[i];
    Tensor& out = (*fetched)[i];
    if (out.empty() || out.dtype() != slot.type.dtype || out.shape() != slot.type.shape ||
        out.raw() == slot.data) {
      out = Tensor(slot.type.dtype, slot.type.shape);
    }
    std::memcpy(out.raw(), slot.data, out.num_bytes());
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
      fold_constants_(options.fold_constants) {}

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

absl::Status Session::InitializeVariable(Node& node) {
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
  for (const Node& node : graph_.nodes()) {
    if (node.op->source == SourceKind::kVariable) {
      GF_RETURN_IF_ERROR(InitializeVariable(const_cast<Node&>(node)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Plan> Session::Compile(const std::vector<ValueRef>& fetches,
                                      const std::vector<ValueRef>& targets, Phase phase) {
  if (!graph_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the graph has a build error: ", graph_.status().message()));
  }
  std::vector<Output> fetch_outputs;
  std::vector<Node*> stack;
  for (const ValueRef& ref : fetches) {
    GF_ASSIGN_OR_RETURN(Output o, Resolve(ref));
    fetch_outputs.push_back(o);
    stack.push_back(o.node);
  }
  for (const ValueRef& ref : targets) {
    GF_ASSIGN_OR_RETURN(Output o, Resolve(ref));
    stack.push_back(o.node);
  }
  // Prune: keep only what the fetches and targets need.
  std::vector<char> needed(graph_.num_nodes(), 0);
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    if (needed[node->id]) continue;
    needed[node->id] = 1;
    for (const Output& in : node->inputs) stack.push_back(in.node);
    for (Node* c : node->control_inputs) stack.push_back(c);
  }
  // Order: ids are already topological. Nodes that write variables, and all
  // that depend on them, run last, after every read of the weights.
  std::vector<char> late(graph_.num_nodes(), 0);
  std::vector<Node*> early_nodes, late_nodes;
  for (const Node& cnode : graph_.nodes()) {
    Node& node = const_cast<Node&>(cnode);
    if (!needed[node.id]) continue;
    bool is_late = node.op->mutates_input >= 0;
    for (const Output& in : node.inputs) is_late |= late[in.node->id] != 0;
    for (const Node* c : node.control_inputs) is_late |= late[c->id] != 0;
    late[node.id] = is_late;
    (is_late ? late_nodes : early_nodes).push_back(&node);
    if (node.op->source == SourceKind::kVariable) GF_RETURN_IF_ERROR(InitializeVariable(node));
  }
  const int num_early = static_cast<int>(early_nodes.size());
  early_nodes.insert(early_nodes.end(), late_nodes.begin(), late_nodes.end());
  Plan plan(this, std::move(early_nodes), num_early, std::move(fetch_outputs), phase);
  plan.plan_index_ = ++plans_compiled_;
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
    if (op.source != SourceKind::kNone || !(op.kernel || alias) || op.random || op.mutates_input >= 0 ||
        node->outputs.size() != 1 || node->inputs.empty()) {
      continue;
    }
    std::vector<const Tensor*> values;
    for (const Output& in : node->inputs) values.push_back(value_of(in));
    if (std::find(values.begin(), values.end(), nullptr) != values.end()) continue;
    KernelContext k{*node, plan.phase_, {}, {}, {}, {}};
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
  const FusionContext ctx{plan.phase_, [&](const Output& o) {
                            auto it = uses.find({o.node->id, o.index});
                            return it == uses.end() ? 0 : it->second;
                          }};
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
        if (reads != ctx.uses(Output{const_cast<Node*>(a), k})) return false;
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
