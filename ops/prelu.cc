#include "ops/prelu.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// Checks that input `alpha_index` broadcasts against x = input 0 as Keras's
// PReLU alpha: rank(x) - 1 dims, each equal to x's next dim or 1.
absl::Status CheckAlpha(InferContext& ctx, int x_index, int alpha_index) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(x_index, DType::kF32));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(alpha_index, DType::kF32));
  const Shape& x = ctx.shape(x_index);
  const Shape& alpha = ctx.shape(alpha_index);
  if (x.rank() < 2) {
    return ctx.Error(absl::StrCat(ctx.Describe(x_index), " must have rank >= 2 ([batch, features...])"));
  }
  bool ok = alpha.rank() == x.rank() - 1;
  for (int d = 0; ok && d < alpha.rank(); ++d) ok = alpha[d] == x[d + 1] || alpha[d] == 1;
  if (!ok) {
    return ctx.Error(absl::StrCat(
        "the slope ", ctx.Describe(alpha_index), " must have the shape of ", ctx.Describe(x_index),
        " without its batch dimension, with 1 along shared axes"));
  }
  return absl::OkStatus();
}

// oneDNN's weights descriptor: alpha with a leading 1 for the batch.
dnnl::memory::desc AlphaDesc(const Shape& alpha) {
  std::vector<int64_t> dims = {1};
  dims.insert(dims.end(), alpha.dims().begin(), alpha.dims().end());
  return PlainDesc(Shape(dims));
}

}  // namespace

// y = x (x > 0), alpha x (x <= 0), alpha broadcast over the batch and the
// shared axes. Derivatives:
//   dx     = dy (x > 0),  alpha dy (x <= 0)
//   dalpha = sum over the broadcast dims of dy * min(x, 0)
// Both come from one prelu_backward primitive (diff_src and diff_weights).
GF_REGISTER_OP(OpDef{
    .name = "PRelu",
    .num_inputs = 2,
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckAlpha(ctx, 0, 1));
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      if (k.out_shape(0).NumElements() == 0) return nullptr;
      return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
        dnnl::memory::desc data = PlainDesc(k.in_shape(0)), weights = AlphaDesc(k.in_shape(1));
        auto prop = k.phase == Phase::kTrain ? dnnl::prop_kind::forward_training
                                             : dnnl::prop_kind::forward_inference;
        dnnl::prelu_forward::primitive_desc pd({prop, data, weights}, CpuEngine());
        return std::unique_ptr<Kernel>(new PrimitiveKernel(
            dnnl::prelu_forward(pd), {{DNNL_ARG_SRC, MemoryAt(data, k.inputs[0])},
                                      {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[1])},
                                      {DNNL_ARG_DST, MemoryAt(data, k.outputs[0])}}));
      });
    },
    .grad = [](GradContext& g) {
      return g.scope.graph().AddNode(g.scope, "PReluGrad", {g.dy[0], g.x(0), g.x(1)});
    },
    .grad_checks = {
        // Negative x: both dx and dalpha carry alpha's effect.
        {.inputs = {{.shape = {3, 4}, .lo = -2, .hi = -0.1}, {.shape = {4}, .lo = 0.05, .hi = 0.5}}},
        // Positive x: dx = dy, dalpha = 0.
        {.inputs = {{.shape = {3, 4}, .lo = 0.1, .hi = 2}, {.shape = {4}, .lo = 0.05, .hi = 0.5}}},
        // Keras shared_axes = [1]: one slope per channel of a [N, T, C] input.
        {.inputs = {{.shape = {2, 3, 4}, .lo = -2, .hi = -0.1}, {.shape = {1, 4}, .lo = 0.05, .hi = 0.5}}},
    },
});

// PReluGrad(dy, x, alpha) -> (dx, dalpha).
GF_REGISTER_OP(OpDef{
    .name = "PReluGrad",
    .num_inputs = 3,
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(CheckAlpha(ctx, 1, 2));
      const Shape& dy = ctx.shape(0);
      const Shape& x = ctx.shape(1);
      if (!dy.SameUpToBatch(x)) {
        return ctx.Error(absl::StrCat("the gradient ", ctx.Describe(0), " must have the shape of ",
                                      ctx.Describe(1)));
      }
      ctx.AddOutput(DType::kF32, x);
      ctx.AddOutput(DType::kF32, ctx.shape(2));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      if (k.in_shape(1).NumElements() == 0) {  // an empty batch: no slope gradient
        float* dalpha = k.out<float>(1);
        const int64_t n = k.out_shape(1).NumElements();
        return MakeKernel([=](const RunContext&) {
          std::fill(dalpha, dalpha + n, 0.0f);
          return absl::OkStatus();
        });
      }
      return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
        dnnl::memory::desc data = PlainDesc(k.in_shape(1)), weights = AlphaDesc(k.in_shape(2));
        dnnl::prelu_forward::primitive_desc hint({dnnl::prop_kind::forward_training, data, weights},
                                                 CpuEngine());
        dnnl::prelu_backward::primitive_desc pd({data, weights, data, weights}, CpuEngine(), hint);
        return std::unique_ptr<Kernel>(new PrimitiveKernel(
            dnnl::prelu_backward(pd), {{DNNL_ARG_DIFF_DST, MemoryAt(data, k.inputs[0])},
                                       {DNNL_ARG_SRC, MemoryAt(data, k.inputs[1])},
                                       {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[2])},
                                       {DNNL_ARG_DIFF_SRC, MemoryAt(data, k.outputs[0])},
                                       {DNNL_ARG_DIFF_WEIGHTS, MemoryAt(weights, k.outputs[1])}}));
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

Output PRelu(const Scope& scope, Output x, Output alpha) {
  return scope.graph().AddNode1(scope, "PRelu", {x, alpha});
}

}  // namespace gradflow::ops
