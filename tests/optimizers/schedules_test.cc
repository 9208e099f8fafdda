// Tests of optimizers/schedules.cc: every schedule's subgraph, evaluated at
// chosen steps, against its closed form (Keras's formula or the chapter's),
// computed here in double; the chapter's 1cycle callback replayed step by
// step; invalid settings.

#include "optimizers/schedules.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// The subgraphs compute in f32 (a cast, a division, exp/pow/cos, a multiply):
// a few f32 roundings, so 1e-5 relative; cosine's 1 + cos(pi p) near p = 1
// loses relative accuracy, covered by an absolute term of 1e-6 * lr0.
constexpr double kRelTol = 1e-5;
constexpr double kAbsTolPerLr0 = 1e-6;

void ExpectSchedule(const optimizers::Schedule& schedule, const std::vector<int64_t>& steps,
                    double lr0, double (*closed_form)(double)) {
  SCOPED_TRACE(optimizers::ScheduleName(schedule));
  const int64_t last = *std::max_element(steps.begin(), steps.end());
  auto rates = optimizers::ScheduleValues(schedule, last + 1);
  ASSERT_TRUE(rates.ok()) << rates.status();
  for (int64_t t : steps) {
    const double want = closed_form(double(t));
    EXPECT_NEAR((*rates)[t], want, kRelTol * std::abs(want) + kAbsTolPerLr0 * lr0) << "step " << t;
  }
}

const std::vector<int64_t> kSteps = {0, 1, 7, 10, 99, 250, 500, 999, 1000, 1001, 2500};

TEST(SchedulesTest, PowerScheduling) {
  // The chapter: lr0 / (1 + t/s)^c.
  ExpectSchedule(optimizers::PowerSchedule{.initial_learning_rate = 0.01, .decay_steps = 100, .power = 1},
                 kSteps, 0.01, [](double t) { return 0.01 / std::pow(1 + t / 100, 1.0); });
  ExpectSchedule(optimizers::PowerSchedule{.initial_learning_rate = 0.05, .decay_steps = 30, .power = 0.5},
                 kSteps, 0.05, [](double t) { return 0.05 / std::pow(1 + t / 30, 0.5); });
}

TEST(SchedulesTest, ExponentialScheduling) {
  // The chapter: lr0 * 0.1^(t/s); Keras ExponentialDecay with staircase floors t/s.
  ExpectSchedule(optimizers::ExponentialDecay{.initial_learning_rate = 0.01, .decay_steps = 400},
                 kSteps, 0.01, [](double t) { return 0.01 * std::pow(0.1, t / 400); });
  ExpectSchedule(optimizers::ExponentialDecay{.initial_learning_rate = 0.2, .decay_steps = 250,
                                              .decay_rate = 0.5, .staircase = true},
                 kSteps, 0.2, [](double t) { return 0.2 * std::pow(0.5, std::floor(t / 250)); });
}

TEST(SchedulesTest, PiecewiseConstantScheduling) {
  // Keras: values[0] for t <= 10, values[1] for 10 < t <= 1000, values[2] after.
  ExpectSchedule(optimizers::PiecewiseConstantDecay{.boundaries = {10, 1000}, .values = {0.1, 0.05, 0.001}},
                 kSteps, 0.1, [](double t) { return t <= 10 ? 0.1 : t <= 1000 ? 0.05 : 0.001; });
}

TEST(SchedulesTest, CosineDecay) {
  ExpectSchedule(optimizers::CosineDecay{.initial_learning_rate = 0.1, .decay_steps = 1000, .alpha = 0.1},
                 kSteps, 0.1, [](double t) {
                   const double p = std::min(t, 1000.0) / 1000;
                   return 0.1 * (0.9 * 0.5 * (1 + std::cos(std::numbers::pi * p)) + 0.1);
                 });
}

TEST(SchedulesTest, PolynomialDecay) {
  ExpectSchedule(optimizers::PolynomialDecay{.initial_learning_rate = 0.1, .decay_steps = 1000},
                 kSteps, 0.1, [](double t) {
                   const double p = std::min(t, 1000.0) / 1000;
                   return (0.1 - 0.0001) * (1 - p) + 0.0001;  // Keras defaults: end 1e-4, power 1
                 });
  ExpectSchedule(optimizers::PolynomialDecay{.initial_learning_rate = 0.1, .decay_steps = 1000,
                                             .end_learning_rate = 0.002, .power = 2.5},
                 kSteps, 0.1, [](double t) {
                   const double p = std::min(t, 1000.0) / 1000;
                   return (0.1 - 0.002) * std::pow(1 - p, 2.5) + 0.002;
                 });
}

// Keras PolynomialDecay(cycle=True) (learning_rate_schedule.py):
//   multiplier = 1 if t == 0 else ceil(t / T);  T' = T * multiplier
//   lr = (lr0 - end) * (1 - t / T')^power + end
// so the rate restarts from a new, lower slope after every multiple of T
// (and reaches end exactly at each multiple).
TEST(SchedulesTest, PolynomialDecayWithCycle) {
  const std::vector<int64_t> steps = {0, 1, 50, 99, 100, 101, 150, 200, 201, 250, 999, 1000, 1001, 2500};
  ExpectSchedule(optimizers::PolynomialDecay{.initial_learning_rate = 0.1, .decay_steps = 100,
                                             .end_learning_rate = 0.01, .power = 2, .cycle = true},
                 steps, 0.1, [](double t) {
                   const double T = 100 * (t == 0 ? 1 : std::ceil(t / 100));
                   return (0.1 - 0.01) * std::pow(1 - t / T, 2) + 0.01;
                 });
}

// Keras InverseTimeDecay: lr0 / (1 + rate * t / s), staircase: floor(t / s).
TEST(SchedulesTest, InverseTimeDecay) {
  EXPECT_EQ(optimizers::ScheduleName(optimizers::InverseTimeDecay{}), "inverse_time");
  ExpectSchedule(optimizers::InverseTimeDecay{.initial_learning_rate = 0.1, .decay_steps = 100, .decay_rate = 0.5},
                 kSteps, 0.1, [](double t) { return 0.1 / (1 + 0.5 * t / 100); });
  ExpectSchedule(optimizers::InverseTimeDecay{.initial_learning_rate = 0.1, .decay_steps = 100, .decay_rate = 0.5,
                                              .staircase = true},
                 kSteps, 0.1, [](double t) { return 0.1 / (1 + 0.5 * std::floor(t / 100)); });
}

// Keras 3 CosineDecay with warmup (W = 100 steps from lr0 = 0.01 to the
// target 0.1), then cosine decay of the target over T = 1000 with alpha 0.1:
//   t < W:  lr0 + (target - lr0) * t / W
//   t >= W: target * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t - W, T) / T)) + alpha)
TEST(SchedulesTest, CosineDecayWithWarmup) {
  const std::vector<int64_t> steps = {0, 1, 50, 99, 100, 101, 600, 1099, 1100, 1101, 2500};
  ExpectSchedule(optimizers::CosineDecay{.initial_learning_rate = 0.01, .decay_steps = 1000, .alpha = 0.1,
                                         .warmup_target = 0.1, .warmup_steps = 100},
                 steps, 0.1, [](double t) {
                   if (t < 100) return 0.01 + (0.1 - 0.01) * t / 100;
                   const double p = std::min(t - 100, 1000.0) / 1000;
                   return 0.1 * (0.9 * 0.5 * (1 + std::cos(std::numbers::pi * p)) + 0.1);
                 });
  // warmup_target without warmup steps: the decay starts from the target.
  ExpectSchedule(optimizers::CosineDecay{.initial_learning_rate = 0.01, .decay_steps = 1000, .warmup_target = 0.1},
                 kSteps, 0.1, [](double t) {
                   const double p = std::min(t, 1000.0) / 1000;
                   return 0.1 * 0.5 * (1 + std::cos(std::numbers::pi * p));
                 });
  EXPECT_FALSE(optimizers::CosineDecay{}.warmup_target.has_value());  // Keras's None: no warmup
}

// The chapter's OneCycleScheduler (3rd edition), replayed as it runs: one
// on_batch_begin per step.
struct ChapterOneCycle {
  int64_t iterations;
  double max_lr, start_lr, last_lr;
  int64_t last_iterations, half_iteration, iteration = 0;

  ChapterOneCycle(int64_t iterations, double max_lr)
      : iterations(iterations), max_lr(max_lr), start_lr(max_lr / 10), last_lr(start_lr / 1000),
        last_iterations(iterations / 10 + 1), half_iteration((iterations - last_iterations) / 2) {}
  double Interpolate(int64_t it1, int64_t it2, double lr1, double lr2) const {
    return (lr2 - lr1) * double(iteration - it1) / double(it2 - it1) + lr1;
  }
  double OnBatchBegin() {
    double lr;
    if (iteration < half_iteration) {
      lr = Interpolate(0, half_iteration, start_lr, max_lr);
    } else if (iteration < 2 * half_iteration) {
      lr = Interpolate(half_iteration, 2 * half_iteration, max_lr, start_lr);
    } else {
      lr = Interpolate(2 * half_iteration, iterations, start_lr, last_lr);
    }
    ++iteration;
    return lr;
  }
};

TEST(SchedulesTest, OneCycleFollowsTheChaptersCallbackStepByStep) {
  constexpr int64_t kTotal = 1000;
  auto rates = optimizers::ScheduleValues(
      optimizers::OneCycle{.total_steps = kTotal, .max_learning_rate = 0.05}, kTotal + 50);
  ASSERT_TRUE(rates.ok()) << rates.status();
  ChapterOneCycle chapter(kTotal, 0.05);
  EXPECT_EQ(chapter.half_iteration, 449);
  for (int64_t t = 0; t < kTotal; ++t) {
    const double want = chapter.OnBatchBegin();
    ASSERT_NEAR((*rates)[t], want, kRelTol * want) << "step " << t;
  }
  EXPECT_NEAR((*rates)[449], 0.05, kRelTol * 0.05) << "the peak, halfway through the two ramps";
  // After total_steps the rate stays at the last rate instead of extrapolating.
  for (int64_t t = kTotal; t < kTotal + 50; ++t) EXPECT_NEAR((*rates)[t], 0.005 / 1000, 1e-12);
}

TEST(SchedulesTest, OneCycleExplicitSettings) {
  constexpr int64_t kTotal = 300;
  auto rates = optimizers::ScheduleValues(
      optimizers::OneCycle{.total_steps = kTotal, .max_learning_rate = 1.0, .start_learning_rate = 0.2,
                           .last_steps = 100, .last_learning_rate = 0.01},
      kTotal + 1);
  ASSERT_TRUE(rates.ok()) << rates.status();
  // half = (300 - 100) / 2 = 100: 0.2 -> 1.0 over [0, 100], back to 0.2 at 200, 0.01 at 300.
  const std::vector<std::pair<int64_t, double>> expected = {
      {0, 0.2}, {50, 0.6}, {100, 1.0}, {150, 0.6}, {200, 0.2}, {250, 0.105}, {300, 0.01}};
  for (auto [t, want] : expected) EXPECT_NEAR((*rates)[t], want, kRelTol * want) << "step " << t;
}

TEST(SchedulesTest, InvalidSchedulesNameTheField) {
  struct Case {
    optimizers::Schedule schedule;
    std::string message;
  };
  const std::vector<Case> cases = {
      {optimizers::PowerSchedule{}, "decay_steps (s) must be > 0"},
      {optimizers::ExponentialDecay{.decay_steps = 10, .decay_rate = 0}, "decay_rate must be > 0"},
      {optimizers::PiecewiseConstantDecay{.boundaries = {5}, .values = {1}}, "one more value than boundaries"},
      {optimizers::PiecewiseConstantDecay{.boundaries = {5, 5}, .values = {1, 2, 3}}, "increase strictly"},
      {optimizers::CosineDecay{.decay_steps = 10, .alpha = 2}, "alpha must be in [0, 1]"},
      {optimizers::PolynomialDecay{.decay_steps = 0}, "decay_steps must be > 0"},
      {optimizers::CosineDecay{.decay_steps = 10, .warmup_target = -1}, "warmup_target must be > 0"},
      {optimizers::CosineDecay{.decay_steps = 10, .warmup_steps = 5}, "warmup_steps (5) needs warmup_target"},
      {optimizers::InverseTimeDecay{.decay_rate = 1}, "decay_steps must be > 0"},
      {optimizers::InverseTimeDecay{.decay_steps = 10, .decay_rate = -1}, "decay_rate must be >= 0"},
      {optimizers::OneCycle{.total_steps = 1000}, "max_learning_rate must be > 0"},
      {optimizers::OneCycle{.total_steps = 2, .max_learning_rate = 0.1}, "total_steps (2)"},
  };
  for (const Case& c : cases) {
    absl::Status s = optimizers::ValidateSchedule(c.schedule);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_THAT(s.message(), HasSubstr(optimizers::ScheduleName(c.schedule)));
    EXPECT_FALSE(optimizers::ScheduleValues(c.schedule, 3).ok());
  }
}

}  // namespace
}  // namespace gradflow
