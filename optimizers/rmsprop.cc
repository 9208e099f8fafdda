// RMSprop, plain or centered, with optional momentum. Keras 2.11+
// (keras/optimizers/rmsprop.py, update_step; Keras 3 and the legacy tf.keras
// 2.x kernel ResourceApplyRMSProp compute the same):
//   vel <- rho * vel + (1 - rho) * g^2            (slot "velocity")
//   centered:  avg <- rho * avg + (1 - rho) * g    (slot "average_gradient")
//              denominator = vel - avg^2 + epsilon
//   otherwise: denominator = vel + epsilon
//   increment = g * lr / sqrt(denominator)
//   momentum > 0: mom <- momentum * mom + increment; w <- w - mom   (slot "momentum")
//   otherwise:    w <- w - increment
// Defaults: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7, centered false.

#include <cmath>

#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// Inputs per variable: var, velocity, [momentum], [average_gradient], grad;
// scalar: lr. Attrs rho, momentum, epsilon, centered.
struct RmspropRule {
  struct Coefficients {
    float lr;
  };
  float rho, momentum, epsilon;
  bool centered;
  explicit RmspropRule(const Node& node) : RmspropRule(internal::FromFieldAttrs<RMSprop>(node)) {}
  explicit RmspropRule(const RMSprop& o)
      : rho(static_cast<float>(o.rho)),
        momentum(static_cast<float>(o.momentum)),
        epsilon(static_cast<float>(o.epsilon)),
        centered(o.centered) {}
  int num_slots() const { return 1 + (momentum > 0) + centered; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const { return {s.f32(0)}; }

  template <bool kMomentum, bool kCentered>
  void Run(float rate, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict vel = t[1];
    float* __restrict mom = kMomentum ? t[2] : nullptr;
    float* __restrict avg = kCentered ? t[2 + kMomentum] : nullptr;
    const float* __restrict g = t[2 + kMomentum + kCentered];
    const float r = rho, one_minus_r = 1.0f - rho, mu = momentum, eps = epsilon;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float v = r * vel[i] + one_minus_r * (g[i] * g[i]);
      vel[i] = v;
      float denominator = v + eps;
      if constexpr (kCentered) {
        const float a = r * avg[i] + one_minus_r * g[i];
        avg[i] = a;
        denominator = v - a * a + eps;
      }
      const float increment = g[i] * rate / std::sqrt(denominator);
      if constexpr (kMomentum) {
        const float m = mu * mom[i] + increment;
        mom[i] = m;
        w[i] -= m;
      } else {
        w[i] -= increment;
      }
    }
  }

  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    if (momentum > 0) {
      centered ? Run<true, true>(c.lr, t, begin, end) : Run<true, false>(c.lr, t, begin, end);
    } else {
      centered ? Run<false, true>(c.lr, t, begin, end) : Run<false, false>(c.lr, t, begin, end);
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<RmspropRule>(
    "ApplyRMSprop", internal::FieldAttrDefs<RMSprop>()));

SlotLayout RMSprop::KerasSlots() const {
  SlotLayout layout{.groups = {{{"velocity", "velocity", "rms"}}}};
  if (momentum > 0) layout.groups.push_back({{"momentum", "momentum", "momentum"}});
  if (centered) layout.groups.push_back({{"average_gradient", "average_gradient", "mg"}});
  return layout;
}

UpdateSpec RMSprop::DescribeUpdate(const UpdateContext& u) const {
  const RMSprop& opt = *this;
  UpdateSpec spec{"ApplyRMSprop", {u.var, u.Slot("velocity")}, {u.learning_rate},
                  internal::FieldAttrs(opt)};
  if (opt.momentum > 0) spec.tensors.push_back(u.Slot("momentum"));
  if (opt.centered) spec.tensors.push_back(u.Slot("average_gradient"));
  spec.tensors.push_back(u.grad);
  return spec;
}

}  // namespace gradflow::optimizers
