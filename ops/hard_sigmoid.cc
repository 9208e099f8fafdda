#include "ops/hard_sigmoid.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// The two forms. Keras 3's relu6(x + 3) / 6 has slope 1/6 and reaches 0 and 1
// at -3 and 3; its gradient is TensorFlow's Relu6Grad, 1 on the open interval
// 0 < x + 3 < 6 only. tf.keras 2.x's clip(0.2 x + 0.5, 0, 1) reaches them at
// (1 - 0.5) / 0.2 = 2.5 (exact in f32); TensorFlow's clip_by_value gradient
// passes at the boundaries too (a closed interval).
struct Form {
  bool keras2;
  float slope, kink;
  float operator()(float x) const {
    return keras2 ? std::clamp(slope * x + static_cast<float>(kHardSigmoidOffset), 0.0f, 1.0f)
                  : std::clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f;
  }
  // dy/dx from x (not from the rounded y, whose f32 value at a kink depends
  // on whether the compiler fuses the multiply-add).
  float Derivative(float x) const {
    const bool inside = keras2 ? (x >= -kink && x <= kink) : (x > -kink && x < kink);
    return inside ? slope : 0.0f;
  }
};
Form FormOf(const Node& node) {
  if (node.attr<bool>("keras2")) {
    constexpr float kSlope = static_cast<float>(kKeras2HardSigmoidSlope);
    return {true, kSlope, static_cast<float>((1 - kHardSigmoidOffset) / kKeras2HardSigmoidSlope)};
  }
  return {false, 1.0f / 6.0f, 3.0f};
}

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

// y = Form(x) (above); dy/dx = the slope inside the linear part, else 0.
GF_REGISTER_OP(OpDef{
    .name = "HardSigmoid",
    .num_inputs = 1,
    .attrs = {OptionalAttr("keras2", false)},
    .infer = SameShapeF32,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* x = k.in<float>(0);
      float* y = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      const Form form = FormOf(k.node);
      return MakeKernel([=](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) y[i] = form(x[i]);
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) {
      return std::vector<Output>{
          g.scope.graph().AddNode1(g.scope, "HardSigmoidGrad", {g.dy[0], g.x(0)}, g.node.attrs)};
    },
    // Inside the linear part and on both flat parts, away from the kinks.
    .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = -2.9, .hi = 2.9}}},
                    {.inputs = {{.shape = {2, 3}, .lo = -5, .hi = -3.1}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 3.1, .hi = 5}}},
                    {.inputs = {{.shape = {2, 3}, .lo = -2.4, .hi = 2.4}}, .attrs = {{"keras2", true}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 2.6, .hi = 5}}, .attrs = {{"keras2", true}}}},
});

// HardSigmoidGrad(dy, x) -> dx = dy * Form.Derivative(x).
GF_REGISTER_OP(OpDef{
    .name = "HardSigmoidGrad",
    .num_inputs = 2,
    .attrs = {OptionalAttr("keras2", false)},
    .infer = SameShapeF32,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* dy = k.in<float>(0);
      const float* x = k.in<float>(1);
      float* dx = k.out<float>(0);
      const int64_t n = k.out_shape(0).NumElements();
      const Form form = FormOf(k.node);
      return MakeKernel([=](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) dx[i] = form.Derivative(x[i]) * dy[i];
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

Output HardSigmoid(const Scope& scope, Output x, bool keras2) {
  return scope.graph().AddNode1(scope, "HardSigmoid", {x}, {{"keras2", keras2}});
}

}  // namespace gradflow::ops
