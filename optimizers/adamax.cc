// Adamax (Adam with the infinity norm). Keras 2.11+ (keras/optimizers/
// adamax.py, update_step; Keras 3 and the legacy tf.keras 2.x kernel
// ResourceApplyAdaMax compute the same), with t = step + 1:
//   m <- m + (g - m) * (1 - beta_1)            (slot "m")
//   u <- max(beta_2 * u, |g|)                  (slot "u")
//   w <- w - lr * m / ((1 - beta_1^t) * (u + epsilon))
// Defaults: lr 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7.

#include <cmath>

#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// Inputs per variable: var, m, u, grad; scalars: lr, step. Attrs beta_1, beta_2, epsilon.
struct AdamaxRule {
  struct Coefficients {
    float rate;  // lr / (1 - beta_1^t)
  };
  double beta_1, beta_2;
  float epsilon;
  explicit AdamaxRule(const Node& node) : AdamaxRule(internal::FromFieldAttrs<Adamax>(node)) {}
  explicit AdamaxRule(const Adamax& o) : beta_1(o.beta_1), beta_2(o.beta_2), epsilon(static_cast<float>(o.epsilon)) {}
  int num_slots() const { return 2; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32, DType::kI64}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const {
    const double t = static_cast<double>(s.i64(1) + 1);
    return {static_cast<float>(double(s.f32(0)) / (1 - std::pow(beta_1, t)))};
  }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict m = t[1];
    float* __restrict u = t[2];
    const float* __restrict g = t[3];
    const float one_minus_b1 = static_cast<float>(1 - beta_1), b2 = static_cast<float>(beta_2);
    const float rate = c.rate, eps = epsilon;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float mi = m[i] + (g[i] - m[i]) * one_minus_b1;
      const float ui = std::max(b2 * u[i], std::abs(g[i]));
      m[i] = mi;
      u[i] = ui;
      w[i] -= rate * mi / (ui + eps);
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<AdamaxRule>(
    "ApplyAdamax", internal::FieldAttrDefs<Adamax>()));

SlotLayout Adamax::KerasSlots() const {
  return {.groups = {{{"m", "momentum", "m"}, {"u", "norm", "v"}}}};
}

UpdateSpec Adamax::DescribeUpdate(const UpdateContext& u) const {
  const Adamax& opt = *this;
  return {"ApplyAdamax",
          {u.var, u.Slot("m"), u.Slot("u"), u.grad},
          {u.learning_rate, u.step},
          internal::FieldAttrs(opt)};
}

}  // namespace gradflow::optimizers
