// SGD with optional (Nesterov) momentum. Keras's formulas (keras/optimizers/
// sgd.py, update_step, Keras 2.11+; the same rule as tf.keras 2.x's legacy
// SGD and Keras 3):
//   momentum == 0:  w <- w - lr * g
//   momentum  > 0:  v <- momentum * v - lr * g          (slot "momentum", zeros)
//                   w <- w + v                           (classic)
//                   w <- w + momentum * v - lr * g       (nesterov)

#include "absl/strings/str_cat.h"
#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// w -= lr * g. Inputs per variable: var, grad; scalar: lr.
struct SgdRule {
  struct Coefficients {
    float lr;
  };
  explicit SgdRule(const Node&) {}
  int num_slots() const { return 0; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const { return {s.f32(0)}; }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    const float* __restrict g = t[1];
    const float rate = c.lr;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) w[i] -= rate * g[i];
  }
};

// Inputs per variable: var, velocity, grad; scalar: lr. Attrs momentum, nesterov.
struct MomentumRule {
  struct Coefficients {
    float lr;
  };
  float momentum;
  bool nesterov;
  explicit MomentumRule(const Node& node) : MomentumRule(internal::FromFieldAttrs<SGD>(node)) {}
  explicit MomentumRule(const SGD& o) : momentum(static_cast<float>(o.momentum)), nesterov(o.nesterov) {}
  int num_slots() const { return 1; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const { return {s.f32(0)}; }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict v = t[1];
    const float* __restrict g = t[2];
    const float rate = c.lr, mu = momentum;
    if (nesterov) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const float vi = mu * v[i] - rate * g[i];
        v[i] = vi;
        w[i] += mu * vi - rate * g[i];
      }
    } else {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const float vi = mu * v[i] - rate * g[i];
        v[i] = vi;
        w[i] += vi;
      }
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<SgdRule>("ApplySGD"));
GF_REGISTER_OP(internal::UpdateOpDef<MomentumRule>(
    "ApplyMomentum", internal::FieldAttrDefs<SGD>()));

SlotLayout SGD::KerasSlots() const {
  if (momentum == 0) return {};
  return {.groups = {{{"momentum", "momentum", "momentum"}}}};
}

UpdateSpec SGD::DescribeUpdate(const UpdateContext& u) const {
  const SGD& opt = *this;
  if (opt.momentum == 0) return {"ApplySGD", {u.var, u.grad}, {u.learning_rate}, {}};
  return {"ApplyMomentum",
          {u.var, u.Slot("momentum"), u.grad},
          {u.learning_rate},
          internal::FieldAttrs(opt)};
}

}  // namespace gradflow::optimizers
