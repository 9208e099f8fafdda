#ifndef GRADFLOW_GRAPH_SESSION_H_
#define GRADFLOW_GRAPH_SESSION_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "graph/graph.h"
#include "graph/op_registry.h"
#include "graph/profile.h"

namespace gradflow {

// Variable values by name ("dense/kernel"): weights, optimizer slots, moving
// statistics, the step counter. Outlives plans; this is what checkpoints save.
class VariableStore {
 public:
  // Changes whenever a variable may have been written: by Set, Bind,
  // GetOrCreate, by Get (its tensor is live, the caller may write through
  // it) and by every run of a plan that updates variables. Kernels that cache
  // values derived from weights (inference batch norm folded into a Dense)
  // recompute them when it changes. Code that keeps a tensor from Get and
  // writes through it later calls MarkWritten.
  uint64_t version() const { return version_ + shared_storage_writes_.load(std::memory_order_relaxed); }
  // A store that shares storage (Bind) tells every store: a training step
  // here changes what another session's plans must not serve from a cache.
  void MarkWritten() const {
    ++version_;
    if (shares_storage_) MarkSharedStorageWritten();
  }
  // Storage bound into stores (Bind) was written outside them (nn::Layer::
  // SetWeights writes a layer's weights, which any number of stores may
  // share): every store's version changes.
  static void MarkSharedStorageWritten() { shared_storage_writes_.fetch_add(1, std::memory_order_relaxed); }

  bool Has(std::string_view name) const { return values_.contains(name); }
  // The live tensor (plans point into it); NotFound if absent.
  absl::StatusOr<Tensor> Get(std::string_view name) const;
  // Copies `value` into the existing variable (same dtype and shape), so
  // compiled plans keep their pointers; creates it if absent.
  absl::Status Set(std::string_view name, const Tensor& value);
  // Adds `value` itself (not a copy) as the variable `name`: the store and the
  // caller share its storage, so two sessions that bind the same tensor train
  // one set of weights (nn layers reused by several models). Only for a name
  // not yet in the store, i.e. before any plan points at it: FailedPrecondition
  // otherwise, unless it already shares `value`'s storage.
  absl::Status Bind(std::string_view name, const Tensor& value);
  std::vector<std::string> Names() const;  // sorted
  // Creates the variable if absent; returns the live tensor, or
  // ResourceExhausted / InvalidArgument naming it if it cannot be allocated.
  absl::StatusOr<Tensor*> GetOrCreate(const std::string& name, DType dtype, const Shape& shape, bool* created);

 private:
  std::map<std::string, Tensor, std::less<>> values_;
  mutable uint64_t version_ = 1;
  bool shares_storage_ = false;  // some variable was bound (Bind), so other stores may hold it too
  static inline std::atomic<uint64_t> shared_storage_writes_{0};
};

// A feed or fetch key: an Output handle or a node name ("x", "split:1").
struct ValueRef {
  ValueRef(Output o) : output(o) {}                // NOLINT: implicit by design
  ValueRef(const char* n) : name(n) {}             // NOLINT
  ValueRef(std::string n) : name(std::move(n)) {}  // NOLINT
  Output output;
  std::string name;
};

struct Feed {
  ValueRef key;
  Tensor value;
};

class Session;
class Executable;  // one plan specialised to one concrete batch size

// A compiled graph: ordered kernels, oneDNN primitives and an arena, built on
// the first Run for each concrete batch size and reused after.
class Plan {
 public:
  Plan(Plan&&) noexcept;
  Plan& operator=(Plan&&) noexcept;
  ~Plan();

  // Runs one step. `fetched` receives one tensor per fetch; tensors already
  // of the right shape are reused, so a loop allocates nothing per step.
  absl::Status Run(const std::vector<Feed>& feeds, std::vector<Tensor>* fetched);
  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Feed>& feeds);

  // The buffer the plan copies `placeholder`'s feed into, for `batch` rows:
  // write a batch into it and pass it as that placeholder's feed, and Run
  // copies nothing (Fit and Predict gather their batches straight into it).
  // A step may reuse this memory for other values once it has read the feed:
  // fill it again before every Run.
  absl::StatusOr<Tensor> FeedBuffer(const ValueRef& placeholder, int64_t batch);
  // Bytes of the arena that holds every intermediate for `batch` (compiles it
  // if needed). Shows the effect of liveness-based buffer reuse.
  absl::StatusOr<size_t> ArenaBytes(int64_t batch);
  // The nodes this plan runs, in execution order (names).
  std::vector<std::string> NodeNames() const;
  // The position in the plan's random stream: the next Run draws what the
  // (count + 1)-th Run draws (dropout masks, RReLU slopes). Resuming training
  // sets it to the saved step count, so the masks continue where they were.
  uint64_t run_count() const { return run_count_; }
  void set_run_count(uint64_t count) { run_count_ = count; }
  // Which random stream the plan draws from: by default the plan's compile
  // index in its session (0 for the first plan), so two plans do not replay
  // each other's masks. Setting it (and run_count) makes the draws a
  // function of the session seed and these two numbers only.
  uint64_t random_stream() const { return random_stream_; }
  void set_random_stream(uint64_t stream) { random_stream_ = stream; }
  Phase phase() const { return phase_; }
  // How many batch sizes have an executable now (at most
  // SessionOptions::max_cached_batch_sizes).
  size_t cached_batch_sizes() const;
  // Profiling (graph/profile.h): on, every Run times each kernel (two clock
  // reads per kernel, about 50 ns) and the whole step, without the first
  // run's building of a batch size's executable. Turning it on starts the
  // counts afresh; turning it off keeps them for Profile.
  void set_profiling(bool on);
  // The profiled runs so far, nodes with the most time first.
  PlanProfile Profile() const;

 private:
  friend class Session;
  friend class ExecutableBuilder;
  struct CachedExecutable {
    int64_t batch;
    std::unique_ptr<Executable> executable;
  };
  Plan(Session* session, std::vector<Node*> order, int num_early, std::vector<Output> fetches,
       Phase phase);
  // The executable for `batch`, built on first use; the caller holds the
  // session's run mutex.
  absl::StatusOr<Executable*> ForBatch(int64_t batch);
  // The steps of Run.
  absl::StatusOr<int64_t> MatchFeeds(const std::vector<Feed>& feeds);
  absl::Status CheckFeed(const Output& placeholder, const Tensor& value) const;
  absl::Status CheckFeedNumerics() const;
  absl::Status RunKernels(Executable& exe);
  void FindProfileRows(Executable& exe);
  void CopyFetches(const Executable& exe, std::vector<Tensor>& fetched) const;

  Session* session_;
  std::vector<Node*> order_;
  // Plan-owned fused nodes (Fusion) in order_, each with the graph node whose
  // outputs it provides.
  std::vector<std::unique_ptr<Node>> fused_nodes_;
  std::vector<std::pair<const Node*, const Node*>> replaced_;  // (graph node, fused node)
  // Adds a plan-owned node standing for `replaced` (its outputs, index for index).
  Node* AddPlanNode(const Node& replaced, const OpDef* op, std::string name, std::vector<Output> inputs,
                    Attrs attrs, std::vector<TensorType> outputs);
  int num_early_;  // order_[num_early_...] write variables or depend on nodes that do
  std::vector<Output> fetches_;
  std::vector<Node*> placeholders_;
  Phase phase_;
  int64_t graph_version_;
  uint64_t random_stream_ = 0;
  uint64_t run_count_ = 0;
  std::vector<const Tensor*> fed_;  // per placeholder, during Run: its feed
  bool profiling_ = false;
  PlanProfile profile_;  // nodes unsorted; rows found by Executable::profile_rows
  uint64_t profile_epoch_ = 0;  // changes when profiling restarts, so executables find their rows again
  std::vector<CachedExecutable> by_batch_;  // most recently used first
};

struct SessionOptions {
  uint64_t seed = 0;  // 0: use the graph's seed
  // CheckNumerics: after each kernel, scan its f32 outputs (and the variables
  // an update node wrote) and fail the step with an error naming the first
  // node that produced NaN or Inf, its op and the shape; f32 feeds are checked
  // too. Off by default: without it plans hold exactly the plain kernels.
  bool check_numerics = false;
  // Plan-time fusions (OpDef::fuse): e.g. an inference plan runs Dense ->
  // BatchNorm -> activation as one inner product with folded weights. Off
  // only to compare against the unfused graph.
  bool fuse_ops = true;
  // Constant folding: a plan computes each node whose inputs are all
  // constants once, at compile time, and reads the result as a constant
  // (not with check_numerics, which must name the node that makes a NaN).
  bool fold_constants = true;
  // Each plan keeps the executables (kernels, primitives, arena) of at most
  // this many batch sizes, dropping the least recently used: a Predict over
  // many different sizes does not keep one arena per size. At least 1.
  size_t max_cached_batch_sizes = 8;
  // Ops with several implementations (Dense and its backward ops: oneDNN's
  // inner product or matmul) pick one when their kernel is made for a batch
  // size (graph/autotune.h): "first" (the default) takes each op's default
  // for the shape (Dense: the matmul for f32 products of 16+ rows on 2+
  // threads, else the inner product; ops/dense.cc says why); an
  // implementation's name takes that one;
  // "fastest" times each a few times on the plan's own buffers and keeps the
  // fastest, remembered for the process per shape and thread count (cuDNN's
  // benchmark mode). Timing can choose differently in another process, and
  // the implementations round differently, so "fastest" gives up
  // bit-identical results across processes (a resumed checkpoint, a rerun):
  // it is opt-in, as PyTorch's cudnn.benchmark is.
  std::string autotune = "first";
  // The ranks of a data-parallel job (core/communicator.h), for graphs with
  // all-reduce nodes (optimizers::DataParallelOptions); not owned, and it
  // must outlive the session's plans. Null: a plan with such nodes fails to
  // make its kernels, saying so.
  Communicator* communicator = nullptr;
};

// Owns the variable store of one graph and compiles plans over it.
class Session {
 public:
  explicit Session(Graph& graph, SessionOptions options = {});

  // Prunes the graph to what `fetches` and `targets` need, orders it and
  // checks it. Kernels are created on the first Run of each batch size.
  absl::StatusOr<Plan> Compile(const std::vector<ValueRef>& fetches,
                               const std::vector<ValueRef>& targets = {},
                               Phase phase = Phase::kInfer);

  // Creates (and initializes) every variable of the graph not yet in the store.
  absl::Status InitializeVariables();
  // Data parallel: initializes the variables, checks that every rank of
  // `communicator` has the same ones (names, dtypes, shapes; the error names
  // the ranks and the first difference) and copies rank 0's values to all
  // ranks. A collective: every rank calls it, before the first step.
  absl::Status BroadcastVariables(Communicator& communicator);

  Graph& graph() { return graph_; }
  VariableStore& variables() { return variables_; }
  uint64_t seed() const { return seed_; }
  bool check_numerics() const { return check_numerics_; }
  size_t max_cached_batch_sizes() const { return max_cached_batch_sizes_; }
  const std::string& autotune() const { return autotune_; }
  Communicator* communicator() const { return communicator_; }

 private:
  friend class Plan;
  absl::StatusOr<Output> Resolve(const ValueRef& ref) const;
  absl::Status InitializeVariable(const Node& node);
  // The nodes `roots` need, each after its inputs and control inputs.
  absl::StatusOr<std::vector<Node*>> NeededInOrder(std::vector<Node*> roots) const;
  // Applies the registered fusion rules to a pruned, ordered plan.
  void Fuse(Plan& plan);
  // Replaces nodes computed from constants only by constants (plan-owned).
  void FoldConstants(Plan& plan);

  Graph& graph_;
  uint64_t seed_;
  bool check_numerics_;
  bool fuse_ops_;
  bool fold_constants_;
  size_t max_cached_batch_sizes_;
  std::string autotune_;
  Communicator* communicator_;
  uint64_t plans_compiled_ = 0;
  VariableStore variables_;
  // Held by every Run, FeedBuffer, ArenaBytes and Compile: the plans of one
  // session share the variable store, so they run one at a time.
  mutable std::mutex run_mutex_;
};

}  // namespace gradflow

#endif  // GRADFLOW_GRAPH_SESSION_H_
