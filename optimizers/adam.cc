// Adam (optionally AMSGrad) and AdamW. Keras 2.11+ (keras/optimizers/adam.py
// and adamw.py, update_step; Keras 3 is the same), with t = step + 1 the
// number of this update:
//   alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)      (bias correction)
//   m <- m + (g - m) * (1 - beta_1)                       (slot "m")
//   v <- v + (g^2 - v) * (1 - beta_2)                     (slot "v")
//   amsgrad: vhat <- max(vhat, v); v' = vhat               (slot "vhat")
//   w <- w - m * alpha / (sqrt(v') + epsilon)              (epsilon outside the root)
// AdamW first decays the weights, decoupled from the gradient (Keras 2.11+
// Optimizer._apply_weight_decay, run before update_step, on every variable:
// nothing is excluded by default):
//   w <- w - w * weight_decay * lr
// Defaults: lr 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7, amsgrad false;
// AdamW weight_decay 0.004.

#include <cmath>

#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// Inputs per variable: var, m, v, [vhat], grad; scalars: lr, step. Attrs
// beta_1, beta_2, epsilon, amsgrad, weight_decay (0: plain Adam).
struct AdamRule {
  struct Coefficients {
    float alpha;  // lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    float decay;  // lr * weight_decay
  };
  double beta_1, beta_2, weight_decay;
  float epsilon;
  bool amsgrad;
  explicit AdamRule(const Node& node) : AdamRule(internal::FromFieldAttrs<AdamW>(node)) {}
  explicit AdamRule(const AdamW& o)
      : beta_1(o.beta_1),
        beta_2(o.beta_2),
        weight_decay(o.weight_decay),
        epsilon(static_cast<float>(o.epsilon)),
        amsgrad(o.amsgrad) {}
  int num_slots() const { return amsgrad ? 3 : 2; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32, DType::kI64}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const {
    const double lr = s.f32(0);
    const double t = static_cast<double>(s.i64(1) + 1);
    return {static_cast<float>(lr * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t))),
            static_cast<float>(lr * weight_decay)};
  }

  template <bool kAmsgrad, bool kDecay>
  void Run(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict m = t[1];
    float* __restrict v = t[2];
    float* __restrict vhat = kAmsgrad ? t[3] : nullptr;
    const float* __restrict g = t[kAmsgrad ? 4 : 3];
    const float one_minus_b1 = static_cast<float>(1 - beta_1), one_minus_b2 = static_cast<float>(1 - beta_2);
    const float alpha = c.alpha, decay = c.decay, eps = epsilon;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      float wi = w[i];
      if constexpr (kDecay) wi -= wi * decay;
      const float mi = m[i] + (g[i] - m[i]) * one_minus_b1;
      float vi = v[i] + (g[i] * g[i] - v[i]) * one_minus_b2;
      m[i] = mi;
      v[i] = vi;
      if constexpr (kAmsgrad) {
        vi = std::max(vhat[i], vi);
        vhat[i] = vi;
      }
      w[i] = wi - mi * alpha / (std::sqrt(vi) + eps);
    }
  }

  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    const bool decay = weight_decay != 0;
    if (amsgrad) {
      decay ? Run<true, true>(c, t, begin, end) : Run<true, false>(c, t, begin, end);
    } else {
      decay ? Run<false, true>(c, t, begin, end) : Run<false, false>(c, t, begin, end);
    }
  }
};

// Adam is AdamW with weight_decay 0: one op, whose attrs are AdamW's fields.
UpdateSpec AdamSpec(const UpdateContext& u, const AdamW& opt) {
  UpdateSpec spec{"ApplyAdam", {u.var, u.Slot("m"), u.Slot("v")}, {u.learning_rate, u.step},
                  internal::FieldAttrs(opt)};
  if (opt.amsgrad) spec.tensors.push_back(u.Slot("vhat"));
  spec.tensors.push_back(u.grad);
  return spec;
}

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<AdamRule>(
    "ApplyAdam", internal::FieldAttrDefs<AdamW>()));

// Shared by Adam and AdamW.
static SlotLayout AdamSlots(bool amsgrad) {
  SlotLayout layout{.groups = {{{"m", "momentum", "m"}, {"v", "velocity", "v"}}}};
  if (amsgrad) layout.groups.push_back({{"vhat", "velocity_hat", "vhat"}});
  return layout;
}

SlotLayout Adam::KerasSlots() const { return AdamSlots(amsgrad); }
SlotLayout AdamW::KerasSlots() const { return AdamSlots(amsgrad); }

UpdateSpec Adam::DescribeUpdate(const UpdateContext& u) const {
  return AdamSpec(u, AdamW{.learning_rate = learning_rate, .weight_decay = 0, .beta_1 = beta_1, .beta_2 = beta_2,
                           .epsilon = epsilon, .amsgrad = amsgrad});
}

UpdateSpec AdamW::DescribeUpdate(const UpdateContext& u) const { return AdamSpec(u, *this); }

}  // namespace gradflow::optimizers
