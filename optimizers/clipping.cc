#include "optimizers/clipping.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/math.h"
#include "ops/op_util.h"

namespace gradflow::optimizers {
namespace {

// Sums of squares run over fixed chunks (one serial sum each, chunks in
// parallel), then over the chunk sums in order: the result does not depend
// on the thread count.
constexpr int64_t kChunk = 8192;

double SumOfSquares(const float* x, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = c * kChunk; i < end; ++i) s += double(x[i]) * x[i];
    partial[c] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

// ClipNormScale(t_1, ..., t_k) -> (scale, norm) with norm = sqrt(sum_i
// ||t_i||^2) and scale = clip_norm / max(norm, clip_norm) (1 when the norm
// is within bounds; NaN when the norm is not finite, as TensorFlow).
GF_REGISTER_OP(OpDef{
    .name = "ClipNormScale",
    .num_inputs = -1,
    .attrs = {RequiredAttr("clip_norm", AttrType::kFloat).Above(0).Finite()},
    .infer = [](InferContext& ctx) {
      if (ctx.num_inputs() == 0) return ctx.Error("needs at least one tensor");
      for (int i = 0; i < ctx.num_inputs(); ++i) GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
      ctx.AddOutput(DType::kF32, Shape{});
      ctx.AddOutput(DType::kF32, Shape{});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      std::vector<std::pair<const float*, int64_t>> tensors;
      for (int i = 0; i < static_cast<int>(k.inputs.size()); ++i) {
        tensors.push_back({k.in<float>(i), k.in_shape(i).NumElements()});
      }
      const double clip_norm = k.node.attr<double>("clip_norm");
      float* scale = k.out<float>(0);
      float* norm_out = k.out<float>(1);
      return ops::MakeKernel([=](const RunContext&) {
        double sum = 0;
        for (const auto& [data, n] : tensors) sum += SumOfSquares(data, n);
        const double norm = std::sqrt(sum);
        *norm_out = static_cast<float>(norm);
        *scale = std::isfinite(norm) ? static_cast<float>(clip_norm / std::max(norm, clip_norm))
                                     : std::numeric_limits<float>::quiet_NaN();
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "clipping rewrites gradients after differentiation; it is not differentiated",
});

GradientClipping ClipByValue(double clip_value) {
  return {GradientClipping::Kind::kValue, clip_value};
}
GradientClipping ClipByNorm(double clip_norm) { return {GradientClipping::Kind::kNorm, clip_norm}; }
GradientClipping ClipByGlobalNorm(double clip_norm) {
  return {GradientClipping::Kind::kGlobalNorm, clip_norm};
}

Output GlobalNorm(const Scope& scope, const std::vector<Output>& tensors) {
  std::vector<Output> outs = scope.graph().AddNode(scope, "ClipNormScale", tensors,
                                                   {{"clip_norm", 1.0}}, "GlobalNorm");
  return outs.size() == 2 ? outs[1] : Output{};
}

std::vector<Output> ClipGradients(const Scope& scope, const std::vector<Output>& grads,
                                  const GradientClipping& clip) {
  Graph& g = scope.graph();
  std::vector<Output> clipped(grads.size());
  if (!(clip.threshold > 0) || !std::isfinite(clip.threshold)) {
    const char* what = clip.kind == GradientClipping::Kind::kValue ? "ClipByValue" : "the clip norm";
    g.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "gradient clipping: ", what, " must be a positive finite number, got ", clip.threshold)));
    return clipped;
  }
  switch (clip.kind) {
    case GradientClipping::Kind::kValue: {
      const float v = static_cast<float>(clip.threshold);
      for (size_t i = 0; i < grads.size(); ++i) clipped[i] = ops::Clip(scope, grads[i], -v, v);
      break;
    }
    case GradientClipping::Kind::kNorm:
      for (size_t i = 0; i < grads.size(); ++i) {
        std::vector<Output> scale = g.AddNode(scope, "ClipNormScale", {grads[i]},
                                              {{"clip_norm", clip.threshold}});
        if (scale.empty()) return clipped;
        clipped[i] = ops::Mul(scope, grads[i], scale[0]);
      }
      break;
    case GradientClipping::Kind::kGlobalNorm: {
      std::vector<Output> scale =
          g.AddNode(scope, "ClipNormScale", grads, {{"clip_norm", clip.threshold}}, "GlobalNormScale");
      if (scale.empty()) return clipped;
      for (size_t i = 0; i < grads.size(); ++i) clipped[i] = ops::Mul(scope, grads[i], scale[0]);
      break;
    }
  }
  return clipped;
}

}  // namespace gradflow::optimizers
