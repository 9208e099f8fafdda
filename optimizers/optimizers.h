#ifndef GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_
#define GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_

// Optimizers as graph rewrites: Minimize adds the gradient nodes, the update
// nodes (one fused multi-tensor update, or one per trainable variable), the
// learning rate (a variable, or a schedule's subgraph) and the step counter
// increment, and returns a single train op to run as a plan target.
//
// Formulas and defaults are Keras's (tf.keras 2.11+ / Keras 3 unless a
// file says otherwise); each optimizer's .cc file writes its update rule out.
// Slots are non-trainable variables named "<variable>/<slot>"
// ("dense/kernel/m"); with the step counter, the learning rate and Nadam's
// momentum product they live in the VariableStore, so checkpoints save them.

#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/describe.h"
#include "graph/graph.h"
#include "optimizers/clipping.h"
#include "optimizers/data_parallel.h"
#include "optimizers/schedules.h"

namespace gradflow::optimizers {

struct UpdateContext;  // updates.h
struct UpdateSpec;

// One slot of an optimizer (the variable "<variable>/<slot>") and Keras's
// names for it: Keras 3's ("momentum", in .keras files unnamed, by order)
// and tf.keras 2.x's OptimizerV2 ("m", in "Adam/dense/kernel/m:0").
struct KerasSlot {
  const char* slot;
  const char* keras;
  const char* tf_keras;
};
// The optimizer's state as Keras lists it (optimizer.variables): after the
// iteration count and the learning rate, group by group; inside a group,
// variable by variable, each of the group's slots (Keras 3 creates a group's
// slots together, interleaved: m0, v0, m1, v1, ...). Then `scalars`: state
// not per variable (Nadam's momentum product), by gradflow variable name
// and Keras's. tf.keras 2.x's OptimizerV2 orders every slot as its own
// group (all m, then all v); its files name each slot, so they are matched
// by name.
struct SlotLayout {
  std::vector<std::vector<KerasSlot>> groups;
  std::vector<std::pair<const char*, const char*>> scalars;
};

// Every optimizer is one struct here (core/describe.h: its Keras class name,
// its fields with Keras's defaults and ranges, listed once) plus one .cc file
// defining its DescribeUpdate (the update op of one variable) and registering
// that op, plus its entry in the Optimizer variant. OptimizerName, the config
// readers and writers, validation and the tests that cover "every optimizer"
// are derived from these. learning_rate is checked by ValidateOptimizer
// (> 0 and finite) unless a schedule replaces it.

// Keras SGD: velocity = momentum * velocity - lr * g;
// w += velocity (or, with Nesterov, w += momentum * velocity - lr * g).
struct SGD {
  static constexpr const char* kName = "SGD";
  double learning_rate = 0.01;  // Keras default
  double momentum = 0.0;
  bool nesterov = false;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::InRange("momentum", 0, 1, /*hi_inclusive=*/true), o.momentum);
    f(Field::Any("nesterov"), o.nesterov);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;  // sgd.cc
  SlotLayout KerasSlots() const;
};

// Keras Adagrad: acc += g^2; w -= lr * g / sqrt(acc + epsilon) (adagrad.cc).
struct Adagrad {
  static constexpr const char* kName = "Adagrad";
  double learning_rate = 0.001;
  double initial_accumulator_value = 0.1;
  double epsilon = 1e-7;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::NonNegative("initial_accumulator_value"), o.initial_accumulator_value);
    f(Field::NonNegative("epsilon"), o.epsilon);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

// Keras RMSprop, plain or centered, optional momentum (rmsprop.cc).
struct RMSprop {
  static constexpr const char* kName = "RMSprop";
  double learning_rate = 0.001;
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::InRange("rho", 0, 1), o.rho);
    f(Field::InRange("momentum", 0, 1, /*hi_inclusive=*/true), o.momentum);
    f(Field::NonNegative("epsilon"), o.epsilon);
    f(Field::Any("centered"), o.centered);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

// Keras Adam (or AMSGrad): bias-corrected moments, epsilon outside the root (adam.cc).
struct Adam {
  static constexpr const char* kName = "Adam";
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::InRange("beta_1", 0, 1), o.beta_1);
    f(Field::InRange("beta_2", 0, 1), o.beta_2);
    f(Field::NonNegative("epsilon"), o.epsilon);
    f(Field::Any("amsgrad"), o.amsgrad);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

// Keras AdamW: Adam plus decoupled weight decay w -= lr * weight_decay * w (adam.cc).
struct AdamW {
  static constexpr const char* kName = "AdamW";
  double learning_rate = 0.001;
  double weight_decay = 0.004;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::NonNegative("weight_decay"), o.weight_decay);
    f(Field::InRange("beta_1", 0, 1), o.beta_1);
    f(Field::InRange("beta_2", 0, 1), o.beta_2);
    f(Field::NonNegative("epsilon"), o.epsilon);
    f(Field::Any("amsgrad"), o.amsgrad);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

// Keras Nadam: Adam with Nesterov momentum and the momentum schedule
// mu_t = beta_1 * (1 - 0.5 * 0.96^(schedule_decay * t)) (nadam.cc). The
// default schedule_decay = 1 is Keras 3's (and 2.11+'s) 0.96^t;
// kKeras2NadamScheduleDecay (0.004) gives tf.keras 2.x's 0.96^(0.004 t).
inline constexpr double kKeras2NadamScheduleDecay = 0.004;
struct Nadam {
  static constexpr const char* kName = "Nadam";
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  double schedule_decay = 1.0;  // Keras 3; tf.keras 2.x: kKeras2NadamScheduleDecay
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::InRange("beta_1", 0, 1), o.beta_1);
    f(Field::InRange("beta_2", 0, 1), o.beta_2);
    f(Field::NonNegative("epsilon"), o.epsilon);
    f(Field::NonNegative("schedule_decay").NotInKeras(), o.schedule_decay);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
  // The momentum product's update, after every variable's (updates.h).
  Node* AddAfterUpdates(Graph& graph, Output step, const std::vector<Node*>& updates) const;
};

// Keras Adamax: Adam with the infinity norm (adamax.cc).
struct Adamax {
  static constexpr const char* kName = "Adamax";
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    f(Field::InRange("beta_1", 0, 1), o.beta_1);
    f(Field::InRange("beta_2", 0, 1), o.beta_2);
    f(Field::NonNegative("epsilon"), o.epsilon);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

// Keras 3 Lion (Chen et al. 2023, "Symbolic Discovery of Optimization
// Algorithms"): the sign of an interpolated momentum (lion.cc).
struct Lion {
  static constexpr const char* kName = "Lion";
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.99;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("learning_rate"), o.learning_rate);
    // Keras 3 refuses beta_1 <= 0 or > 1; beta_2 as the other moments.
    f(Field::InRange("beta_1", 0, 1, /*hi_inclusive=*/true, /*lo_inclusive=*/false), o.beta_1);
    f(Field::InRange("beta_2", 0, 1), o.beta_2);
  }
  UpdateSpec DescribeUpdate(const UpdateContext& u) const;
  SlotLayout KerasSlots() const;
};

using Optimizer = std::variant<SGD, Adagrad, RMSprop, Adam, AdamW, Nadam, Adamax, Lion>;

// The Keras class name: "SGD", "Adagrad", "RMSprop", "Adam", ... (kName).
std::string OptimizerName(const Optimizer& optimizer);

// The optimizer Keras 3's optimizers.get(name) gives: the class whose kName
// matches in any case ("adam", "Adam", "rmsprop", "adamw", "nadam", ...)
// with Keras 3's defaults. InvalidArgument listing the names otherwise.
absl::StatusOr<Optimizer> OptimizerFromName(std::string_view name);

// An optimizer given as an object or, as Keras's compile(optimizer="adam"),
// by name: CompileOptions{.optimizer = "adam"} or {.optimizer =
// optimizers::Adam{.learning_rate = 1e-2}}. It is the Optimizer variant
// (std::visit and everything taking an Optimizer accept it); an unknown name
// holds SGD and status() is the OptimizerFromName error, which Compile returns.
class OptimizerSpec : public Optimizer {
 public:
  using Optimizer::Optimizer;
  OptimizerSpec(const Optimizer& optimizer) : Optimizer(optimizer) {}  // NOLINT: implicit
  OptimizerSpec(const char* name) : OptimizerSpec(std::string_view(name)) {}  // NOLINT
  OptimizerSpec(const std::string& name) : OptimizerSpec(std::string_view(name)) {}  // NOLINT
  explicit OptimizerSpec(std::string_view name);
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

struct MinimizeOptions {
  // Variables to train; empty means every trainable variable the loss depends on.
  std::vector<Output> var_list;
  // Clipping between the gradients and the updates (optimizers/clipping.h):
  // ClipByValue / ClipByNorm / ClipByGlobalNorm, Keras's clipvalue /
  // clipnorm / global_clipnorm.
  std::optional<GradientClipping> clip;
  // Other update nodes to run with every training step, e.g. batch norm's
  // moving statistics (nn layers' updates()): the train op depends on them.
  std::vector<Node*> extra_updates;
  // A learning-rate schedule over the step counter (optimizers/schedules.h).
  // It replaces the optimizer's constant learning_rate, as passing a schedule
  // as Keras's `learning_rate` does; no kLearningRateName variable is made,
  // and the rate is the node kScheduledLearningRateName.
  std::optional<Schedule> schedule;
  // true: one update node of the optimizer's op over all variables (a
  // multi-tensor update: one parallel pass over parameters and slots).
  // false: one node per variable ("dense/kernel/update/ApplyAdam"), easier to
  // read in a DOT export. Both give bit-identical results.
  bool fused_updates = true;
  // Data parallel (optimizers/data_parallel.h): each gradient becomes its
  // mean over the ranks of the session's Communicator, in fused buckets,
  // before clipping and the updates. Regularization penalties are part of
  // the gradients averaged (the same on every rank).
  std::optional<DataParallelOptions> data_parallel;
};

// The names of the variables Minimize creates.
inline constexpr char kStepName[] = "global_step";                   // i64 scalar
inline constexpr char kLearningRateName[] = "optimizer/learning_rate";  // f32 scalar
// With a schedule: the node computing the rate of the current step.
inline constexpr char kScheduledLearningRateName[] = "optimizer/schedule/learning_rate";
// Nadam's product of momentum-schedule values mu_1 ... mu_t (f32 scalar).
inline constexpr char kNadamMomentumProductName[] = "optimizer/nadam_u_product";

// Adds the training step for `loss` (a f32 scalar) and returns its handle.
// The penalties of regularized variables (optimizers/regularizers.h) are
// added to the loss it differentiates, and max-norm constraints
// (optimizers/constraints.h) run after their variable's update.
// Errors (non-scalar loss, nothing to train, a second optimizer on the same
// graph starting at another learning rate: the graph has one rate variable)
// are recorded in graph.status() and an invalid Output is returned.
Output Minimize(Graph& graph, Output loss, const Optimizer& optimizer,
                const MinimizeOptions& options = {});

// Keras's apply_gradients: the update part of Minimize for gradients computed
// elsewhere ({gradient, variable} pairs, each gradient of its variable's
// shape). Returns the train op; errors are recorded in the graph.
Output ApplyGradients(Graph& graph, const std::vector<std::pair<Output, Output>>& grads_and_vars,
                      const Optimizer& optimizer, const MinimizeOptions& options = {});

// OK, or InvalidArgument naming the hyperparameter (of the optimizer or the
// schedule) that is out of range. Minimize and ApplyGradients check it first.
absl::Status ValidateOptimizer(const Optimizer& optimizer, const MinimizeOptions& options = {});

// Trainable variables (attr "trainable") that `y` depends on, in creation order.
std::vector<Output> TrainableVariables(Graph& graph, Output y);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_OPTIMIZERS_H_
