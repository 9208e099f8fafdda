// SGD with optional (Nesterov) momentum as update ops that write the variable.

#include "optimizers/updates.h"

#include "absl/strings/str_cat.h"
#include "ops/array.h"
#include "ops/op_util.h"

namespace gradflow::optimizers {
namespace {

absl::Status CheckVarGradLr(InferContext& ctx, int num_slots) {
  const Shape& var = ctx.shape(0);
  for (int i = 1; i <= num_slots + 1; ++i) {  // slots, then the gradient
    if (ctx.shape(i) != var) {
      return ctx.Error(absl::StrCat(ctx.Describe(i), " must match the variable ", ctx.Describe(0)));
    }
  }
  if (ctx.shape(num_slots + 2).rank() != 0) return ctx.Error("the learning rate must be a scalar");
  return absl::OkStatus();  // no outputs: the op only writes its variable
}

}  // namespace

// w -= lr * g
GF_REGISTER_OP(OpDef{
    .name = "ApplySGD",
    .num_inputs = 3,  // var, grad, lr
    .infer = [](InferContext& ctx) { return CheckVarGradLr(ctx, 0); },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      float* w = k.in<float>(0);
      const float* g = k.in<float>(1);
      const float* lr = k.in<float>(2);
      int64_t n = k.in_shape(0).NumElements();
      return ops::MakeKernel([=](const RunContext&) {
        const float rate = *lr;
#pragma omp parallel for simd schedule(static) if (n > 32768)
        for (int64_t i = 0; i < n; ++i) w[i] -= rate * g[i];
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: writes a variable, produces no value",
    .mutates_input = 0,
});

// v = momentum * v - lr * g; w += v, or with Nesterov w += momentum * v - lr * g.
GF_REGISTER_OP(OpDef{
    .name = "ApplyMomentum",
    .num_inputs = 4,  // var, velocity, grad, lr
    .infer = [](InferContext& ctx) { return CheckVarGradLr(ctx, 1); },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      float* w = k.in<float>(0);
      float* v = k.in<float>(1);
      const float* g = k.in<float>(2);
      const float* lr = k.in<float>(3);
      const float momentum = static_cast<float>(k.node.attr<double>("momentum"));
      const bool nesterov = k.node.attr<bool>("nesterov");
      int64_t n = k.in_shape(0).NumElements();
      return ops::MakeKernel([=](const RunContext&) {
        const float rate = *lr;
#pragma omp parallel for simd schedule(static) if (n > 32768)
        for (int64_t i = 0; i < n; ++i) {
          float vi = momentum * v[i] - rate * g[i];
          v[i] = vi;
          w[i] += nesterov ? momentum * vi - rate * g[i] : vi;
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: writes a variable, produces no value",
    .mutates_input = 0,
});

Node* AddUpdate(const SGD& opt, const UpdateContext& u) {
  Graph& g = u.scope.graph();
  if (opt.momentum == 0) return g.NewNode(u.scope, "ApplySGD", {u.var, u.grad, u.learning_rate});
  return g.NewNode(u.scope, "ApplyMomentum", {u.var, u.Slot("momentum"), u.grad, u.learning_rate},
                   {{"momentum", opt.momentum}, {"nesterov", opt.nesterov}});
}

}  // namespace gradflow::optimizers
