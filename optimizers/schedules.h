#ifndef GRADFLOW_OPTIMIZERS_SCHEDULES_H_
#define GRADFLOW_OPTIMIZERS_SCHEDULES_H_

// Learning-rate schedules as small subgraphs over the step counter (the i64
// variable "global_step": the number of updates applied so far). Minimize
// builds the schedule under "optimizer/schedule/" and feeds its output,
// "optimizer/schedule/learning_rate", to the update nodes, so a DOT export
// shows the schedule next to the updates it drives. The rate of a step is
// computed from the step count before that step's update, as Keras calls
// `learning_rate(iterations)` before incrementing `iterations`.
//
//   optimizers::Minimize(g, loss, optimizers::SGD{},
//                        {.schedule = optimizers::ExponentialDecay{
//                             .initial_learning_rate = 0.01, .decay_steps = 20 * 1719}});
//
// A schedule replaces the optimizer's constant learning_rate (as passing a
// schedule as Keras's `learning_rate` does). The rate is then a pure function
// of global_step, which checkpoints save, so a restored run continues on the
// same curve. Each schedule names its Keras class or the chapter's formula
// (t is the step, in f32: exact up to 2^24 steps).

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/describe.h"
#include "graph/graph.h"

namespace gradflow::optimizers {

// The chapter's power scheduling: lr0 / (1 + t/s)^c. With c = 1 it is Keras's
// InverseTimeDecay(lr0, decay_steps = s, decay_rate = 1); the chapter's
// SGD(decay=1e-4) is s = 10,000, c = 1.
struct PowerSchedule {
  static constexpr const char* kName = "power";
  // Keras's class (nullptr: Keras has none, so a Keras file cannot hold it).
  static constexpr const char* kKerasClass = nullptr;
  double initial_learning_rate = 0.01;  // lr0
  double decay_steps = 0;               // s > 0 (required)
  double power = 1.0;                   // c >= 0
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("initial_learning_rate"), s.initial_learning_rate);
    f(Field::Positive("decay_steps").Symbol("s"), s.decay_steps);
    f(Field::NonNegative("power").Symbol("c"), s.power);
  }
};

// Keras ExponentialDecay: lr0 * decay_rate^(t / decay_steps), with
// staircase: lr0 * decay_rate^floor(t / decay_steps). The chapter's
// exponential scheduling lr0 * 0.1^(t/s) is the default decay_rate.
struct ExponentialDecay {
  static constexpr const char* kName = "exponential";
  static constexpr const char* kKerasClass = "ExponentialDecay";
  double initial_learning_rate = 0.01;
  double decay_steps = 0;  // s > 0 (required)
  double decay_rate = 0.1;
  bool staircase = false;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("initial_learning_rate"), s.initial_learning_rate);
    f(Field::Positive("decay_steps"), s.decay_steps);
    f(Field::Positive("decay_rate"), s.decay_rate);
    f(Field::Any("staircase"), s.staircase);
  }
};

// Keras PiecewiseConstantDecay: values[0] while t <= boundaries[0],
// values[1] while t <= boundaries[1], ..., values.back() after the last.
struct PiecewiseConstantDecay {
  static constexpr const char* kName = "piecewise_constant";
  static constexpr const char* kKerasClass = "PiecewiseConstantDecay";
  std::vector<int64_t> boundaries;  // strictly increasing steps
  std::vector<double> values;       // boundaries.size() + 1 rates
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Any("boundaries"), s.boundaries);
    f(Field::Any("values"), s.values);
  }
  absl::Status Check() const;  // the lists' lengths, order and signs
};

// Keras 3 CosineDecay, with its optional linear warmup:
//   decayed(t, peak) = peak * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, T) / T)) + alpha)
// Without warmup_target (Keras's None, the default): decayed(t, lr0), which is
// also tf.keras 2.x's CosineDecay. With warmup_target and W = warmup_steps:
//   t < W:  lr0 + (warmup_target - lr0) * t / W
//   t >= W: decayed(t - W, warmup_target).
struct CosineDecay {
  static constexpr const char* kName = "cosine";
  static constexpr const char* kKerasClass = "CosineDecay";
  double initial_learning_rate = 0.01;
  int64_t decay_steps = 0;  // > 0 (required)
  double alpha = 0.0;       // the final rate as a fraction of the peak
  std::optional<double> warmup_target;  // the peak after warmup; none: no warmup
  int64_t warmup_steps = 0;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("initial_learning_rate"), s.initial_learning_rate);
    f(Field::Positive("decay_steps"), s.decay_steps);
    f(Field::InRange("alpha", 0, 1, /*hi_inclusive=*/true), s.alpha);
    f(Field::Any("warmup_target"), s.warmup_target);
    f(Field::NonNegative("warmup_steps"), s.warmup_steps);
  }
  absl::Status Check() const;  // warmup_target > 0; warmup_steps only with it
};

// Keras PolynomialDecay:
//   cycle = false: T' = T, t' = min(t, T)
//   cycle = true:  T' = T * ceil(t / T) (T at t = 0), t' = t
//   lr = (lr0 - end) * (1 - t' / T')^power + end
struct PolynomialDecay {
  static constexpr const char* kName = "polynomial";
  static constexpr const char* kKerasClass = "PolynomialDecay";
  double initial_learning_rate = 0.01;
  int64_t decay_steps = 0;             // > 0 (required)
  double end_learning_rate = 0.0001;   // Keras default
  double power = 1.0;                  // Keras default
  bool cycle = false;                  // Keras default
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("initial_learning_rate"), s.initial_learning_rate);
    f(Field::Positive("decay_steps"), s.decay_steps);
    f(Field::NonNegative("end_learning_rate"), s.end_learning_rate);
    f(Field::Positive("power"), s.power);
    f(Field::Any("cycle"), s.cycle);
  }
};

// Keras InverseTimeDecay: lr0 / (1 + decay_rate * t / decay_steps), with
// staircase: lr0 / (1 + decay_rate * floor(t / decay_steps)).
struct InverseTimeDecay {
  static constexpr const char* kName = "inverse_time";
  static constexpr const char* kKerasClass = "InverseTimeDecay";
  double initial_learning_rate = 0.01;
  double decay_steps = 0;  // > 0 (required)
  double decay_rate = 0;   // >= 0 (required in Keras)
  bool staircase = false;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("initial_learning_rate"), s.initial_learning_rate);
    f(Field::Positive("decay_steps"), s.decay_steps);
    f(Field::NonNegative("decay_rate"), s.decay_rate);
    f(Field::Any("staircase"), s.staircase);
  }
};

// The chapter's 1cycle (its OneCycleScheduler callback, 3rd edition): with
//   last = last_steps (default total_steps / 10 + 1),
//   half = (total_steps - last) / 2            (integer division),
// the rate rises linearly from start (default max / 10) to max over steps
// [0, half], falls linearly back to start over [half, 2 half], then drops
// linearly to last_learning_rate (default start / 1000) at total_steps, and
// stays there after (the chapter's callback would extrapolate below it).
// The chapter also mentions cycling the momentum the other way; that is not
// part of this schedule.
struct OneCycle {
  static constexpr const char* kName = "1cycle";
  static constexpr const char* kKerasClass = nullptr;
  int64_t total_steps = 0;           // required: the whole run's steps
  double max_learning_rate = 0.0;    // required
  double start_learning_rate = 0.0;  // 0: max_learning_rate / 10
  int64_t last_steps = 0;            // 0: total_steps / 10 + 1
  double last_learning_rate = 0.0;   // 0: start_learning_rate / 1000
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Any("total_steps"), s.total_steps);
    f(Field::Positive("max_learning_rate"), s.max_learning_rate);
    f(Field::NonNegative("start_learning_rate"), s.start_learning_rate);
    f(Field::NonNegative("last_steps"), s.last_steps);
    f(Field::NonNegative("last_learning_rate"), s.last_learning_rate);
  }
  absl::Status Check() const;  // total_steps leaves room for every phase
};

using Schedule = std::variant<PowerSchedule, ExponentialDecay, PiecewiseConstantDecay,
                              CosineDecay, PolynomialDecay, OneCycle, InverseTimeDecay>;

// The schedule's name in configs (kName): "power", "exponential",
// "piecewise_constant", "cosine", "polynomial", "1cycle", "inverse_time".
std::string ScheduleName(const Schedule& schedule);

// InvalidArgument naming the schedule, the field and the value, or OK: the
// ranges its Fields declare, then its Check() (core/describe.h).
absl::Status ValidateSchedule(const Schedule& schedule);

// Adds the nodes computing the rate at `step` (an i64 scalar) under `scope`
// and returns it (an f32 scalar, the node "<scope>/learning_rate"). An
// invalid schedule records its error in the graph and returns Output{}.
Output BuildSchedule(const Scope& scope, Output step, const Schedule& schedule);

// The rates the schedule's subgraph computes at steps 0 .. num_steps - 1
// (evaluated by running that subgraph; for plots and tests).
absl::StatusOr<std::vector<float>> ScheduleValues(const Schedule& schedule, int64_t num_steps);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_SCHEDULES_H_
