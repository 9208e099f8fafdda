#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// Softmax along the last axis of any rank >= 1: the kernels view the tensor as
// [rows, depth] (depth = the last dimension) and reduce over axis 1.

absl::Status InferSoftmax(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  if (ctx.shape(0).rank() == 0) {
    return ctx.Error(absl::StrCat(ctx.Describe(0),
                                  " is a scalar; softmax needs at least one axis (the last is "
                                  "normalized)"));
  }
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// Fwd/Bwd: dnnl::softmax_forward/backward or dnnl::logsoftmax_forward/backward
// (the 2.x API: one descriptor type each, same signatures).
template <typename Fwd>
absl::StatusOr<std::unique_ptr<Kernel>> ForwardKernel(const KernelContext& k) {
  const RowsAndDepth rows_depth = Rows(k.in_shape(0));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  if (rows * depth == 0) return nullptr;
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    dnnl::memory::desc md = PlainDesc(Shape{rows, depth});
    auto prop = k.phase == Phase::kTrain ? dnnl::prop_kind::forward_training
                                         : dnnl::prop_kind::forward_inference;
    typename Fwd::primitive_desc pd(typename Fwd::desc(prop, md, /*axis=*/1), CpuEngine());
    return std::unique_ptr<Kernel>(new PrimitiveKernel(
        Fwd(pd), {{DNNL_ARG_SRC, MemoryAt(md, k.inputs[0])}, {DNNL_ARG_DST, MemoryAt(md, k.outputs[0])}}));
  });
}

// Log-softmax forward as a plain loop rather than dnnl::logsoftmax_forward:
// oneDNN 2.6.3's jit kernel (avx512_core here) computes log(sum exp) with a
// low-accuracy log, off by up to 3.5e-6 absolute (~15 ulp at |y| ~ 2; the
// softmax kernel is within 1e-7). That noise divided by a finite-difference
// step of 1e-3 is a gradient error of ~1e-2, enough to fail the registry's
// gradient check, and it is avoidable: per row, y = (x - max) - log(sum
// exp(x - max)) with the sum in double, ~1 ulp. Rows are independent and each
// is summed serially, so results do not depend on the thread count. (The
// backward still runs on dnnl::logsoftmax_backward, accurate to ~3e-7.)
absl::StatusOr<std::unique_ptr<Kernel>> LogSoftmaxKernel(const KernelContext& k) {
  const RowsAndDepth rows_depth = Rows(k.in_shape(0));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  if (rows * depth == 0) return nullptr;
  const float* src = k.in<float>(0);
  float* dst = k.out<float>(0);
  return MakeKernel([=](const RunContext&) {
#pragma omp parallel for schedule(static) if (rows * depth > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = src + r * depth;
      float* y = dst + r * depth;
      float max = x[0];
      for (int64_t j = 1; j < depth; ++j) max = std::max(max, x[j]);
      double sum = 0;
      for (int64_t j = 0; j < depth; ++j) sum += std::exp(double(x[j]) - max);
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < depth; ++j) y[j] = static_cast<float>(double(x[j]) - max - log_sum);
    }
    return absl::OkStatus();
  });
}

// Inputs (dy, y) -> dx, by the backward primitive that reads dst (y).
template <typename Fwd, typename Bwd>
absl::StatusOr<std::unique_ptr<Kernel>> BackwardKernel(const KernelContext& k) {
  const RowsAndDepth rows_depth = Rows(k.out_shape(0));
  const int64_t rows = rows_depth.rows, depth = rows_depth.depth;
  if (rows * depth == 0) return nullptr;
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    dnnl::memory::desc md = PlainDesc(Shape{rows, depth});
    typename Fwd::primitive_desc hint(
        typename Fwd::desc(dnnl::prop_kind::forward_training, md, /*axis=*/1), CpuEngine());
    typename Bwd::primitive_desc pd(typename Bwd::desc(md, md, /*axis=*/1), CpuEngine(), hint);
    return std::unique_ptr<Kernel>(new PrimitiveKernel(
        Bwd(pd), {{DNNL_ARG_DIFF_DST, MemoryAt(md, k.inputs[0])},
                  {DNNL_ARG_DST, MemoryAt(md, k.inputs[1])},
                  {DNNL_ARG_DIFF_SRC, MemoryAt(md, k.outputs[0])}}));
  });
}

// (dy, y): both f32 of one shape (dim 0 may be -1 on either side at build time).
absl::Status InferSoftmaxGrad(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
  Shape a = ctx.shape(0), b = ctx.shape(1);
  if (a.rank() == 0 || !a.SameUpToBatch(b)) {
    return ctx.Error(absl::StrCat("the gradient ", ctx.Describe(0), " and the output ",
                                  ctx.Describe(1), " must have the same shape of rank >= 1"));
  }
  if (a[0] < 0) a[0] = b[0];
  ctx.AddOutput(DType::kF32, a);
  return absl::OkStatus();
}

constexpr char kBackwardOnly[] = "backward op; second derivatives are not supported";

}  // namespace

// softmax: y_i = exp(x_i) / sum_j exp(x_j); dy_i/dx_k = y_i ([i = k] - y_k), so
//   dx_k = sum_i dy_i y_i ([i = k] - y_k) = (dy_k - sum_i dy_i y_i) y_k,
// i.e. dx = (dy - sum(dy * y)) * y over the last axis: a function of y alone.
GF_REGISTER_OP(OpDef{
    .name = "Softmax",
    .num_inputs = 1,
    .infer = InferSoftmax,
    .kernel = ForwardKernel<dnnl::softmax_forward>,
    .grad = [](GradContext& g) {
      return std::vector<Output>{
          g.scope.graph().AddNode1(g.scope, "SoftmaxGrad", {g.dy[0], g.y()})};
    },
    .grad_checks = {{.inputs = {{.shape = {2, 4}, .lo = -2, .hi = 2}}},
                    {.inputs = {{.shape = {2, 2, 3}, .lo = -2, .hi = 2}}}},
});

GF_REGISTER_OP(OpDef{
    .name = "SoftmaxGrad",
    .num_inputs = 2,
    .infer = InferSoftmaxGrad,
    .kernel = BackwardKernel<dnnl::softmax_forward, dnnl::softmax_backward>,
    .no_gradient_reason = kBackwardOnly,
});

// log-softmax: y_i = x_i - log sum_j exp(x_j); dy_i/dx_k = [i = k] - softmax_k, so
//   dx_k = dy_k - softmax(x)_k sum_i dy_i = dy_k - exp(y_k) sum_i dy_i:
// again a function of y alone (softmax(x) = exp(y)).
GF_REGISTER_OP(OpDef{
    .name = "LogSoftmax",
    .num_inputs = 1,
    .infer = InferSoftmax,
    .kernel = LogSoftmaxKernel,
    .grad = [](GradContext& g) {
      return std::vector<Output>{
          g.scope.graph().AddNode1(g.scope, "LogSoftmaxGrad", {g.dy[0], g.y()})};
    },
    .grad_checks = {{.inputs = {{.shape = {3, 4}, .lo = -2, .hi = 2}}},
                    {.inputs = {{.shape = {5}, .lo = -2, .hi = 2}}}},
});

GF_REGISTER_OP(OpDef{
    .name = "LogSoftmaxGrad",
    .num_inputs = 2,
    .infer = InferSoftmaxGrad,
    .kernel = BackwardKernel<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>,
    .no_gradient_reason = kBackwardOnly,
});

Output Softmax(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "Softmax", {x}); }
Output LogSoftmax(const Scope& scope, Output x) {
  return scope.graph().AddNode1(scope, "LogSoftmax", {x});
}

}  // namespace gradflow::ops
