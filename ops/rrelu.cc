#include "ops/rrelu.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/status.h"
#include "ops/math.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {


}  // namespace

// y = a x (x < 0), x (x >= 0), with a the per-element slope (random in
// training, the mean slope in inference). Output 1 is s = a (x < 0), 1
// (x >= 0), so y = s x and, s being constant in x almost everywhere,
//   dL/dx = dL/dy * s.
// s itself is piecewise constant in x: its own gradient (dy[1]) contributes
// nothing.
GF_REGISTER_OP(OpDef{
    .name = "RRelu",
    .num_inputs = 1,
    .attrs = {RequiredAttr("lower", AttrType::kFloat).Finite(), RequiredAttr("upper", AttrType::kFloat).Finite()},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      const double lower = ctx.node().attr<double>("lower"), upper = ctx.node().attr<double>("upper");
      if (!(std::isfinite(lower) && std::isfinite(upper) && lower <= upper)) {
        return ctx.Error(absl::StrCat("needs finite slopes with lower <= upper, got lower = ", lower,
                                      ", upper = ", upper));
      }
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* x = k.in<float>(0);
      float* y = k.out<float>(0);
      float* slope = k.out<float>(1);
      const int64_t n = k.out_shape(0).NumElements();
      const float lower = static_cast<float>(k.node.attr<double>("lower"));
      const float upper = static_cast<float>(k.node.attr<double>("upper"));
      if (k.phase == Phase::kInfer) {
        const float mean_slope = static_cast<float>(
            (k.node.attr<double>("lower") + k.node.attr<double>("upper")) / 2);
        return MakeKernel([=](const RunContext&) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
          for (int64_t i = 0; i < n; ++i) {
            const float s = x[i] >= 0.0f ? 1.0f : mean_slope;
            slope[i] = s;
            y[i] = s * x[i];
          }
          return absl::OkStatus();
        });
      }
      const uint64_t node_salt = HashName(k.node.name);
      const float range = upper - lower;
      return MakeKernel([=](const RunContext& ctx) {
        const uint64_t stream = Mix64(ctx.step_seed ^ node_salt);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) {
          const float s = x[i] >= 0.0f ? 1.0f
                                       : lower + range * ToUnitFloat(Mix64(stream + uint64_t(i)));
          slope[i] = s;
          y[i] = s * x[i];
        }
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) { return std::vector<Output>{Mul(g.scope, g.dy[0], g.y(1))}; },
    // The harness runs every evaluation as a new step with a new seed, so a
    // checkable case must not draw: lower == upper fixes the slope. The
    // random slopes are tested in tests/ops/rrelu_test.cc.
    .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = -2, .hi = -0.1}},
                     .attrs = {{"lower", 0.25}, {"upper", 0.25}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 0.1, .hi = 2}},
                     .attrs = {{"lower", 0.25}, {"upper", 0.25}}}},
    .random = true,
});

RReluOutputs RReluWithSlopes(const Scope& scope, Output x, double lower, double upper) {
  std::vector<Output> outs =
      scope.graph().AddNode(scope, "RRelu", {x}, {{"lower", lower}, {"upper", upper}});
  if (outs.size() != 2) return {};
  return {outs[0], outs[1]};
}

Output RRelu(const Scope& scope, Output x, double lower, double upper) {
  return RReluWithSlopes(scope, x, lower, upper).y;
}

}  // namespace gradflow::ops
