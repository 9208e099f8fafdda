#include "ops/trig.h"

#include <cmath>

#include "core/status.h"
#include "ops/math.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {


absl::Status SameAsInput0(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// oneDNN's eltwise has no sin or cos: a loop over std::sin / std::cos (f32).
template <float (*kFn)(float)>
absl::StatusOr<std::unique_ptr<Kernel>> LoopKernel(const KernelContext& k) {
  const float* src = k.in<float>(0);
  float* dst = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  return MakeKernel([src, dst, n](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dst[i] = kFn(src[i]);
    return absl::OkStatus();
  });
}

float SinF(float x) { return std::sin(x); }
float CosF(float x) { return std::cos(x); }

std::vector<GradCheckCase> GradChecks() {
  return {{.inputs = {{.shape = {2, 3}, .lo = -3, .hi = 3}}}};
}

}  // namespace

// y = sin(x): dy/dx = cos(x), so dx = dy * cos(x).
GF_REGISTER_OP(OpDef{
    .name = "Sin",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = LoopKernel<SinF>,
    .grad = [](GradContext& g) { return std::vector<Output>{Mul(g.scope, g.dy[0], Cos(g.scope, g.x(0)))}; },
    .grad_checks = GradChecks(),
});

// y = cos(x): dy/dx = -sin(x), so dx = -dy * sin(x).
GF_REGISTER_OP(OpDef{
    .name = "Cos",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = LoopKernel<CosF>,
    .grad = [](GradContext& g) {
      return std::vector<Output>{Neg(g.scope, Mul(g.scope, g.dy[0], Sin(g.scope, g.x(0))))};
    },
    .grad_checks = GradChecks(),
});

Output Sin(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "Sin", {x}); }
Output Cos(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "Cos", {x}); }

}  // namespace gradflow::ops
