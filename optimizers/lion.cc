// Lion. Keras 3 (keras/src/optimizers/lion.py, update_step):
//   c <- beta_1 * m + (1 - beta_1) * g
//   w <- w - lr * sign(c)                      (sign(0) = 0)
//   m <- beta_2 * m + (1 - beta_2) * g         (slot "momentum", zeros)
// Defaults: lr 0.001, beta_1 0.9, beta_2 0.99 (optimizers.h).

#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// Inputs per variable: var, momentum, grad; scalar: lr. Attrs beta_1, beta_2.
struct LionRule {
  struct Coefficients {
    float lr;
  };
  float beta_1, beta_2;
  explicit LionRule(const Node& node) : LionRule(internal::FromFieldAttrs<Lion>(node)) {}
  explicit LionRule(const Lion& o) : beta_1(static_cast<float>(o.beta_1)), beta_2(static_cast<float>(o.beta_2)) {}
  int num_slots() const { return 1; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const { return {s.f32(0)}; }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict m = t[1];
    const float* __restrict g = t[2];
    const float b1 = beta_1, b2 = beta_2, rate = c.lr;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float ci = b1 * m[i] + (1 - b1) * g[i];
      const float sign = static_cast<float>((ci > 0) - (ci < 0));
      w[i] -= rate * (ci != ci ? ci : sign);  // a NaN update stays NaN
      m[i] = b2 * m[i] + (1 - b2) * g[i];
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<LionRule>(
    "ApplyLion", internal::FieldAttrDefs<Lion>()));

SlotLayout Lion::KerasSlots() const { return {.groups = {{{"momentum", "momentum", "momentum"}}}}; }

UpdateSpec Lion::DescribeUpdate(const UpdateContext& u) const {
  return {"ApplyLion", {u.var, u.Slot("momentum"), u.grad}, {u.learning_rate}, internal::FieldAttrs(*this)};
}

}  // namespace gradflow::optimizers
