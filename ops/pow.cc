#include "ops/pow.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/math.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {


}  // namespace

// y = x^c: dy/dx = c * x^(c-1), so dx = dy * c * x^(c-1).
GF_REGISTER_OP(OpDef{
    .name = "Pow",
    .num_inputs = 1,
    .attrs = {RequiredAttr("exponent", AttrType::kFloat).Finite()},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* src = k.in<float>(0);
      float* dst = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      const float exponent = static_cast<float>(k.node.attr<double>("exponent"));
      return MakeKernel([src, dst, n, exponent](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) dst[i] = std::pow(src[i], exponent);
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) {
      const double c = g.node.attr<double>("exponent");
      return std::vector<Output>{Mul(g.scope, g.dy[0], Scale(g.scope, Pow(g.scope, g.x(0), c - 1), float(c)))};
    },
    .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = 0.5, .hi = 2}}, .attrs = {{"exponent", 2.5}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 0.5, .hi = 2}}, .attrs = {{"exponent", -1.5}}}},
});

Output Pow(const Scope& scope, Output x, double exponent) {
  return scope.graph().AddNode1(scope, "Pow", {x}, {{"exponent", exponent}});
}

}  // namespace gradflow::ops
