#include "ops/hard_sigmoid.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

constexpr float kSlope = static_cast<float>(kHardSigmoidSlope);
constexpr float kOffset = static_cast<float>(kHardSigmoidOffset);
// Where the linear part meets 0 and 1: (1 - 0.5) / 0.2 = 2.5 (exact in f32).
constexpr float kKink = static_cast<float>((1 - kHardSigmoidOffset) / kHardSigmoidSlope);

// f32 inputs of one shape; the output has that shape.
absl::Status SameShapeF32(InferContext& ctx) {
  Shape out = ctx.shape(0);
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
    if (!ctx.shape(i).SameUpToBatch(out)) {
      return ctx.Error(absl::StrCat(ctx.Describe(i), " must have the shape of ", ctx.Describe(0)));
    }
    if (out.rank() > 0 && out[0] < 0) out[0] = ctx.shape(i)[0];
  }
  ctx.AddOutput(DType::kF32, out);
  return absl::OkStatus();
}

}  // namespace

// y = clip(z, 0, 1), z = 0.2 x + 0.5. dy/dx = 0.2 where 0 <= z <= 1, i.e.
// |x| <= 2.5, else 0. The boundaries are included as in TensorFlow's
// clip_by_value gradient, which Keras 2's hard_sigmoid is built on. The
// backward tests |x| <= 2.5 rather than the rounded z, whose f32 value at
// x = -2.5 depends on whether the compiler fuses the multiply-add.
GF_REGISTER_OP(OpDef{
    .name = "HardSigmoid",
    .num_inputs = 1,
    .infer = SameShapeF32,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* x = k.in<float>(0);
      float* y = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      return MakeKernel([=](const RunContext&) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) y[i] = std::clamp(kSlope * x[i] + kOffset, 0.0f, 1.0f);
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) {
      return std::vector<Output>{
          g.scope.graph().AddNode1(g.scope, "HardSigmoidGrad", {g.dy[0], g.x(0)})};
    },
    // Inside the linear part and on both flat parts, away from the kinks at +-2.5.
    .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = -2.4, .hi = 2.4}}},
                    {.inputs = {{.shape = {2, 3}, .lo = -5, .hi = -2.6}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 2.6, .hi = 5}}}},
});

// HardSigmoidGrad(dy, x) -> dx = 0.2 dy where |x| <= 2.5, else 0.
GF_REGISTER_OP(OpDef{
    .name = "HardSigmoidGrad",
    .num_inputs = 2,
    .infer = SameShapeF32,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* dy = k.in<float>(0);
      const float* x = k.in<float>(1);
      float* dx = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      return MakeKernel([=](const RunContext&) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) {
          dx[i] = (x[i] >= -kKink && x[i] <= kKink) ? kSlope * dy[i] : 0.0f;
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

Output HardSigmoid(const Scope& scope, Output x) {
  return scope.graph().AddNode1(scope, "HardSigmoid", {x});
}

}  // namespace gradflow::ops
