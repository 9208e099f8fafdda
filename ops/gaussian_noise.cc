#include "ops/gaussian_noise.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

constexpr char kOpName[] = "GaussianNoise";

// A uniform double in (0, 1] from the top 53 bits (never 0: Box-Muller takes its log).
double UnitOpen(uint64_t bits) { return (double(bits >> 11) + 1.0) * (1.0 / 9007199254740992.0); }

// A standard normal for element i: Box-Muller over the uniforms of the
// counters 2i and 2i + 1 (the cosine half only, so each element is independent).
float StandardNormal(uint64_t key, int64_t i) {
  const uint64_t c = key + 2 * static_cast<uint64_t>(i);
  const double radius = std::sqrt(-2.0 * std::log(UnitOpen(Mix64(c))));
  const double angle = 2.0 * std::numbers::pi * (double(Mix64(c + 1) >> 11) * (1.0 / 9007199254740992.0));
  return static_cast<float>(radius * std::cos(angle));
}

absl::Status InferGaussianNoise(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));  // stddev's range is declared below
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// Training: y = x + stddev * z, z ~ N(0, 1) per element and step. Inference
// (or stddev 0): y = x.
absl::StatusOr<std::unique_ptr<Kernel>> GaussianNoiseKernel(const KernelContext& k) {
  const float* src = k.in<float>(0);
  float* dst = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  const float stddev = static_cast<float>(k.node.attr<double>("stddev"));
  if (k.phase == Phase::kInfer || stddev == 0) {
    return MakeKernel([=](const RunContext&) {
      if (src != dst) std::memcpy(dst, src, n * sizeof(float));
      return absl::OkStatus();
    });
  }
  const uint64_t salt = HashName(k.node.name) ^ Mix64(static_cast<uint64_t>(k.node.attr<int64_t>("seed")));
  const std::optional<int64_t> fixed =
      k.node.has_attr("fixed_noise_seed") ? std::optional(k.node.attr<int64_t>("fixed_noise_seed")) : std::nullopt;
  return MakeKernel([=](const RunContext& ctx) {
    const uint64_t key = Mix64((fixed ? static_cast<uint64_t>(*fixed) : ctx.step_seed) ^ salt);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] + stddev * StandardNormal(key, i);
    return absl::OkStatus();
  });
}

// y = x + n with n independent of x: dy/dx = 1, so dx = dy in both phases.
std::vector<Output> GaussianNoiseGradient(GradContext& g) { return {g.dy[0]}; }

// The checker runs the forward plan many times: a fixed noise seed keeps the
// noise the same in every run, so the differences see only x.
GF_REGISTER_OP(OpDef{
    .name = kOpName,
    .num_inputs = 1,
    .attrs = {RequiredAttr("stddev", AttrType::kFloat).AtLeast(0).Finite(),
              OptionalAttr("seed", int64_t{0}),                   // Keras's layer seed
              OptionalAttr("fixed_noise_seed", AttrType::kInt)},  // the same noise every step (tests)
    .infer = InferGaussianNoise,
    .kernel = GaussianNoiseKernel,
    .grad = GaussianNoiseGradient,
    .grad_checks = {{.inputs = {{.shape = {4, 5}}}, .attrs = {{"stddev", 0.5}, {"fixed_noise_seed", int64_t{7}}}},
                    {.inputs = {{.shape = {2, 3, 2}}}, .attrs = {{"stddev", 0.0}}}},
    .inplace_input = 0,
    .random = true,
});

}  // namespace

Output GaussianNoise(const Scope& scope, Output x, double stddev, const GaussianNoiseOptions& options) {
  Attrs attrs = {{"stddev", stddev}};
  if (options.seed) attrs["seed"] = *options.seed;
  if (options.fixed_noise_seed) attrs["fixed_noise_seed"] = *options.fixed_noise_seed;
  return scope.graph().AddNode1(scope, kOpName, {x}, std::move(attrs));
}

}  // namespace gradflow::ops
