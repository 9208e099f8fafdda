#include "ops/activations.h"

#include <memory>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "ops/hard_sigmoid.h"
#include "ops/math.h"
#include "ops/op_util.h"
#include "ops/rrelu.h"
#include "ops/softmax.h"

namespace gradflow::ops {
namespace {

using dnnl::algorithm;

constexpr char kEltwiseGrad[] = "EltwiseGrad";
// Attr of an EltwiseGrad node: the op name of the forward activation.
constexpr char kActivationAttr[] = "activation";

// How one activation maps onto oneDNN eltwise primitives:
//   y  = scale * forward(x; alpha, beta)
//   dx = scale * backward(dy, x or y; alpha, beta)
// scale != 1 only for SELU, which oneDNN 2.6 has no algorithm for: it runs as
// elu(kSeluAlpha) and then linear(kSeluScale) in place. (The linear step as an
// eltwise post-op of the elu primitive would be one pass, but oneDNN 2.6.3
// serves eltwise-with-post-ops only by its reference kernel, which leaves dst
// unwritten for 1-D tensors: checked on this machine. Two jit passes it is.)
//
// Where oneDNN 2.6 has no algorithm, or one that drops NaN or has the wrong
// value at a kink, a plain loop replaces it: `forward_loop` computes y from x,
// `derivative_loop` dy/dx from x (the backward then reads x). Both are
// elementwise, so they run in place as the oneDNN primitives do.
using ScalarFn = float (*)(float);
struct EltwiseSpec {
  algorithm forward;
  algorithm backward;      // a *_use_dst_for_bwd algorithm when from_dst
  bool from_dst = false;   // the backward reads y (dst) instead of x (src)
  float alpha = 0, beta = 0;
  float scale = 1;
  ScalarFn forward_loop = nullptr;
  ScalarFn derivative_loop = nullptr;
};

// oneDNN 2.6's eltwise_relu with alpha == 0 computes max(x, 0), which turns
// NaN into 0 (measured, jit:avx512_core, standalone and as a post-op), so a
// NaN would vanish silently. elu with alpha 0 gives the same values (x for x >
// 0, 0 * (exp(x) - 1) = -0 otherwise) and keeps NaN, as PyTorch's relu does;
// with alpha != 0 relu blends x and alpha * x, which keeps NaN too.
algorithm NanKeepingRelu(float alpha) { return alpha == 0 ? algorithm::eltwise_elu : algorithm::eltwise_relu; }

float AlphaAttr(const Node& node) { return static_cast<float>(node.attr<double>("alpha")); }

EltwiseSpec FromDst(algorithm forward, algorithm backward) { return {forward, backward, /*from_dst=*/true}; }
EltwiseSpec FromSrc(algorithm a, float alpha = 0) { return {a, a, false, alpha}; }
// An activation computed by loops only (no oneDNN algorithm).
EltwiseSpec Loops(ScalarFn f, ScalarFn df) {
  return {.forward = algorithm::undef, .backward = algorithm::undef, .forward_loop = f, .derivative_loop = df};
}

// selu's dy/dx: scale at x >= 0 (TensorFlow's SeluGrad: activations < 0
// selects the exponential branch, so x = 0 gets scale, not scale * alpha as
// oneDNN's elu backward gives), scale alpha exp(x) below. NaN stays NaN.
float SeluDerivative(float x) {
  return x >= 0 ? static_cast<float>(kSeluScale) : static_cast<float>(kSeluScale * kSeluAlpha) * std::exp(x);
}
// relu6 (Keras 3): min(max(x, 0), 6), written so NaN stays NaN (oneDNN's
// clip and bounded_relu turn it into 0). dy/dx = 1 on (0, 6), 0 outside (as
// TensorFlow's Relu6Grad at the kinks), and 1 at NaN (dy passes, as relu).
float Relu6(float x) { return x < 0 ? 0.0f : x > 6 ? 6.0f : x; }
float Relu6Derivative(float x) { return x <= 0 || x >= 6 ? 0.0f : 1.0f; }
// softsign (Keras 3): x / (1 + |x|); dy/dx = 1 / (1 + |x|)^2.
float Softsign(float x) { return x / (1 + std::abs(x)); }
float SoftsignDerivative(float x) {
  const float d = 1 + std::abs(x);
  return 1 / (d * d);
}

using Builder = Output (*)(const Scope&, Output);

// One row per activation: everything the rest of gradflow knows about it.
//   keras:    the Keras 3 name (ops::Activation, ActivationNames, nn layers' configs)
//   aliases:  other names Activation accepts for it
//   op:       the op Activation builds; "" for linear (the identity)
//   eltwise:  for the ops this file registers, their oneDNN mapping (a
//             function of the node: alpha and gelu's form are attrs) with
//             `attrs` and `grad_checks`; nullptr for ops registered elsewhere,
//             which `build` makes with Keras's defaults
//   dense:    fusable into ops::Dense as a post-op whose derivative comes from
//             the output y; default_alpha is Keras's default
// Every activation keeps NaN (NaN in, NaN out, and the gradient at a NaN
// input is not zero): tests/ops/activations_test.cc checks each row.
struct DenseFusion {
  algorithm forward;
  algorithm backward_from_dst;
  double default_alpha = 0;
};
struct ActivationRow {
  const char* keras;
  const char* op;
  // Other Keras names of the same activation ("swish" for "silu"); Keras 3
  // serializes them as `keras` (CanonicalActivationName).
  std::vector<const char*> aliases = {};
  EltwiseSpec (*eltwise)(const Node&) = nullptr;
  std::vector<AttrDef> attrs = {};
  std::vector<GradCheckCase> grad_checks = {};
  Builder build = nullptr;
  std::optional<DenseFusion> dense = std::nullopt;
};

// Grad-check cases on both sides of a kink at 0, |x| >= 0.1 (the checker's
// step is 1e-3).
std::vector<GradCheckCase> BothSidesOfZero(Attrs attrs = {}) {
  return {{.inputs = {{.shape = {2, 3}, .lo = 0.1, .hi = 2}}, .attrs = attrs},
          {.inputs = {{.shape = {2, 3}, .lo = -2, .hi = -0.1}}, .attrs = attrs}};
}

std::vector<GradCheckCase> Smooth(double lo, double hi, Attrs attrs = {}) {
  return {{.inputs = {{.shape = {2, 3}, .lo = lo, .hi = hi}}, .attrs = std::move(attrs)}};
}

// The derivations of each gradient are in the comments; dy/dx is what
// EltwiseGrad multiplies dy by.
const std::vector<ActivationRow>& Rows() {
  static const auto* rows = new std::vector<ActivationRow>{
      {.keras = "linear", .op = "", .build = [](const Scope&, Output x) { return x; }},
      // sigmoid: y = 1 / (1 + exp(-x)); dy/dx = y (1 - y).
      {.keras = "sigmoid",
       .op = "Sigmoid",
       .eltwise = [](const Node&) {
         return FromDst(algorithm::eltwise_logistic, algorithm::eltwise_logistic_use_dst_for_bwd);
       },
       .grad_checks = Smooth(-4, 4),
       .dense = DenseFusion{algorithm::eltwise_logistic, algorithm::eltwise_logistic_use_dst_for_bwd}},
      // tanh: dy/dx = 1 - y^2.
      {.keras = "tanh",
       .op = "Tanh",
       .eltwise = [](const Node&) { return FromDst(algorithm::eltwise_tanh, algorithm::eltwise_tanh_use_dst_for_bwd); },
       .grad_checks = Smooth(-2, 2),
       .dense = DenseFusion{algorithm::eltwise_tanh, algorithm::eltwise_tanh_use_dst_for_bwd}},
      // relu: y = max(x, 0); dy/dx = [x > 0] = [y > 0] (0 at x = 0, as oneDNN
      // and TF), so y serves the backward; at a NaN input dx = dy (PyTorch).
      {.keras = "relu",
       .op = "Relu",
       .eltwise = [](const Node&) { return FromDst(NanKeepingRelu(0), algorithm::eltwise_relu_use_dst_for_bwd); },
       .grad_checks = BothSidesOfZero(),
       .dense = DenseFusion{algorithm::eltwise_relu, algorithm::eltwise_relu_use_dst_for_bwd}},
      // leaky relu: y = x (x > 0), alpha x (x <= 0); dy/dx = 1 (x > 0), alpha
      // (x <= 0). From x: y would do only for alpha >= 0, and alpha is the user's.
      // The default alpha is Keras 3's activations.leaky_relu negative_slope.
      {.keras = "leaky_relu",
       .op = "LeakyRelu",
       .eltwise = [](const Node& n) { return FromSrc(algorithm::eltwise_relu, AlphaAttr(n)); },
       .attrs = {OptionalAttr("alpha", kLeakyReluDefaultAlpha).Finite()},
       .grad_checks = BothSidesOfZero({{"alpha", 0.2}})},
      // elu: y = x (x > 0), alpha (exp(x) - 1) (x <= 0);
      // dy/dx = 1 (x > 0), alpha exp(x) (x <= 0). Kinked at 0 unless alpha = 1.
      {.keras = "elu",
       .op = "Elu",
       .eltwise = [](const Node& n) { return FromSrc(algorithm::eltwise_elu, AlphaAttr(n)); },
       .attrs = {OptionalAttr("alpha", kEluDefaultAlpha).Finite()},
       .grad_checks = BothSidesOfZero({{"alpha", 0.5}}),
       .dense = DenseFusion{algorithm::eltwise_elu, algorithm::eltwise_elu_use_dst_for_bwd, kEluDefaultAlpha}},
      // selu: y = scale * elu(x, alpha) with Klambauer et al.'s constants;
      // dy/dx = scale (x >= 0), scale alpha exp(x) (x < 0): SeluDerivative.
      {.keras = "selu",
       .op = "Selu",
       .eltwise = [](const Node&) {
         EltwiseSpec spec{algorithm::eltwise_elu, algorithm::eltwise_elu, false, static_cast<float>(kSeluAlpha),
                          0, static_cast<float>(kSeluScale)};
         spec.derivative_loop = SeluDerivative;
         return spec;
       },
       .grad_checks = BothSidesOfZero()},
      // relu6: y = min(max(x, 0), 6); kinked at 0 and 6.
      {.keras = "relu6",
       .op = "Relu6",
       .eltwise = [](const Node&) { return Loops(Relu6, Relu6Derivative); },
       .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = 0.1, .hi = 5.9}}},
                       {.inputs = {{.shape = {2, 3}, .lo = -2, .hi = -0.1}}},
                       {.inputs = {{.shape = {2, 3}, .lo = 6.1, .hi = 8}}}}},
      {.keras = "softsign",
       .op = "Softsign",
       .eltwise = [](const Node&) { return Loops(Softsign, SoftsignDerivative); },
       .grad_checks = BothSidesOfZero()},
      // gelu (erf): y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;
      // dy/dx = Phi(x) + x phi(x), phi the standard normal density.
      // gelu (tanh): y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
      // dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
      {.keras = "gelu",
       .op = "Gelu",
       .eltwise = [](const Node& n) {
         return FromSrc(n.attr<bool>("approximate") ? algorithm::eltwise_gelu_tanh : algorithm::eltwise_gelu_erf);
       },
       .attrs = {OptionalAttr("approximate", false)},
       .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = -3, .hi = 3}}},
                       {.inputs = {{.shape = {2, 3}, .lo = -3, .hi = 3}}, .attrs = {{"approximate", true}}}}},
      // silu (Keras 3's name; "swish" is its alias): y = x s(x), s = sigmoid;
      // dy/dx = s(x) + x s(x) (1 - s(x)). oneDNN's swish is
      // x * sigmoid(alpha * x); Keras's has alpha = 1.
      {.keras = "silu",
       .op = "Silu",
       .aliases = {"swish"},
       .eltwise = [](const Node&) { return FromSrc(algorithm::eltwise_swish, 1.0f); },
       .grad_checks = Smooth(-4, 4)},
      // softplus: y = log(1 + exp(x)); dy/dx = sigmoid(x). oneDNN 2.6's
      // soft_relu is log(1 + exp(x)) and ignores alpha (3.x added a slope).
      {.keras = "softplus",
       .op = "Softplus",
       .eltwise = [](const Node&) { return FromSrc(algorithm::eltwise_soft_relu); },
       .grad_checks = Smooth(-4, 4)},
      // mish (Misra 2019, Keras 3's activations.mish): y = x tanh(softplus(x));
      // with t = tanh(softplus(x)), dy/dx = t + x (1 - t^2) sigmoid(x).
      {.keras = "mish",
       .op = "Mish",
       .eltwise = [](const Node&) { return FromSrc(algorithm::eltwise_mish); },
       .grad_checks = Smooth(-3, 3)},
      // hard_silu (Keras 3; "hard_swish" in Keras 2): y = x relu6(x + 3) / 6
      // (oneDNN 2.6's hardswish); dy/dx = 0 (x <= -3), (2x + 3) / 6
      // (-3 < x < 3), 1 (x >= 3), as TensorFlow differentiates relu6 at
      // its kinks. Kinked at -3 and 3.
      {.keras = "hard_silu",
       .op = "HardSilu",
       .aliases = {"hard_swish"},
       .eltwise = [](const Node&) { return FromSrc(algorithm::eltwise_hardswish); },
       .grad_checks = Smooth(-2.5, 2.5)},
      // Ops of other files, with Keras's defaults.
      // Not fusable into Dense: oneDNN 2.6's exp post-op turns NaN into inf;
      // the Exp op puts NaN back (ops/math.cc).
      {.keras = "exponential", .op = "Exp", .build = Exp},  // ops/math.h
      {.keras = "softmax", .op = "Softmax", .build = Softmax},            // ops/softmax.h
      {.keras = "log_softmax", .op = "LogSoftmax", .build = LogSoftmax},  // ops/softmax.h
      {.keras = "hard_sigmoid", .op = "HardSigmoid", .build = HardSigmoid},  // ops/hard_sigmoid.h
      {.keras = "rrelu", .op = "RRelu", .build = [](const Scope& s, Output x) { return RRelu(s, x); }},  // ops/rrelu.h
  };
  return *rows;
}

const ActivationRow* FindByOp(std::string_view op) {
  for (const ActivationRow& row : Rows()) {
    if (row.eltwise != nullptr && op == row.op) return &row;
  }
  return nullptr;
}

const ActivationRow* FindByKerasName(std::string_view name) {
  for (const ActivationRow& row : Rows()) {
    if (name == row.keras) return &row;
    for (const char* alias : row.aliases) {
      if (name == alias) return &row;
    }
  }
  return nullptr;
}

// The spec of a forward activation node or of an EltwiseGrad node (whose
// attrs are the forward node's plus "activation").
absl::StatusOr<EltwiseSpec> SpecOf(const Node& node) {
  const std::string& op = node.op_name() == kEltwiseGrad ? node.attr<std::string>(kActivationAttr) : node.op_name();
  const ActivationRow* row = FindByOp(op);
  if (row == nullptr) {
    std::vector<std::string> ops;
    for (const ActivationRow& r : Rows()) {
      if (r.eltwise != nullptr) ops.push_back(r.op);
    }
    return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "': '", op,
                                                   "' is not an eltwise activation; one of ",
                                                   absl::StrJoin(ops, ", ")));
  }
  return row->eltwise(node);
}

// Runs a fixed sequence of oneDNN primitives (SELU: elu, then linear in place).
class EltwiseKernel : public Kernel {
 public:
  void Add(dnnl::primitive p, std::unordered_map<int, dnnl::memory> args) {
    steps_.push_back({std::move(p), std::move(args)});
  }
  absl::Status Run(const RunContext&) override {
    for (auto& [primitive, args] : steps_) primitive.execute(CpuStream(), args);
    CpuStream().wait();
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, dnnl::memory>>> steps_;
};

// dst *= scale, in place (eltwise_linear: alpha * x + beta).
void AddScale(EltwiseKernel& kernel, const dnnl::memory::desc& md, dnnl::memory dst, float scale) {
  dnnl::eltwise_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, algorithm::eltwise_linear, md, scale, 0.0f}, CpuEngine());
  kernel.Add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
}

// ---------------------------------------------------------------- forward

absl::Status InferActivation(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  if (absl::StatusOr<EltwiseSpec> spec = SpecOf(ctx.node()); !spec.ok()) return spec.status();
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// y = scale * eltwise(x) over the flattened tensor (elementwise: layout-free).
// y[i] = f(x[i]) (the loop form of an activation).
absl::StatusOr<std::unique_ptr<Kernel>> LoopKernel(const KernelContext& k, ScalarFn f) {
  const float* x = k.in<const float>(0);
  float* y = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  return MakeKernel([=](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
    return absl::OkStatus();
  });
}

// dx[i] = dy[i] * df(x[i]); dx may be dy's buffer (in place).
absl::StatusOr<std::unique_ptr<Kernel>> DerivativeLoopKernel(const KernelContext& k, ScalarFn df) {
  const float* dy = k.in<const float>(0);
  const float* x = k.in<const float>(1);
  float* dx = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  return MakeKernel([=](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * df(x[i]);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> ActivationKernel(const KernelContext& k) {
  GF_ASSIGN_OR_RETURN(EltwiseSpec spec, SpecOf(k.node));
  const int64_t n = k.out_shape(0).NumElements();
  if (n == 0) return nullptr;
  if (spec.forward_loop != nullptr) return LoopKernel(k, spec.forward_loop);
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    dnnl::memory::desc md = PlainDesc(Shape{n});
    auto prop = k.phase == Phase::kTrain ? dnnl::prop_kind::forward_training
                                         : dnnl::prop_kind::forward_inference;
    dnnl::eltwise_forward::primitive_desc pd({prop, spec.forward, md, spec.alpha, spec.beta},
                                             CpuEngine());
    dnnl::memory src = MemoryAt(md, k.inputs[0]), dst = MemoryAt(md, k.outputs[0]);
    auto kernel = std::make_unique<EltwiseKernel>();
    kernel->Add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    if (spec.scale != 1.0f) AddScale(*kernel, md, dst, spec.scale);
    return std::unique_ptr<Kernel>(std::move(kernel));
  });
}

// dx = f'(x) * dy for every activation f; the per-activation derivations are
// above each registration below. The EltwiseGrad node carries the forward
// node's attrs (alpha, approximate) plus the forward op's name, and reads y
// instead of x where the derivative is a function of y (oneDNN's
// *_use_dst_for_bwd algorithms), so x need not stay alive for the backward.
std::vector<Output> ActivationGrad(GradContext& g) {
  absl::StatusOr<EltwiseSpec> spec = SpecOf(g.node);
  if (!spec.ok()) {
    g.scope.graph().RecordError(spec.status());
    return {Output{}};
  }
  // The forward node's attrs with their defaults resolved: EltwiseGrad
  // serves every activation, so it declares no defaults of its own.
  Attrs attrs;
  for (const AttrDef& def : g.node.op->attrs) attrs[def.name] = *g.node.FindAttr(def.name);
  attrs[kActivationAttr] = g.node.op_name();
  Output data = spec->from_dst ? g.y() : g.x(0);
  return {g.scope.graph().AddNode1(g.scope, kEltwiseGrad, {g.dy[0], data}, std::move(attrs),
                                   absl::StrCat(g.node.op_name(), "Grad"))};
}

// The forward op's name, and every attr of an eltwise row, without
// defaults: ActivationGrad copies them resolved from the forward node.
std::vector<AttrDef> EltwiseGradAttrs() {
  std::vector<AttrDef> attrs = {RequiredAttr(kActivationAttr, AttrType::kString)};
  for (const ActivationRow& row : Rows()) {
    for (const AttrDef& def : row.attrs) {
      if (!FindAttrDef(OpDef{.attrs = attrs}, def.name)) attrs.push_back(OptionalAttr(def.name, def.type));
    }
  }
  return attrs;
}

OpDef ActivationOp(const ActivationRow& row) {
  return OpDef{
      .name = row.op,
      .num_inputs = 1,
      .attrs = row.attrs,
      .infer = InferActivation,
      .kernel = ActivationKernel,
      .grad = ActivationGrad,
      .grad_checks = row.grad_checks,
      .inplace_input = 0,  // oneDNN eltwise runs with dst == src
  };
}

// Registers the op of every row this file computes.
bool RegisterEltwiseActivations() {
  for (const ActivationRow& row : Rows()) {
    if (row.eltwise != nullptr) RegisterOp(ActivationOp(row));
  }
  return true;
}

}  // namespace

[[maybe_unused]] static const bool kEltwiseActivationsRegistered = RegisterEltwiseActivations();

// ---------------------------------------------------------------- backward

// EltwiseGrad(dy, x or y) -> dx = scale * eltwise_backward(dy, x or y).
GF_REGISTER_OP(OpDef{
    .name = kEltwiseGrad,
    .num_inputs = 2,
    // The forward op's name and its attrs, defaults resolved (ActivationGrad).
    .attrs = EltwiseGradAttrs(),
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
      if (absl::StatusOr<EltwiseSpec> spec = SpecOf(ctx.node()); !spec.ok()) return spec.status();
      Shape a = ctx.shape(0), b = ctx.shape(1);
      if (!a.SameUpToBatch(b)) {
        return ctx.Error(absl::StrCat("the gradient ", ctx.Describe(0), " and the activation's ",
                                      ctx.Describe(1), " must have the same shape"));
      }
      if (a.rank() > 0 && a[0] < 0) a[0] = b[0];
      ctx.AddOutput(DType::kF32, a);
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(EltwiseSpec spec, SpecOf(k.node));
      const int64_t n = k.out_shape(0).NumElements();
      if (n == 0) return nullptr;
      if (spec.derivative_loop != nullptr) return DerivativeLoopKernel(k, spec.derivative_loop);
      return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
        dnnl::memory::desc md = PlainDesc(Shape{n});
        dnnl::eltwise_forward::primitive_desc hint(
            {dnnl::prop_kind::forward_training, spec.backward, md, spec.alpha, spec.beta},
            CpuEngine());
        dnnl::eltwise_backward::primitive_desc pd({spec.backward, md, md, spec.alpha, spec.beta},
                                                  CpuEngine(), hint);
        dnnl::memory diff_dst = MemoryAt(md, k.inputs[0]), data = MemoryAt(md, k.inputs[1]);
        dnnl::memory diff_src = MemoryAt(md, k.outputs[0]);
        auto kernel = std::make_unique<EltwiseKernel>();
        kernel->Add(dnnl::eltwise_backward(pd),
                    {{DNNL_ARG_DIFF_DST, diff_dst},
                     {spec.from_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, data},
                     {DNNL_ARG_DIFF_SRC, diff_src}});
        if (spec.scale != 1.0f) AddScale(*kernel, md, diff_src, spec.scale);
        return std::unique_ptr<Kernel>(std::move(kernel));
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
    .inplace_input = 0,  // oneDNN eltwise backward runs with diff_src == diff_dst
});

// ---------------------------------------------------------------- builders

namespace {
Output AddActivation(const Scope& scope, const char* op, Output x, Attrs attrs = {}) {
  return scope.graph().AddNode1(scope, op, {x}, std::move(attrs));
}
}  // namespace

Output Sigmoid(const Scope& scope, Output x) { return AddActivation(scope, "Sigmoid", x); }
Output Tanh(const Scope& scope, Output x) { return AddActivation(scope, "Tanh", x); }
Output Relu(const Scope& scope, Output x) { return AddActivation(scope, "Relu", x); }
Output LeakyRelu(const Scope& scope, Output x, double alpha) {
  return AddActivation(scope, "LeakyRelu", x, {{"alpha", alpha}});
}
Output Elu(const Scope& scope, Output x, double alpha) { return AddActivation(scope, "Elu", x, {{"alpha", alpha}}); }
Output Selu(const Scope& scope, Output x) { return AddActivation(scope, "Selu", x); }
Output Gelu(const Scope& scope, Output x, bool approximate) {
  return AddActivation(scope, "Gelu", x, {{"approximate", approximate}});
}
Output Silu(const Scope& scope, Output x) { return AddActivation(scope, "Silu", x); }
Output Swish(const Scope& scope, Output x) { return Silu(scope, x); }
Output Softplus(const Scope& scope, Output x) { return AddActivation(scope, "Softplus", x); }

std::vector<std::string> ActivationNames() {
  std::vector<std::string> names;
  for (const ActivationRow& row : Rows()) {
    names.push_back(row.keras);
    names.insert(names.end(), row.aliases.begin(), row.aliases.end());
  }
  return names;
}

std::string CanonicalActivationName(std::string_view name) {
  const ActivationRow* row = FindByKerasName(name);
  return row == nullptr ? std::string(name) : row->keras;
}

std::string ActivationOpName(std::string_view name) {
  const ActivationRow* row = FindByKerasName(name);
  return row == nullptr ? "" : row->op;
}

Output Activation(const Scope& scope, Output x, std::string_view name) {
  if (name.empty()) return x;  // Keras: activation=None is linear
  if (const ActivationRow* row = FindByKerasName(name)) {
    // Rows of this file's ops take their declared defaults (Keras's).
    return row->build != nullptr ? row->build(scope, x) : AddActivation(scope, row->op, x);
  }
  scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(
      "unknown activation '", std::string(name), "'",
      scope.prefix().empty() ? "" : absl::StrCat(" in scope '", scope.prefix(), "'"),
      "; valid names: ", absl::StrJoin(ActivationNames(), ", "), " (or \"\" for linear)")));
  return Output{};
}

std::optional<std::pair<dnnl::algorithm, std::pair<float, float>>> EltwiseAlgorithmOf(
    const Node& node) {
  if (node.op == nullptr) return std::nullopt;
  const ActivationRow* row = FindByOp(node.op_name());
  if (row == nullptr) return std::nullopt;
  EltwiseSpec spec = row->eltwise(node);
  if (spec.scale != 1.0f) return std::nullopt;  // SELU: elu then linear
  if (spec.forward_loop != nullptr) return std::nullopt;  // no oneDNN algorithm
  return std::make_pair(spec.forward, std::make_pair(spec.alpha, spec.beta));
}

bool IsFusableActivation(std::string_view name) { return FusedActivationOf(name, 0).has_value(); }

std::vector<std::string> FusableActivationNames() {
  std::vector<std::string> names;
  for (const ActivationRow& row : Rows()) {
    if (row.dense) names.push_back(row.keras);
  }
  return names;
}

std::optional<FusedEltwise> FusedActivationOf(std::string_view name, std::optional<double> alpha) {
  const ActivationRow* row = FindByKerasName(name);
  if (row == nullptr || !row->dense) return std::nullopt;
  const double a = alpha.value_or(row->dense->default_alpha);
  algorithm forward = row->dense->forward;
  if (forward == algorithm::eltwise_relu) forward = NanKeepingRelu(static_cast<float>(a));
  return FusedEltwise{forward, row->dense->backward_from_dst, a};
}

}  // namespace gradflow::ops
