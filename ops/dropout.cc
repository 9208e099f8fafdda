#include "ops/dropout.h"

// Dropout kernels are OpenMP loops: each element's keep/drop decision comes
// from a counter-based hash of its index (core/random.h), so any thread can
// compute any element and the result never depends on the thread count.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/status.h"
#include "ops/activations.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// Elements one work item handles.
constexpr int64_t kBlock = 8192;

enum class Kind { kDropout, kAlphaDropout };

// Everything a forward or gradient kernel needs to redraw one node's mask.
struct MaskSpec {
  bool active = false;  // false: the node is the identity in this plan
  // Element i is kept when the top 24 bits of Mix64(key + i) are >= this:
  // the same test as ToUnitFloat(bits) >= rate (float rate), done in
  // integers so the loop vectorizes.
  uint64_t threshold = 0;
  uint64_t salt = 0;  // HashName of the forward node
  std::optional<int64_t> fixed_seed;

  uint64_t Key(const RunContext& ctx) const {
    return Mix64((fixed_seed ? static_cast<uint64_t>(*fixed_seed) : ctx.step_seed) ^ salt);
  }
};

// The 24-bit threshold equivalent to ToUnitFloat(bits) >= rate: that float is
// k / 2^24 for the integer k = bits >> 40, exactly, so the test is
// k >= rate * 2^24, i.e. k >= ceil(rate * 2^24).
uint64_t KeepThreshold(float rate) { return static_cast<uint64_t>(std::ceil(double(rate) * 16777216.0)); }

// `node` is the forward node or its gradient node (which carries the forward
// node's attrs plus "forward", the forward node's name).
// attrs of Dropout and AlphaDropout; DropoutGrad adds forward and kind.
std::vector<AttrDef> DropoutAttrs() {
  return {RequiredAttr("rate", AttrType::kFloat).AtLeast(0).Below(1).Means("the fraction of units dropped"),
          OptionalAttr("active_in_inference", false), OptionalAttr("fixed_mask_seed", AttrType::kInt)};
}

std::vector<AttrDef> DropoutGradAttrs() {
  std::vector<AttrDef> attrs = DropoutAttrs();
  attrs.push_back(RequiredAttr("forward", AttrType::kString));  // the forward node's name
  attrs.push_back(RequiredAttr("kind", AttrType::kString));     // its op
  return attrs;
}

MaskSpec SpecOf(const Node& node, Phase phase) {
  MaskSpec spec;
  const double rate = node.attr<double>("rate");
  spec.active = rate > 0 && (phase == Phase::kTrain || node.attr<bool>("active_in_inference"));
  spec.threshold = KeepThreshold(static_cast<float>(rate));
  spec.salt = HashName(node.has_attr("forward") ? node.attr<std::string>("forward") : node.name);
  if (node.has_attr("fixed_mask_seed")) spec.fixed_seed = node.attr<int64_t>("fixed_mask_seed");
  return spec;
}

absl::Status InferDropout(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// y = kept ? x * kept_scale + shift : dropped_value over elements [begin, end).
// Arguments in locals and restrict pointers let the compiler vectorize the
// hash (AVX-512 has 64-bit multiplies): about 8x faster than scalar code.
struct MaskedAffine {
  uint64_t threshold;
  float kept_scale, shift, dropped_value;

  void Apply(const float* __restrict src, float* __restrict dst, int64_t begin, int64_t end,
             uint64_t key) const {
    const uint64_t t = threshold;
    const float scale = kept_scale, add = shift, dropped = dropped_value;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const bool kept = (Mix64(key + static_cast<uint64_t>(i)) >> 40) >= t;
      dst[i] = kept ? src[i] * scale + add : dropped;
    }
  }
};

// A kernel that copies src to dst, or nothing when they share a buffer.
absl::StatusOr<std::unique_ptr<Kernel>> CopyKernel(const float* src, float* dst, int64_t n) {
  return MakeKernel([=](const RunContext&) {
    if (src != dst) std::memcpy(dst, src, n * sizeof(float));
    return absl::OkStatus();
  });
}

// y = kept ? x * kept_scale + shift : dropped_value, over the node's mask.
absl::StatusOr<std::unique_ptr<Kernel>> MaskKernel(const KernelContext& k, float kept_scale,
                                                   float shift, float dropped_value) {
  const MaskSpec spec = SpecOf(k.node, k.phase);
  const float* src = k.in<float>(0);
  float* dst = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  if (!spec.active) return CopyKernel(src, dst, n);
  const MaskedAffine f{spec.threshold, kept_scale, shift, dropped_value};
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  return MakeKernel([=](const RunContext& ctx) {
    const uint64_t key = spec.Key(ctx);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t b = 0; b < blocks; ++b) f.Apply(src, dst, b * kBlock, std::min(n, (b + 1) * kBlock), key);
    return absl::OkStatus();
  });
}

Kind KindOf(const Node& node) {
  return node.attr<std::string>("kind") == "AlphaDropout" ? Kind::kAlphaDropout : Kind::kDropout;
}

// The gradient node repeats the forward node's attrs and names it, so it
// redraws the same mask in the same step.
std::vector<Output> DropoutGradient(GradContext& g) {
  Attrs attrs = g.node.attrs;
  attrs["forward"] = g.node.name;
  attrs["kind"] = g.node.op_name();
  return {g.scope.graph().AddNode1(g.scope, "DropoutGrad", {g.dy[0]}, std::move(attrs))};
}

// The gradient checks fix the mask (fixed_mask_seed): the checker runs the
// forward plan many times, and each run would otherwise draw a new mask.
std::vector<GradCheckCase> DropoutGradChecks() {
  return {{.inputs = {{.shape = {4, 5}}}, .attrs = {{"rate", 0.4}, {"fixed_mask_seed", int64_t{3}}}},
          {.inputs = {{.shape = {2, 3, 2}}}, .attrs = {{"rate", 0.0}}}};
}

Output AddDropoutNode(const Scope& scope, const char* op, Output x, double rate,
                      const DropoutOptions& options) {
  Attrs attrs = {{"rate", rate}, {"active_in_inference", options.active_in_inference}};
  if (options.fixed_mask_seed) attrs["fixed_mask_seed"] = *options.fixed_mask_seed;
  return scope.graph().AddNode1(scope, op, {x}, std::move(attrs));
}

}  // namespace

AlphaDropoutCoefficients AlphaDropoutCoefficientsFor(double rate) {
  // Keras AlphaDropout: alpha_p = -alpha * scale with SELU's constants.
  const double alpha_p = -kSeluAlpha * kSeluScale;
  const double a = std::pow((1 - rate) * (1 + rate * alpha_p * alpha_p), -0.5);
  return {alpha_p, a, -a * alpha_p * rate};
}

// Training: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) per element.
// dy/dx = m / (1 - rate) (diagonal), so dx = dy * m / (1 - rate) with the same m.
// Inference: y = x, dx = dy.
GF_REGISTER_OP(OpDef{
    .name = "Dropout",
    .num_inputs = 1,
    .attrs = DropoutAttrs(),
    .infer = InferDropout,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float scale = static_cast<float>(1.0 / (1.0 - k.node.attr<double>("rate")));
      return MaskKernel(k, scale, 0.0f, 0.0f);
    },
    .grad = DropoutGradient,
    .grad_checks = DropoutGradChecks(),
    .random = true,
});

// Training: y = a * (x * m + alpha' * (1 - m)) + b.
// dy/dx = a * m (diagonal), so dx = dy * a * m with the same m.
// Inference: y = x, dx = dy.
GF_REGISTER_OP(OpDef{
    .name = "AlphaDropout",
    .num_inputs = 1,
    .attrs = DropoutAttrs(),
    .infer = InferDropout,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const AlphaDropoutCoefficients c = AlphaDropoutCoefficientsFor(k.node.attr<double>("rate"));
      return MaskKernel(k, static_cast<float>(c.a), static_cast<float>(c.b),
                        static_cast<float>(c.a * c.alpha_p + c.b));
    },
    .grad = DropoutGradient,
    .grad_checks = DropoutGradChecks(),
    .random = true,
});

// dx = dy * m * s, s = 1 / (1 - rate) for Dropout and a for AlphaDropout,
// with m redrawn from the forward node's name and this step's seed.
GF_REGISTER_OP(OpDef{
    .name = "DropoutGrad",
    .num_inputs = 1,
    .attrs = DropoutGradAttrs(),
    .infer = InferDropout,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const double rate = k.node.attr<double>("rate");
      const double scale = KindOf(k.node) == Kind::kAlphaDropout
                               ? AlphaDropoutCoefficientsFor(rate).a
                               : 1.0 / (1.0 - rate);
      return MaskKernel(k, static_cast<float>(scale), 0.0f, 0.0f);
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
    .random = true,
});

Output Dropout(const Scope& scope, Output x, double rate, const DropoutOptions& options) {
  return AddDropoutNode(scope, "Dropout", x, rate, options);
}

Output AlphaDropout(const Scope& scope, Output x, double rate, const DropoutOptions& options) {
  return AddDropoutNode(scope, "AlphaDropout", x, rate, options);
}

}  // namespace gradflow::ops
