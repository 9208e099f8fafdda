#include "optimizers/schedules.h"

#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "graph/session.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/piecewise.h"
#include "ops/pow.h"
#include "ops/trig.h"

namespace gradflow::optimizers {
namespace {

absl::Status Invalid(const std::string& schedule, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("learning-rate schedule '", schedule, "': ", message));
}

bool PositiveFinite(double x) { return x > 0 && std::isfinite(x); }

// The chapter's OneCycleScheduler defaults, resolved.
struct OneCycleKnots {
  double start, max, last;
  int64_t half, total;
};

OneCycleKnots Resolve(const OneCycle& s) {
  OneCycleKnots k;
  k.total = s.total_steps;
  k.max = s.max_learning_rate;
  k.start = s.start_learning_rate > 0 ? s.start_learning_rate : s.max_learning_rate / 10;
  const int64_t last_steps = s.last_steps > 0 ? s.last_steps : s.total_steps / 10 + 1;
  k.half = (s.total_steps - last_steps) / 2;
  k.last = s.last_learning_rate > 0 ? s.last_learning_rate : k.start / 1000;
  return k;
}

absl::Status Validate(const PowerSchedule& s) {
  if (!PositiveFinite(s.initial_learning_rate)) {
    return Invalid("power", absl::StrCat("initial_learning_rate must be > 0, got ", s.initial_learning_rate));
  }
  if (!PositiveFinite(s.decay_steps)) {
    return Invalid("power", absl::StrCat("decay_steps (s) must be > 0, got ", s.decay_steps));
  }
  if (!(s.power >= 0 && std::isfinite(s.power))) {
    return Invalid("power", absl::StrCat("power (c) must be >= 0, got ", s.power));
  }
  return absl::OkStatus();
}

absl::Status Validate(const ExponentialDecay& s) {
  if (!PositiveFinite(s.initial_learning_rate)) {
    return Invalid("exponential", absl::StrCat("initial_learning_rate must be > 0, got ", s.initial_learning_rate));
  }
  if (!PositiveFinite(s.decay_steps)) {
    return Invalid("exponential", absl::StrCat("decay_steps must be > 0, got ", s.decay_steps));
  }
  if (!PositiveFinite(s.decay_rate)) {
    return Invalid("exponential", absl::StrCat("decay_rate must be > 0, got ", s.decay_rate));
  }
  return absl::OkStatus();
}

absl::Status Validate(const PiecewiseConstantDecay& s) {
  if (s.values.size() != s.boundaries.size() + 1) {
    return Invalid("piecewise_constant",
                   absl::StrCat("needs one more value than boundaries, got ", s.boundaries.size(),
                                " boundaries and ", s.values.size(), " values"));
  }
  for (size_t i = 1; i < s.boundaries.size(); ++i) {
    if (s.boundaries[i] <= s.boundaries[i - 1]) {
      return Invalid("piecewise_constant", absl::StrCat("boundaries must increase strictly, but ",
                                                        s.boundaries[i], " follows ", s.boundaries[i - 1]));
    }
  }
  for (double v : s.values) {
    if (!PositiveFinite(v)) return Invalid("piecewise_constant", absl::StrCat("values must be > 0, got ", v));
  }
  return absl::OkStatus();
}

absl::Status Validate(const CosineDecay& s) {
  if (!PositiveFinite(s.initial_learning_rate)) {
    return Invalid("cosine", absl::StrCat("initial_learning_rate must be > 0, got ", s.initial_learning_rate));
  }
  if (s.decay_steps <= 0) return Invalid("cosine", absl::StrCat("decay_steps must be > 0, got ", s.decay_steps));
  if (!(s.alpha >= 0 && s.alpha <= 1)) {
    return Invalid("cosine", absl::StrCat("alpha must be in [0, 1], got ", s.alpha));
  }
  return absl::OkStatus();
}

absl::Status Validate(const PolynomialDecay& s) {
  if (!PositiveFinite(s.initial_learning_rate)) {
    return Invalid("polynomial", absl::StrCat("initial_learning_rate must be > 0, got ", s.initial_learning_rate));
  }
  if (s.decay_steps <= 0) {
    return Invalid("polynomial", absl::StrCat("decay_steps must be > 0, got ", s.decay_steps));
  }
  if (!(s.end_learning_rate >= 0 && std::isfinite(s.end_learning_rate))) {
    return Invalid("polynomial", absl::StrCat("end_learning_rate must be >= 0, got ", s.end_learning_rate));
  }
  if (!PositiveFinite(s.power)) return Invalid("polynomial", absl::StrCat("power must be > 0, got ", s.power));
  return absl::OkStatus();
}

absl::Status Validate(const OneCycle& s) {
  if (!PositiveFinite(s.max_learning_rate)) {
    return Invalid("1cycle", absl::StrCat("max_learning_rate must be > 0, got ", s.max_learning_rate));
  }
  if (!(s.start_learning_rate >= 0 && std::isfinite(s.start_learning_rate)) ||
      !(s.last_learning_rate >= 0 && std::isfinite(s.last_learning_rate)) || s.last_steps < 0) {
    return Invalid("1cycle", "start_learning_rate, last_learning_rate and last_steps must be >= 0 (0: default)");
  }
  OneCycleKnots k = Resolve(s);
  if (k.half < 1 || s.total_steps <= 2 * k.half) {
    return Invalid("1cycle", absl::StrCat("total_steps (", s.total_steps, ") must leave at least one step "
                                          "for each half of the cycle and for the final phase (last_steps ",
                                          s.last_steps > 0 ? s.last_steps : s.total_steps / 10 + 1, ")"));
  }
  return absl::OkStatus();
}

// Each builder gets t = f32(step) and returns the rate.

Output Build(const Scope& sc, Output t, const PowerSchedule& s) {
  Output base = ops::Add(sc, ops::Div(sc, t, float(s.decay_steps)), 1.0f);  // 1 + t/s
  return ops::Mul(sc, ops::Pow(sc, base, -s.power), float(s.initial_learning_rate));
}

Output Build(const Scope& sc, Output t, const ExponentialDecay& s) {
  Output p = ops::Div(sc, t, float(s.decay_steps));
  if (s.staircase) p = ops::Floor(sc, p);
  // decay_rate^p = exp(p * ln(decay_rate))
  Output decay = ops::Exp(sc, ops::Mul(sc, p, float(std::log(s.decay_rate))));
  return ops::Mul(sc, decay, float(s.initial_learning_rate));
}

Output Build(const Scope& sc, Output t, const PiecewiseConstantDecay& s) {
  std::vector<double> boundaries(s.boundaries.begin(), s.boundaries.end());
  return ops::PiecewiseConstant(sc, t, boundaries, s.values);
}

Output Build(const Scope& sc, Output t, const CosineDecay& s) {
  const float steps = float(s.decay_steps);
  Output p = ops::Div(sc, ops::Minimum(sc, t, steps), steps);
  Output cosine = ops::Cos(sc, ops::Mul(sc, p, float(std::numbers::pi)));
  // (1 - alpha) * 0.5 * (1 + cos) + alpha
  Output decayed = ops::Add(sc, ops::Mul(sc, ops::Add(sc, cosine, 1.0f), float(0.5 * (1 - s.alpha))),
                            float(s.alpha));
  return ops::Mul(sc, decayed, float(s.initial_learning_rate));
}

Output Build(const Scope& sc, Output t, const PolynomialDecay& s) {
  const float steps = float(s.decay_steps);
  Output p = ops::Div(sc, ops::Minimum(sc, t, steps), steps);
  Output remaining = ops::Pow(sc, ops::Sub(sc, 1.0f, p), s.power);  // (1 - p)^power
  return ops::Add(sc, ops::Mul(sc, remaining, float(s.initial_learning_rate - s.end_learning_rate)),
                  float(s.end_learning_rate));
}

Output Build(const Scope& sc, Output t, const OneCycle& s) {
  OneCycleKnots k = Resolve(s);
  return ops::PiecewiseLinear(sc, t, {0.0, double(k.half), double(2 * k.half), double(k.total)},
                              {k.start, k.max, k.start, k.last});
}

}  // namespace

std::string ScheduleName(const Schedule& schedule) { return VariantName(schedule); }

absl::Status ValidateSchedule(const Schedule& schedule) {
  return std::visit([](const auto& s) { return Validate(s); }, schedule);
}

Output BuildSchedule(const Scope& scope, Output step, const Schedule& schedule) {
  Graph& g = scope.graph();
  if (!step.valid()) return {};
  if (absl::Status s = ValidateSchedule(schedule); !s.ok()) {
    g.RecordError(s);
    return {};
  }
  if (step.dtype() != DType::kI64 || step.shape().rank() != 0) {
    g.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "learning-rate schedule: the step '", step.name(), "' must be an i64 scalar, got ",
        step.type().ToString())));
    return {};
  }
  Output t = ops::Cast(scope, step, DType::kF32);
  Output rate = std::visit([&](const auto& s) { return Build(scope, t, s); }, schedule);
  if (!rate.valid()) return {};
  return g.AddNode1(scope, "Identity", {rate}, {}, "learning_rate");
}

absl::StatusOr<std::vector<float>> ScheduleValues(const Schedule& schedule, int64_t num_steps) {
  GF_RETURN_IF_ERROR(ValidateSchedule(schedule));
  Graph g;
  Output step = ops::Variable(g, "step", Shape{}, Zeros(), /*trainable=*/false, DType::kI64);
  Output rate = BuildSchedule(g.Scope("schedule"), step, schedule);
  GF_RETURN_IF_ERROR(g.status());
  Session session(g);
  GF_ASSIGN_OR_RETURN(Plan plan, session.Compile({rate}));
  GF_ASSIGN_OR_RETURN(Tensor counter, session.variables().Get("step"));
  std::vector<float> rates;
  rates.reserve(num_steps);
  std::vector<Tensor> fetched;
  for (int64_t t = 0; t < num_steps; ++t) {
    counter.data<int64_t>()[0] = t;  // the live tensor the plan reads
    GF_RETURN_IF_ERROR(plan.Run({}, &fetched));
    rates.push_back(fetched[0].data<float>()[0]);
  }
  return rates;
}

}  // namespace gradflow::optimizers
