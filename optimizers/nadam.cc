// Nadam (Adam with Nesterov momentum and Dozat's momentum schedule), with
// t = step + 1:
//   mu_t = beta_1 * (1 - 0.5 * 0.96^(schedule_decay * t))   (momentum schedule)
//   prod_t = mu_1 * ... * mu_t                              (variable "optimizer/nadam_u_product")
//   m <- beta_1 * m + (1 - beta_1) * g                       (slot "m")
//   v <- beta_2 * v + (1 - beta_2) * g^2                     (slot "v")
//   m_bar = (1 - mu_t) * g / (1 - prod_t) + mu_{t+1} * m / (1 - prod_t * mu_{t+1})
//   w <- w - lr * m_bar / (sqrt(v / (1 - beta_2^t)) + epsilon)
// Keras 3 (keras/src/optimizers/nadam.py; also Keras 2.11+) computes
// u_t = beta_1 * (1 - 0.5 * 0.96^t): schedule_decay = 1, the default.
// tf.keras 2.x (keras/optimizer_v2/nadam.py, TF 2.0-2.10) had the same update
// with 0.96^(0.004 t): schedule_decay = kKeras2NadamScheduleDecay (its
// `schedule_decay` kwarg, the value of Keras 1 and of Dozat's paper).
// Defaults: lr 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7.
//
// prod_t is a variable (as Keras's `u_product`), so checkpoints restore it:
// every update node reads prod_{t-1} and multiplies in mu_t itself, and one
// node after all updates stores prod_t for the next step.

#include <cmath>

#include "absl/strings/str_cat.h"
#include "ops/op_util.h"
#include "optimizers/update_kernel.h"
#include "optimizers/updates.h"

namespace gradflow::optimizers {
namespace {

// The base of the momentum schedule (0.96 in Keras and Dozat's paper).
constexpr double kMomentumScheduleBase = 0.96;

double MomentumAt(double beta_1, double schedule_decay, double t) {
  return beta_1 * (1 - 0.5 * std::pow(kMomentumScheduleBase, schedule_decay * t));
}

// Inputs per variable: var, m, v, grad; scalars: lr, step, prod_{t-1}.
// Attrs beta_1, beta_2, epsilon, schedule_decay.
struct NadamRule {
  struct Coefficients {
    float lr;
    float grad_weight;      // (1 - mu_t) / (1 - prod_t)
    float momentum_weight;  // mu_{t+1} / (1 - prod_t * mu_{t+1})
    float v_correction;     // 1 / (1 - beta_2^t)
  };
  double beta_1, beta_2, schedule_decay;
  float epsilon;
  explicit NadamRule(const Node& node) : NadamRule(internal::FromFieldAttrs<Nadam>(node)) {}
  explicit NadamRule(const Nadam& o)
      : beta_1(o.beta_1), beta_2(o.beta_2), schedule_decay(o.schedule_decay), epsilon(static_cast<float>(o.epsilon)) {}
  int num_slots() const { return 2; }
  std::vector<DType> scalar_dtypes() const { return {DType::kF32, DType::kI64, DType::kF32}; }
  Coefficients Prepare(const internal::ScalarInputs& s) const {
    const double t = static_cast<double>(s.i64(1) + 1);
    const double mu_t = MomentumAt(beta_1, schedule_decay, t);
    const double mu_next = MomentumAt(beta_1, schedule_decay, t + 1);
    const double prod_t = double(s.f32(2)) * mu_t;
    return {s.f32(0), static_cast<float>((1 - mu_t) / (1 - prod_t)),
            static_cast<float>(mu_next / (1 - prod_t * mu_next)),
            static_cast<float>(1 / (1 - std::pow(beta_2, t)))};
  }
  void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const {
    float* __restrict w = t[0];
    float* __restrict m = t[1];
    float* __restrict v = t[2];
    const float* __restrict g = t[3];
    const float b1 = static_cast<float>(beta_1), one_minus_b1 = static_cast<float>(1 - beta_1);
    const float b2 = static_cast<float>(beta_2), one_minus_b2 = static_cast<float>(1 - beta_2);
    const float lr = c.lr, cg = c.grad_weight, cm = c.momentum_weight, vc = c.v_correction, eps = epsilon;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float mi = b1 * m[i] + one_minus_b1 * g[i];
      const float vi = b2 * v[i] + one_minus_b2 * (g[i] * g[i]);
      m[i] = mi;
      v[i] = vi;
      const float m_bar = cg * g[i] + cm * mi;
      w[i] -= lr * m_bar / (std::sqrt(vi * vc) + eps);
    }
  }
};

}  // namespace

GF_REGISTER_OP(internal::UpdateOpDef<NadamRule>(
    "ApplyNadam", internal::FieldAttrDefs<Nadam>()));

// prod <- prod * mu_{step+1}: inputs the product variable (f32 scalar) and
// the step (i64 scalar); attrs Nadam's fields. Runs after the
// step's updates, before the step counter moves.
GF_REGISTER_OP(OpDef{
    .name = "UpdateNadamMomentumProduct",
    .num_inputs = 2,
    .attrs = internal::FieldAttrDefs<Nadam>(),
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kI64));
      if (ctx.shape(0).rank() != 0 || ctx.shape(1).rank() != 0) {
        return ctx.Error("the momentum product and the step must be scalars");
      }
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      float* product = k.in<float>(0);
      const int64_t* step = k.in<int64_t>(1);
      const Nadam opt = internal::FromFieldAttrs<Nadam>(k.node);
      const double beta_1 = opt.beta_1, schedule_decay = opt.schedule_decay;
      return ops::MakeKernel([=](const RunContext&) {
        const double t = static_cast<double>(*step + 1);
        *product = static_cast<float>(double(*product) * MomentumAt(beta_1, schedule_decay, t));
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: writes a variable, produces no value",
    .mutates_input = 0,
});

SlotLayout Nadam::KerasSlots() const {
  return {.groups = {{{"m", "momentum", "m"}, {"v", "velocity", "v"}}},
          .scalars = {{kNadamMomentumProductName, "u_product"}}};
}

UpdateSpec Nadam::DescribeUpdate(const UpdateContext& u) const {
  const Nadam& opt = *this;
  Output product = GetOrCreateScalar(u.scope.graph(), kNadamMomentumProductName, DType::kF32, 1.0);
  return {"ApplyNadam",
          {u.var, u.Slot("m"), u.Slot("v"), u.grad},
          {u.learning_rate, u.step, product},
          internal::FieldAttrs(opt)};
}

Node* Nadam::AddAfterUpdates(Graph& graph, Output step, const std::vector<Node*>& updates) const {
  const Nadam& opt = *this;
  Output product = GetOrCreateScalar(graph, kNadamMomentumProductName, DType::kF32, 1.0);
  Node* node = graph.NewNode(graph, "UpdateNadamMomentumProduct", {product, step},
                             internal::FieldAttrs(opt),
                             "optimizer/update_nadam_u_product", updates);
  if (node == nullptr && graph.ok()) {
    graph.RecordError(absl::InternalError("Nadam: could not add the momentum-product update"));
  }
  return node;
}

}  // namespace gradflow::optimizers
