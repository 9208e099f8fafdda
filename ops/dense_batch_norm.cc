// DenseBatchNormInference: Dense -> BatchNorm (inference form) -> optional
// activation, run as one inner product. Plans create it themselves (OpDef::fuse,
// graph/README.md); no builder, no gradient: training differentiates the
// unfused nodes.
//
// With s = gamma / sqrt(moving_variance + epsilon), the inference batch norm
// of z = x·W + b is (z − mean)·s + beta, which is x·W' + b' with
//   W'[i, o] = W[i, o]·s[o],   b'[o] = (b[o] − mean[o])·s[o] + beta[o].
// The kernel keeps W' and b' and recomputes them only when the session's
// variables may have changed (RunContext::variables_version), so a Predict
// over many batches folds once. tests/ops/dense_batch_norm_test.cc checks it
// against the unfused graph.

#include <cmath>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/activations.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

constexpr char kOpName[] = "DenseBatchNormInference";

// Input positions: x, kernel, [bias], [gamma], [beta], moving_mean, moving_variance.
struct Inputs {
  int bias = -1, gamma = -1, beta = -1, mean, variance;
  explicit Inputs(const Node& node) {
    int i = 2;
    if (node.attr<bool>("use_bias")) bias = i++;
    if (node.attr<bool>("scale")) gamma = i++;
    if (node.attr<bool>("center")) beta = i++;
    mean = i++;
    variance = i++;
  }
  int count() const { return variance + 1; }
};

// The rule: at an activation oneDNN can run as a post-op, or at a batch norm,
// look back for Dense (no activation of its own) -> BatchNorm in inference
// form, each output read only by the next node. Plans try the rule from the
// last node backwards, so the longer match (with the activation) wins.
std::optional<Fusion> FoldIntoDense(Node& node, const FusionContext& ctx) {
  Node* act = nullptr;
  Node* bn = &node;
  std::optional<std::pair<dnnl::algorithm, std::pair<float, float>>> post_op;
  if (node.op_name() != "BatchNorm") {
    post_op = EltwiseAlgorithmOf(node);
    if (!post_op || node.inputs.size() != 1 || node.inputs[0].index != 0) return std::nullopt;
    act = &node;
    bn = node.inputs[0].node;
    if (bn->op_name() != "BatchNorm" || ctx.uses(bn->output(0)) != 1) return std::nullopt;
  }
  const bool inference_form = ctx.phase == Phase::kInfer || bn->attr<bool>("frozen");
  Node* dense = bn->inputs[0].node;
  // A bf16 Dense (mixed precision) keeps its batch norm: the fold would
  // need the f32 kernel behind the cast.
  if (!inference_form || dense->op_name() != "Dense" || ctx.uses(dense->output(0)) != 1 ||
      !dense->attr<std::string>("activation").empty() || dense->inputs[1].dtype() != DType::kF32) {
    return std::nullopt;
  }
  Fusion f;
  f.inputs = dense->inputs;
  f.inputs.insert(f.inputs.end(), bn->inputs.begin() + 1, bn->inputs.end());
  f.attrs = {{"use_bias", dense->inputs.size() == 3},
             {"scale", bn->attr<bool>("scale")},
             {"center", bn->attr<bool>("center")},
             {"epsilon", bn->attr<double>("epsilon")}};
  if (post_op) {
    f.attrs["post_op"] = static_cast<int64_t>(post_op->first);
    f.attrs["post_op_alpha"] = static_cast<double>(post_op->second.first);
    f.attrs["post_op_beta"] = static_cast<double>(post_op->second.second);
  }
  f.absorbed = {dense};
  if (act) f.absorbed.push_back(bn);
  return f;
}

absl::Status Infer(InferContext& ctx) {
  const Inputs in(ctx.node());
  if (ctx.num_inputs() != in.count()) {
    return ctx.Error(absl::StrCat("takes ", in.count(), " inputs with these attrs, got ", ctx.num_inputs()));
  }
  for (int i = 0; i < ctx.num_inputs(); ++i) GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
  const Shape& x = ctx.shape(0);
  const Shape& w = ctx.shape(1);
  if (x.rank() != 2 || w.rank() != 2 || w[0] != x[1]) {
    return ctx.Error(absl::StrCat("needs x [batch, in] and a kernel [in, out], got ", ctx.Describe(0),
                                  " and ", ctx.Describe(1)));
  }
  for (int i = 2; i < ctx.num_inputs(); ++i) {
    if (ctx.shape(i) != Shape{w[1]}) {
      return ctx.Error(absl::StrCat(ctx.Describe(i), " must be [", w[1], "], one value per unit"));
    }
  }
  ctx.AddOutput(DType::kF32, Shape{x[0], w[1]});
  return absl::OkStatus();
}

class FoldedDenseKernel : public Kernel {
 public:
  FoldedDenseKernel(const KernelContext& k, const Inputs& in)
      : units_(k.in_shape(1)[1]), fan_in_(k.in_shape(1)[0]),
        epsilon_(static_cast<float>(k.node.attr<double>("epsilon"))),
        kernel_(k.in<const float>(1)),
        bias_(in.bias >= 0 ? k.in<const float>(in.bias) : nullptr),
        gamma_(in.gamma >= 0 ? k.in<const float>(in.gamma) : nullptr),
        beta_(in.beta >= 0 ? k.in<const float>(in.beta) : nullptr),
        mean_(k.in<const float>(in.mean)), variance_(k.in<const float>(in.variance)),
        folded_kernel_(DType::kF32, k.in_shape(1)), folded_bias_(DType::kF32, Shape{units_}),
        scale_(units_) {
    using dnnl::memory;
    memory::desc src = PlainDesc(k.in_shape(0));
    memory::desc weights = DenseKernelDesc(fan_in_, units_);
    memory::desc bias = PlainDesc(Shape{units_});
    memory::desc dst = PlainDesc(k.out_shape(0));
    dnnl::primitive_attr attr;
    if (k.node.has_attr("post_op")) {
      attr = EltwisePostOp(static_cast<dnnl::algorithm>(k.node.attr<int64_t>("post_op")),
                           static_cast<float>(k.node.attr<double>("post_op_alpha")),
                           static_cast<float>(k.node.attr<double>("post_op_beta")));
    }
    dnnl::inner_product_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, src, weights, bias, dst}, attr, CpuEngine());
    primitive_ = dnnl::inner_product_forward(pd);
    args_ = {{DNNL_ARG_SRC, MemoryAt(src, k.inputs[0])},
             {DNNL_ARG_WEIGHTS, MemoryAt(weights, folded_kernel_.raw())},
             {DNNL_ARG_BIAS, MemoryAt(bias, folded_bias_.raw())},
             {DNNL_ARG_DST, MemoryAt(dst, k.outputs[0])}};
  }

  absl::Status Run(const RunContext& ctx) override {
    if (ctx.variables_version != folded_version_) {
      Fold();
      folded_version_ = ctx.variables_version;
    }
    primitive_.execute(CpuStream(), args_);
    CpuStream().wait();
    return absl::OkStatus();
  }

 private:
  void Fold() {
    float* w = folded_kernel_.data<float>();
    float* b = folded_bias_.data<float>();
    std::vector<float>& s = scale_;
    for (int64_t o = 0; o < units_; ++o) {
      s[o] = (gamma_ ? gamma_[o] : 1.0f) / std::sqrt(variance_[o] + epsilon_);
      b[o] = ((bias_ ? bias_[o] : 0.0f) - mean_[o]) * s[o] + (beta_ ? beta_[o] : 0.0f);
    }
    const float* scale = s.data();
    const int64_t units = units_;
    const float* kernel = kernel_;
#pragma omp parallel for schedule(static) if (fan_in_ * units_ > 65536)
    for (int64_t i = 0; i < fan_in_; ++i) {
      for (int64_t o = 0; o < units; ++o) w[i * units + o] = kernel[i * units + o] * scale[o];
    }
  }

  int64_t units_, fan_in_;
  float epsilon_;
  const float *kernel_, *bias_, *gamma_, *beta_, *mean_, *variance_;
  Tensor folded_kernel_, folded_bias_;
  std::vector<float> scale_;  // gamma / sqrt(variance + epsilon), per unit
  uint64_t folded_version_ = 0;  // store versions start at 1: the first Run folds
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
};

}  // namespace

GF_REGISTER_OP(OpDef{
    .name = kOpName,
    .num_inputs = -1,
    // As FoldIntoDense sets them; post_op is a dnnl::algorithm, absent without an activation.
    .attrs = {RequiredAttr("use_bias", AttrType::kBool), RequiredAttr("scale", AttrType::kBool),
              RequiredAttr("center", AttrType::kBool), RequiredAttr("epsilon", AttrType::kFloat).Above(0),
              OptionalAttr("post_op", AttrType::kInt), OptionalAttr("post_op_alpha", 0.0),
              OptionalAttr("post_op_beta", 0.0)},
    .infer = Infer,
    .kernel = [](const KernelContext& k) {
      return WithDnnl(k.node, [&] { return std::make_unique<FoldedDenseKernel>(k, Inputs(k.node)); });
    },
    .no_gradient_reason = "inference-only fusion made by plans; training differentiates the "
                          "unfused Dense and BatchNorm",
    .fuse = FoldIntoDense,
});

}  // namespace gradflow::ops
