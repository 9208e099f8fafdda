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

}  // namespace

absl::Status PiecewiseConstantDecay::Check() const {
  if (values.size() != boundaries.size() + 1) {
    return Invalid(kName, absl::StrCat("needs one more value than boundaries, got ", boundaries.size(),
                                       " boundaries and ", values.size(), " values"));
  }
  for (size_t i = 1; i < boundaries.size(); ++i) {
    if (boundaries[i] <= boundaries[i - 1]) {
      return Invalid(kName, absl::StrCat("boundaries must increase strictly, but ", boundaries[i],
                                         " follows ", boundaries[i - 1]));
    }
  }
  for (double v : values) {
    if (!(v > 0 && std::isfinite(v))) return Invalid(kName, absl::StrCat("values must be > 0, got ", v));
  }
  return absl::OkStatus();
}

absl::Status OneCycle::Check() const {
  const OneCycleKnots k = Resolve(*this);
  if (k.half < 1 || total_steps <= 2 * k.half) {
    return Invalid(kName, absl::StrCat("total_steps (", total_steps, ") must leave at least one step "
                                       "for each half of the cycle and for the final phase (last_steps ",
                                       last_steps > 0 ? last_steps : total_steps / 10 + 1, ")"));
  }
  return absl::OkStatus();
}

absl::Status CosineDecay::Check() const {
  if (warmup_target && !(*warmup_target > 0 && std::isfinite(*warmup_target))) {
    return Invalid(kName, absl::StrCat("warmup_target must be > 0 (or null for no warmup), got ", *warmup_target));
  }
  if (!warmup_target && warmup_steps > 0) {
    return Invalid(kName, absl::StrCat("warmup_steps (", warmup_steps,
                                       ") needs warmup_target, the rate to warm up to; set it or set "
                                       "warmup_steps to 0"));
  }
  return absl::OkStatus();
}

namespace {

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

// peak * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, T) / T)) + alpha).
Output CosineDecayed(const Scope& sc, Output t, double steps, double alpha, double peak) {
  Output p = ops::Div(sc, ops::Minimum(sc, t, float(steps)), float(steps));
  Output cosine = ops::Cos(sc, ops::Mul(sc, p, float(std::numbers::pi)));
  Output decayed = ops::Add(sc, ops::Mul(sc, ops::Add(sc, cosine, 1.0f), float(0.5 * (1 - alpha))), float(alpha));
  return ops::Mul(sc, decayed, float(peak));
}

// Keras 3 picks the warmup line for t < W and the decay from the target
// after. Both pieces equal warmup_target at t = W, so the rate is
//   warm(min(t, W)) + decayed(max(t - W, 0)) - warmup_target,
// which is warm(t) before W (decayed(0) = target) and decayed(t - W) after.
Output Build(const Scope& sc, Output t, const CosineDecay& s) {
  if (!s.warmup_target) return CosineDecayed(sc, t, double(s.decay_steps), s.alpha, s.initial_learning_rate);
  const double target = *s.warmup_target, w = double(s.warmup_steps);
  if (s.warmup_steps == 0) return CosineDecayed(sc, t, double(s.decay_steps), s.alpha, target);
  Output after = ops::Maximum(sc, ops::Sub(sc, t, float(w)), 0.0f);
  Output decay = CosineDecayed(sc, after, double(s.decay_steps), s.alpha, target);
  // lr0 + (target - lr0) * min(t, W) / W
  Output warm = ops::Add(sc, ops::Mul(sc, ops::Minimum(sc, t, float(w)), float((target - s.initial_learning_rate) / w)),
                         float(s.initial_learning_rate));
  return ops::Sub(sc, ops::Add(sc, warm, decay), float(target));
}

// With cycle, T' = T * max(ceil(t / T), 1): Keras's multiplier is 1 at t = 0.
Output Build(const Scope& sc, Output t, const PolynomialDecay& s) {
  const float steps = float(s.decay_steps);
  Output p;
  if (s.cycle) {
    // ceil(u) = -floor(-u)
    Output cycles = ops::Neg(sc, ops::Floor(sc, ops::Neg(sc, ops::Div(sc, t, steps))));
    p = ops::Div(sc, t, ops::Mul(sc, ops::Maximum(sc, cycles, 1.0f), steps));
  } else {
    p = ops::Div(sc, ops::Minimum(sc, t, steps), steps);
  }
  Output remaining = ops::Pow(sc, ops::Sub(sc, 1.0f, p), s.power);  // (1 - p)^power
  return ops::Add(sc, ops::Mul(sc, remaining, float(s.initial_learning_rate - s.end_learning_rate)),
                  float(s.end_learning_rate));
}

Output Build(const Scope& sc, Output t, const InverseTimeDecay& s) {
  Output p = ops::Div(sc, t, float(s.decay_steps));
  if (s.staircase) p = ops::Floor(sc, p);
  Output denominator = ops::Add(sc, ops::Mul(sc, p, float(s.decay_rate)), 1.0f);  // 1 + rate * p
  return ops::Div(sc, float(s.initial_learning_rate), denominator);
}

Output Build(const Scope& sc, Output t, const OneCycle& s) {
  OneCycleKnots k = Resolve(s);
  return ops::PiecewiseLinear(sc, t, {0.0, double(k.half), double(2 * k.half), double(k.total)},
                              {k.start, k.max, k.start, k.last});
}

}  // namespace

std::string ScheduleName(const Schedule& schedule) { return VariantName(schedule); }

absl::Status ValidateSchedule(const Schedule& schedule) {
  return std::visit(
      [](const auto& s) { return ValidateFields(s, absl::StrCat("learning-rate schedule '", s.kName, "':")); },
      schedule);
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
    session.variables().MarkWritten();  // so the plan does not serve the last step's rate
    GF_RETURN_IF_ERROR(plan.Run({}, &fetched));
    rates.push_back(fetched[0].data<float>()[0]);
  }
  return rates;
}

}  // namespace gradflow::optimizers
