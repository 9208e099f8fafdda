// Adagrad. Keras 2.11+ (keras/optimizers/adagrad.py, update_step; Keras 3 is
// the same):
//   acc <- acc + g^2                       (slot "accumulator", starts at
//                                           initial_accumulator_value = 0.1)
//   w   <- w - lr * g / sqrt(acc + epsilon)
// tf.keras <= 2.10 (legacy optimizer_v2) put epsilon outside the root,
// lr * g / (sqrt(acc) + epsilon); with epsilon = 1e-7 and acc >= 0.1 the
// two differ by < 1e-6 relative.

#include <cmath>

#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// Inputs per variable: var, accumulator, grad; scalar: lr. Attr epsilon.
struct AdagradRule {
  struct Coefficients {
    float lr;
  };
  float epsilon;
  explicit AdagradRule(const Node& node)
      : epsilon(static_cast<float>(internal::FromFieldAttrs<Adagrad>(node).epsilon)) {}
  int num_slots() const { return 1; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const { return {s.f32(0)}; }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict acc = t[1];
    const float* __restrict g = t[2];
    const float rate = c.lr, eps = epsilon;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float a = acc[i] + g[i] * g[i];
      acc[i] = a;
      w[i] -= rate * g[i] / std::sqrt(a + eps);
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<AdagradRule>("ApplyAdagrad",
                                                  internal::FieldAttrDefs<Adagrad>()));

SlotLayout Adagrad::KerasSlots() const {
  return {.groups = {{{"accumulator", "accumulator", "accumulator"}}}};
}

UpdateSpec Adagrad::DescribeUpdate(const UpdateContext& u) const {
  const Adagrad& opt = *this;
  return {"ApplyAdagrad",
          {u.var, u.Slot("accumulator", Constant(opt.initial_accumulator_value)), u.grad},
          {u.learning_rate},
          internal::FieldAttrs(opt)};
}

}  // namespace gradflow::optimizers
