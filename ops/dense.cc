#include "ops/dense.h"

#include <omp.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "graph/autotune.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

using dnnl::algorithm;
using dnnl::inner_product_backward_data;
using dnnl::inner_product_backward_weights;
using dnnl::inner_product_forward;
using dnnl::memory;
using dnnl::prop_kind;


constexpr char kBackwardOpReason[] = "backward op; second derivatives are not supported";

// A [rows, cols] matrix (f32, or bf16 under mixed precision) stored row-major, or (transposed) a [cols, rows]
// row-major buffer read as its transpose: only the strides differ, so oneDNN
// reads the buffer in place.
memory::desc MatrixDesc(int64_t rows, int64_t cols, bool transposed,
                        memory::data_type dt = memory::data_type::f32) {
  return memory::desc({rows, cols}, dt, transposed ? memory::dims{1, rows} : memory::dims{cols, 1});
}

// The two operands of a Dense op's product (x and kernel, dy and kernel, x
// and dy): both f32, or both bf16 (a mixed-precision policy; the product
// accumulates in f32 and its result is f32).
absl::Status CheckProductOperands(const InferContext& ctx, int a, int b) {
  if (ctx.dtype(a) != DType::kF32 && ctx.dtype(a) != DType::kBF16) return ctx.ExpectDType(a, DType::kF32);
  return ctx.ExpectDType(b, ctx.dtype(a));
}

// The type of a Dense op kernel's operands (its first two inputs).
memory::data_type OperandType(const KernelContext& k) { return DnnlType(k.input_types[0].dtype); }
bool InBFloat16(const KernelContext& k) { return k.input_types[0].dtype == DType::kBF16; }

// ---------------------------------------------------------------- MatMul

bool TransposeA(const Node& node) { return node.attr<bool>("transpose_a"); }
bool TransposeB(const Node& node) { return node.attr<bool>("transpose_b"); }

absl::Status InferMatMul(InferContext& ctx) {
  for (int i = 0; i < 2; ++i) {
    GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
    if (ctx.shape(i).rank() != 2) {
      return ctx.Error(absl::StrCat("needs rank-2 inputs, got ", ctx.Describe(i)));
    }
  }
  const bool ta = TransposeA(ctx.node()), tb = TransposeB(ctx.node());
  const Shape& a = ctx.shape(0);
  const Shape& b = ctx.shape(1);
  const int64_t m = ta ? a[1] : a[0], ka = ta ? a[0] : a[1];
  const int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  if (ka >= 0 && kb >= 0 && ka != kb) {
    return ctx.Error(absl::StrCat("inner dimensions differ: ", ctx.Describe(0),
                                  ta ? " (transposed)" : "", " gives ", ka, ", ", ctx.Describe(1),
                                  tb ? " (transposed)" : "", " gives ", kb));
  }
  ctx.AddOutput(DType::kF32, Shape{m, n});
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Kernel>> MatMulKernel(const KernelContext& k) {
  return WithDnnl(k.node, [&]() -> std::unique_ptr<Kernel> {
    const bool ta = TransposeA(k.node), tb = TransposeB(k.node);
    const int64_t m = k.out_shape(0)[0], n = k.out_shape(0)[1];
    const int64_t kk = ta ? k.in_shape(0)[0] : k.in_shape(0)[1];
    memory::desc src = MatrixDesc(m, kk, ta);
    memory::desc weights = MatrixDesc(kk, n, tb);
    memory::desc dst = PlainDesc(k.out_shape(0));
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), CpuEngine());
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, MemoryAt(src, k.inputs[0])},
                                            {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[1])},
                                            {DNNL_ARG_DST, MemoryAt(dst, k.outputs[0])}};
    return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
  });
}

// C = op(A)·op(B). With dC the incoming gradient (TensorFlow's MatMul grad):
//   C = A·B:    dA = dC·Bᵀ    dB = Aᵀ·dC
//   C = Aᵀ·B:   dA = B·dCᵀ    dB = A·dC
//   C = A·Bᵀ:   dA = dC·B     dB = dCᵀ·A
//   C = Aᵀ·Bᵀ:  dA = Bᵀ·dCᵀ   dB = dCᵀ·Aᵀ
// Each is one MatMul node with transpose flags: nothing is transposed in memory.
std::vector<Output> MatMulGrad(GradContext& g) {
  const bool ta = TransposeA(g.node), tb = TransposeB(g.node);
  Output a = g.x(0), b = g.x(1), dc = g.dy[0];
  if (!ta && !tb) return {MatMul(g.scope, dc, b, false, true), MatMul(g.scope, a, dc, true, false)};
  if (ta && !tb) return {MatMul(g.scope, b, dc, false, true), MatMul(g.scope, a, dc, false, false)};
  if (!ta && tb) return {MatMul(g.scope, dc, b, false, false), MatMul(g.scope, dc, a, true, false)};
  return {MatMul(g.scope, b, dc, true, true), MatMul(g.scope, dc, a, true, true)};
}

Attrs TransposeAttrs(bool ta, bool tb) { return {{"transpose_a", ta}, {"transpose_b", tb}}; }

GF_REGISTER_OP(OpDef{
    .name = "MatMul",
    .num_inputs = 2,
    .attrs = {OptionalAttr("transpose_a", false), OptionalAttr("transpose_b", false)},
    .infer = InferMatMul,
    .kernel = MatMulKernel,
    .grad = MatMulGrad,
    .grad_checks = {{.inputs = {{.shape = {2, 3}}, {.shape = {3, 4}}}, .attrs = TransposeAttrs(false, false)},
                    {.inputs = {{.shape = {3, 2}}, {.shape = {3, 4}}}, .attrs = TransposeAttrs(true, false)},
                    {.inputs = {{.shape = {2, 3}}, {.shape = {4, 3}}}, .attrs = TransposeAttrs(false, true)},
                    {.inputs = {{.shape = {3, 2}}, {.shape = {4, 3}}}, .attrs = TransposeAttrs(true, true)}},
});

// ---------------------------------------------------------------- BiasAdd

// Rows and columns of x viewed as a matrix whose columns run along the last axis.
// Callers copy the result into named variables rather than structured
// bindings: clang 14 (Debian 12, used by tools/fuzz.sh) cannot capture
// bindings in lambdas.
std::pair<int64_t, int64_t> RowsCols(const Shape& shape) {
  const int64_t cols = shape[shape.rank() - 1];
  return {cols == 0 ? 0 : shape.NumElements() / cols, cols};
}

absl::Status InferBiasAdd(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
  const Shape& x = ctx.shape(0);
  const Shape& b = ctx.shape(1);
  if (x.rank() < 2) return ctx.Error(absl::StrCat("x must have rank >= 2, got ", ctx.Describe(0)));
  if (b.rank() != 1 || b[0] != x[x.rank() - 1]) {
    return ctx.Error(absl::StrCat("the bias must be a vector as long as the last axis of x: ",
                                  ctx.Describe(1), " vs ", ctx.Describe(0)));
  }
  ctx.AddOutput(DType::kF32, x);
  return absl::OkStatus();
}

// y = x + b broadcast over rows: oneDNN's binary add with src1 {1, cols}.
absl::StatusOr<std::unique_ptr<Kernel>> BiasAddKernel(const KernelContext& k) {
  return WithDnnl(k.node, [&]() -> std::unique_ptr<Kernel> {
    const std::pair<int64_t, int64_t> rows_cols = RowsCols(k.in_shape(0));
    const int64_t rows = rows_cols.first, cols = rows_cols.second;
    memory::desc x = PlainDesc(Shape{rows, cols});
    memory::desc b = PlainDesc(Shape{1, cols});
    dnnl::binary::primitive_desc pd(dnnl::binary::desc(algorithm::binary_add, x, b, x), CpuEngine());
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC_0, MemoryAt(x, k.inputs[0])},
                                            {DNNL_ARG_SRC_1, MemoryAt(b, k.inputs[1])},
                                            {DNNL_ARG_DST, MemoryAt(x, k.outputs[0])}};
    return std::make_unique<PrimitiveKernel>(dnnl::binary(pd), std::move(args));
  });
}

// y = x + 1·bᵀ: dx = dy; db[j] = Σ_rows dy[r, j] (BiasAddGrad).
std::vector<Output> BiasAddGrad(GradContext& g) {
  return {g.dy[0], g.scope.graph().AddNode1(g.scope, "BiasAddGrad", {g.dy[0]})};
}

GF_REGISTER_OP(OpDef{
    .name = "BiasAdd",
    .num_inputs = 2,
    .infer = InferBiasAdd,
    .kernel = BiasAddKernel,
    .grad = BiasAddGrad,
    .grad_checks = {{.inputs = {{.shape = {3, 4}}, {.shape = {4}}}},
                    {.inputs = {{.shape = {2, 2, 3}}, {.shape = {3}}}}},
    .inplace_input = 0,  // oneDNN binary runs with dst == src0
});

// Columns per task of the column-sum loop: 64 floats = four AVX-512 vectors,
// so the inner loop over a row's slice vectorizes.
constexpr int64_t kColumnBlock = 64;

// db[j] = Σ_r dy[r, j]. oneDNN's reduction primitive runs a slow reference
// kernel here (BUILDING.md), so: blocks of columns in parallel, the rows of a
// block in order. Each sum is serial over rows: results do not depend on the
// thread count.
absl::StatusOr<std::unique_ptr<Kernel>> BiasAddGradKernel(const KernelContext& k) {
  const std::pair<int64_t, int64_t> rows_cols = RowsCols(k.in_shape(0));
  const int64_t rows = rows_cols.first, cols = rows_cols.second;
  const float* dy = k.in<const float>(0);
  float* db = k.out<float>(0);
  return MakeKernel([=](const RunContext&) {
    const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t j0 = blk * kColumnBlock, j1 = std::min(cols, j0 + kColumnBlock);
      float* out = db + j0;
      const int64_t w = j1 - j0;
      std::fill(out, out + w, 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = dy + r * cols + j0;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) out[j] += row[j];
      }
    }
    return absl::OkStatus();
  });
}

GF_REGISTER_OP(OpDef{
    .name = "BiasAddGrad",
    .num_inputs = 1,
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      if (ctx.shape(0).rank() < 2) {
        return ctx.Error(absl::StrCat("dy must have rank >= 2, got ", ctx.Describe(0)));
      }
      ctx.AddOutput(DType::kF32, Shape{ctx.shape(0)[ctx.shape(0).rank() - 1]});
      return absl::OkStatus();
    },
    .kernel = BiasAddGradKernel,
    .no_gradient_reason = kBackwardOpReason,
});

// ---------------------------------------------------------------- activations fused into Dense

// attrs of Dense and DenseActivationGrad: "" is no activation.
std::vector<AttrDef> FusedActivationAttrs() {
  return {OptionalAttr("activation", std::string()), OptionalAttr("activation_alpha", 0.0),
          OptionalAttr("activation_beta", 0.0)};
}

const std::string& ActivationName(const Node& node) { return node.attr<std::string>("activation"); }
double ActivationAlpha(const Node& node) { return node.attr<double>("activation_alpha"); }
double ActivationBeta(const Node& node) { return node.attr<double>("activation_beta"); }

// The fused activation of a Dense or DenseActivationGrad node (ops/activations.h).
std::optional<FusedEltwise> FusedOf(const Node& node) {
  return FusedActivationOf(ActivationName(node), ActivationAlpha(node));
}

// Checks the activation attrs; OK with `found` empty means "none".
absl::Status CheckActivation(const InferContext& ctx, std::optional<FusedEltwise>* found) {
  const std::string& name = ActivationName(ctx.node());
  *found = std::nullopt;
  if (name.empty()) return absl::OkStatus();
  *found = FusedOf(ctx.node());
  if (!*found) {
    return ctx.Error(absl::StrCat("cannot fuse activation '", name, "'; fusable: ",
                                  absl::StrJoin(FusableActivationNames(), ", "),
                                  " (apply other activations as a separate op)"));
  }
  // The *_use_dst_for_bwd derivatives of relu and elu need alpha >= 0 (oneDNN).
  if (ActivationAlpha(ctx.node()) < 0) {
    return ctx.Error(absl::StrCat("fused activation '", name, "' needs alpha >= 0, got ",
                                  ActivationAlpha(ctx.node())));
  }
  return absl::OkStatus();
}

Attrs ActivationAttrs(const Node& node) {
  return {{"activation", ActivationName(node)},
          {"activation_alpha", ActivationAlpha(node)},
          {"activation_beta", ActivationBeta(node)}};
}

// dz = dy · act'(z), with act'(z) written in terms of y = act(z) (oneDNN's
// *_use_dst_for_bwd algorithms): relu: dy·(y > 0 ? 1 : alpha); elu: dy·(y > 0 ?
// 1 : y + alpha); tanh: dy·(1 − y²); sigmoid: dy·y·(1 − y); exponential: dy·y.
absl::StatusOr<std::unique_ptr<Kernel>> DenseActivationGradKernel(const KernelContext& k) {
  return WithDnnl(k.node, [&]() -> std::unique_ptr<Kernel> {
    const std::optional<FusedEltwise> act = FusedOf(k.node);
    const float alpha = static_cast<float>(ActivationAlpha(k.node));
    const float beta = static_cast<float>(ActivationBeta(k.node));
    memory::desc md = PlainDesc(k.in_shape(0));
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(prop_kind::forward_training, act->backward_from_dst, md, alpha, beta),
        CpuEngine());
    dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(act->backward_from_dst, md, md, alpha, beta), CpuEngine(), hint);
    std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, MemoryAt(md, k.inputs[0])},
                                            {DNNL_ARG_DST, MemoryAt(md, k.inputs[1])},
                                            {DNNL_ARG_DIFF_SRC, MemoryAt(md, k.outputs[0])}};
    return std::make_unique<PrimitiveKernel>(dnnl::eltwise_backward(pd), std::move(args));
  });
}

GF_REGISTER_OP(OpDef{
    .name = "DenseActivationGrad",
    .num_inputs = 2,  // dy, y
    .attrs = FusedActivationAttrs(),
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
      if (ctx.shape(0) != ctx.shape(1)) {
        return ctx.Error(absl::StrCat(ctx.Describe(0), " differs in shape from ", ctx.Describe(1)));
      }
      std::optional<FusedEltwise> act;
      GF_RETURN_IF_ERROR(CheckActivation(ctx, &act));
      if (!act) return ctx.Error("needs an 'activation' attr");
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = DenseActivationGradKernel,
    .no_gradient_reason = kBackwardOpReason,
    .inplace_input = 0,  // oneDNN eltwise backward runs with diff_src == diff_dst
});

// ---------------------------------------------------------------- Dense

absl::Status InferDense(InferContext& ctx) {
  if (ctx.num_inputs() != 2 && ctx.num_inputs() != 3) {
    return ctx.Error(absl::StrCat("takes x, kernel and an optional bias, got ", ctx.num_inputs(),
                                  " inputs"));
  }
  GF_RETURN_IF_ERROR(CheckProductOperands(ctx, 0, 1));
  if (ctx.num_inputs() == 3) GF_RETURN_IF_ERROR(ctx.ExpectDType(2, DType::kF32));
  const Shape& x = ctx.shape(0);
  const Shape& w = ctx.shape(1);
  if (x.rank() != 2) {
    return ctx.Error(absl::StrCat("needs a rank-2 input [batch, features], got ", ctx.Describe(0),
                                  "; flatten first (ops::Flatten)"));
  }
  if (w.rank() != 2) {
    return ctx.Error(absl::StrCat("the kernel must be [in, out], got ", ctx.Describe(1)));
  }
  if (w[0] != x[1]) {
    return ctx.Error(absl::StrCat(ctx.Describe(0), " has ", x[1], " features but ", ctx.Describe(1),
                                  " expects ", w[0]));
  }
  if (ctx.num_inputs() == 3 && (ctx.shape(2).rank() != 1 || ctx.shape(2)[0] != w[1])) {
    return ctx.Error(absl::StrCat("the bias must be [", w[1], "] to match ", ctx.Describe(1), ", got ",
                                  ctx.Describe(2)));
  }
  std::optional<FusedEltwise> act;
  GF_RETURN_IF_ERROR(CheckActivation(ctx, &act));
  ctx.AddOutput(DType::kF32, Shape{x[0], w[1]});
  return absl::OkStatus();
}

// The fused activation's post-op, or no attributes.
dnnl::primitive_attr DensePostOp(const Node& node) {
  const std::optional<FusedEltwise> act = FusedOf(node);
  if (!act) return {};
  return EltwisePostOp(act->forward, static_cast<float>(ActivationAlpha(node)),
                       static_cast<float>(ActivationBeta(node)));
}

// A bias [out] as the [1, out] row oneDNN's matmul adds to every row.
memory::desc BiasRowDesc(int64_t out) { return memory::desc({1, out}, memory::data_type::f32, memory::dims{out, 1}); }

std::unique_ptr<Kernel> DenseInnerProduct(const KernelContext& k) {
  const int64_t in = k.in_shape(1)[0], out = k.in_shape(1)[1];
  const bool has_bias = k.inputs.size() == 3;
  memory::desc src = PlainDesc(k.in_shape(0), OperandType(k));
  memory::desc weights = DenseKernelDesc(in, out, OperandType(k));
  memory::desc dst = PlainDesc(k.out_shape(0));
  const prop_kind prop = k.phase == Phase::kTrain ? prop_kind::forward_training : prop_kind::forward_inference;
  inner_product_forward::desc desc =
      has_bias ? inner_product_forward::desc(prop, src, weights, PlainDesc(k.in_shape(2)), dst)
               : inner_product_forward::desc(prop, src, weights, dst);
  inner_product_forward::primitive_desc pd(desc, DensePostOp(k.node), CpuEngine());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, MemoryAt(src, k.inputs[0])},
                                          {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[1])},
                                          {DNNL_ARG_DST, MemoryAt(dst, k.outputs[0])}};
  if (has_bias) args[DNNL_ARG_BIAS] = MemoryAt(PlainDesc(k.in_shape(2)), k.inputs[2]);
  return std::make_unique<PrimitiveKernel>(inner_product_forward(pd), std::move(args));
}

// x [N, in] · W [in, out] as oneDNN's matmul reads W: row-major, in place.
std::unique_ptr<Kernel> DenseMatMul(const KernelContext& k) {
  const int64_t out = k.in_shape(1)[1];
  const bool has_bias = k.inputs.size() == 3;
  memory::desc src = PlainDesc(k.in_shape(0), OperandType(k));
  memory::desc weights = PlainDesc(k.in_shape(1), OperandType(k));
  memory::desc dst = PlainDesc(k.out_shape(0));
  dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(src, weights, BiasRowDesc(out), dst)
                                     : dnnl::matmul::desc(src, weights, dst);
  dnnl::matmul::primitive_desc pd(desc, DensePostOp(k.node), CpuEngine());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, MemoryAt(src, k.inputs[0])},
                                          {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[1])},
                                          {DNNL_ARG_DST, MemoryAt(dst, k.outputs[0])}};
  if (has_bias) args[DNNL_ARG_BIAS] = MemoryAt(BiasRowDesc(out), k.inputs[2]);
  return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
}

// The default route (autotune "first", a fixed choice, so results repeat
// across processes): the matmul for f32 products of at least 16 rows on 2 or
// more threads, the inner product otherwise. gradflow_runner A/B runs on an
// AMX Xeon, matmul vs inner product, 2 threads: W2 train b256 +18%, W1
// predict b256 +20%, W1 train b256 +7%, b1024 +8%, W2 b32 +6%, W1 b32 +1%;
// but 1 thread W1 b32 -6%, predict b1 -11%, and bf16 W1 b256 -6% (AMX
// matmul vs the gemm:jit inner product). The issue-16 EPYC's raw oneDNN
// loops favoured the matmul at 2 threads as well.
bool MatMulByDefault(const KernelContext& k) {
  return !InBFloat16(k) && k.in_shape(0)[0] >= 16 && omp_get_max_threads() >= 2;
}

absl::StatusOr<std::unique_ptr<Kernel>> Implementations(const KernelContext& k,
                                                        std::function<std::unique_ptr<Kernel>()> inner_product,
                                                        std::function<std::unique_ptr<Kernel>()> matmul) {
  if (InBFloat16(k)) GF_RETURN_IF_ERROR(CheckBFloat16Support(absl::StrCat("node '", k.node.name, "'")));
  auto wrap = [&k](std::function<std::unique_ptr<Kernel>()> make) {
    return [&k, make = std::move(make)]() { return WithDnnl(k.node, make); };
  };
  std::vector<KernelCandidate> candidates = {{"inner_product", wrap(std::move(inner_product))},
                                             {"matmul", wrap(std::move(matmul))}};
  if (MatMulByDefault(k)) std::swap(candidates[0], candidates[1]);
  return ChooseKernel(k, candidates);
}

absl::StatusOr<std::unique_ptr<Kernel>> DenseKernel(const KernelContext& k) {
  return Implementations(k, [&k] { return DenseInnerProduct(k); }, [&k] { return DenseMatMul(k); });
}

// y = act(z), z = x·W + b with W [in, out]:
//   dz = dy · act'(z), from y (DenseActivationGrad), or dz = dy without activation;
//   dx = dz·Wᵀ                    (DenseBackwardData: inner_product_backward_data);
//   dW = xᵀ·dz, db = Σ_rows dz    (DenseBackwardWeights: inner_product_backward_weights).
// In bf16 (x and W bf16 casts) dz is cast to bf16 once for both products,
// which return f32: dx and dW leave in f32, as the casts' gradients pass them.
std::vector<Output> DenseGrad(GradContext& g) {
  Graph& graph = g.scope.graph();
  Output dz = g.dy[0];
  if (!ActivationName(g.node).empty()) {
    dz = graph.AddNode1(g.scope, "DenseActivationGrad", {dz, g.y()}, ActivationAttrs(g.node));
  }
  if (g.x(1).dtype() == DType::kBF16) dz = Cast(g.scope, dz, DType::kBF16);
  const bool has_bias = g.node.inputs.size() == 3;
  Output dx = graph.AddNode1(g.scope, "DenseBackwardData", {dz, g.x(1)});
  std::vector<Output> dw = graph.AddNode(g.scope, "DenseBackwardWeights", {g.x(0), dz},
                                         {{"with_bias", has_bias}});
  dw.resize(has_bias ? 2 : 1);  // invalid Outputs if the node failed (error kept in the graph)
  std::vector<Output> grads = {dx};
  grads.insert(grads.end(), dw.begin(), dw.end());
  return grads;
}

Attrs ActivationCase(const char* name) {
  return {{"activation", std::string(name)}, {"activation_alpha", 1.0}, {"activation_beta", 0.0}};
}

GF_REGISTER_OP(OpDef{
    .name = "Dense",
    .num_inputs = -1,  // x, kernel[, bias]
    .attrs = FusedActivationAttrs(),
    .infer = InferDense,
    .kernel = DenseKernel,
    .grad = DenseGrad,
    .grad_checks = {{.inputs = {{.shape = {3, 4}}, {.shape = {4, 2}}, {.shape = {2}}}},
                    {.inputs = {{.shape = {2, 3}}, {.shape = {3, 4}}}},
                    {.inputs = {{.shape = {3, 4}}, {.shape = {4, 2}}, {.shape = {2}}},
                     .attrs = ActivationCase("tanh")},
                    {.inputs = {{.shape = {2, 3}}, {.shape = {3, 2}}, {.shape = {2}}},
                     .attrs = ActivationCase("sigmoid")}},
    .takes_bf16 = true,
});

// The forward primitive descriptor oneDNN's backward inner products take as a
// hint (created here, in the backward kernel's factory).
inner_product_forward::primitive_desc DenseForwardHint(const memory::desc& src,
                                                       const memory::desc& weights,
                                                       const std::optional<memory::desc>& bias,
                                                       const memory::desc& dst) {
  inner_product_forward::desc desc =
      bias ? inner_product_forward::desc(prop_kind::forward_training, src, weights, *bias, dst)
           : inner_product_forward::desc(prop_kind::forward_training, src, weights, dst);
  return inner_product_forward::primitive_desc(desc, CpuEngine());
}

std::unique_ptr<Kernel> BackwardDataInnerProduct(const KernelContext& k) {
  const int64_t in = k.in_shape(1)[0], out = k.in_shape(1)[1];
  memory::desc diff_src = PlainDesc(k.out_shape(0));
  memory::desc weights = DenseKernelDesc(in, out, OperandType(k));
  memory::desc diff_dst = PlainDesc(k.in_shape(0), OperandType(k));
  auto hint = DenseForwardHint(PlainDesc(k.out_shape(0), OperandType(k)), weights, std::nullopt, diff_dst);
  inner_product_backward_data::primitive_desc pd(inner_product_backward_data::desc(diff_src, weights, diff_dst),
                                                 CpuEngine(), hint);
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, MemoryAt(diff_dst, k.inputs[0])},
                                          {DNNL_ARG_WEIGHTS, MemoryAt(weights, k.inputs[1])},
                                          {DNNL_ARG_DIFF_SRC, MemoryAt(diff_src, k.outputs[0])}};
  return std::make_unique<PrimitiveKernel>(inner_product_backward_data(pd), std::move(args));
}

// dx = dy · Wᵀ, Wᵀ read in place through transposed strides.
std::unique_ptr<Kernel> BackwardDataMatMul(const KernelContext& k) {
  const int64_t in = k.in_shape(1)[0], out = k.in_shape(1)[1];
  memory::desc dy = PlainDesc(k.in_shape(0), OperandType(k));
  memory::desc weights_t = MatrixDesc(out, in, /*transposed=*/true, OperandType(k));
  memory::desc dx = PlainDesc(k.out_shape(0));
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(dy, weights_t, dx), CpuEngine());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, MemoryAt(dy, k.inputs[0])},
                                          {DNNL_ARG_WEIGHTS, MemoryAt(weights_t, k.inputs[1])},
                                          {DNNL_ARG_DST, MemoryAt(dx, k.outputs[0])}};
  return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
}

std::unique_ptr<Kernel> BackwardWeightsInnerProduct(const KernelContext& k) {
  const int64_t in = k.in_shape(0)[1], out = k.in_shape(1)[1];
  const bool with_bias = k.outputs.size() == 2;
  memory::desc src = PlainDesc(k.in_shape(0), OperandType(k));
  memory::desc diff_weights = DenseKernelDesc(in, out);
  memory::desc diff_dst = PlainDesc(k.in_shape(1), OperandType(k));
  std::optional<memory::desc> diff_bias;
  if (with_bias) diff_bias = PlainDesc(Shape{out});
  auto hint = DenseForwardHint(src, DenseKernelDesc(in, out, OperandType(k)), diff_bias, diff_dst);
  inner_product_backward_weights::desc desc =
      with_bias ? inner_product_backward_weights::desc(src, diff_weights, *diff_bias, diff_dst)
                : inner_product_backward_weights::desc(src, diff_weights, diff_dst);
  inner_product_backward_weights::primitive_desc pd(desc, CpuEngine(), hint);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, MemoryAt(src, k.inputs[0])},
                                          {DNNL_ARG_DIFF_DST, MemoryAt(diff_dst, k.inputs[1])},
                                          {DNNL_ARG_DIFF_WEIGHTS, MemoryAt(diff_weights, k.outputs[0])}};
  if (with_bias) args[DNNL_ARG_DIFF_BIAS] = MemoryAt(*diff_bias, k.outputs[1]);
  return std::make_unique<PrimitiveKernel>(inner_product_backward_weights(pd), std::move(args));
}

// Several primitives run in order, and the buffers they share.
class PrimitivesKernel : public Kernel {
 public:
  void Add(dnnl::primitive primitive, std::unordered_map<int, memory> args) {
    steps_.push_back({std::move(primitive), std::move(args)});
  }
  // A row of ones in the operands' type (1ᵀ·dy sums the rows).
  void* Ones(int64_t n, DType dtype) {
    ones_.resize(n * SizeOf(dtype));
    if (dtype == DType::kBF16) {
      std::fill_n(reinterpret_cast<uint16_t*>(ones_.data()), n, FloatToBFloat16(1.0f));
    } else {
      std::fill_n(reinterpret_cast<float*>(ones_.data()), n, 1.0f);
    }
    return ones_.data();
  }
  absl::Status Run(const RunContext&) override {
    for (auto& [primitive, args] : steps_) primitive.execute(CpuStream(), args);
    CpuStream().wait();
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> steps_;
  std::vector<char> ones_;
};

// dW = xᵀ · dy (xᵀ read in place through transposed strides) and db = 1ᵀ · dy.
std::unique_ptr<Kernel> BackwardWeightsMatMul(const KernelContext& k) {
  const int64_t rows = k.in_shape(0)[0], in = k.in_shape(0)[1], out = k.in_shape(1)[1];
  auto kernel = std::make_unique<PrimitivesKernel>();
  memory::desc x_t = MatrixDesc(in, rows, /*transposed=*/true, OperandType(k));
  memory::desc dy = PlainDesc(k.in_shape(1), OperandType(k));
  memory::desc dw = PlainDesc(Shape{in, out});
  kernel->Add(dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(x_t, dy, dw), CpuEngine())),
              {{DNNL_ARG_SRC, MemoryAt(x_t, k.inputs[0])},
               {DNNL_ARG_WEIGHTS, MemoryAt(dy, k.inputs[1])},
               {DNNL_ARG_DST, MemoryAt(dw, k.outputs[0])}});
  if (k.outputs.size() == 2) {
    void* ones_data = kernel->Ones(rows, k.input_types[0].dtype);
    memory::desc ones = PlainDesc(Shape{1, rows}, OperandType(k));
    memory::desc db = BiasRowDesc(out);
    kernel->Add(dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ones, dy, db), CpuEngine())),
                {{DNNL_ARG_SRC, MemoryAt(ones, ones_data)},
                 {DNNL_ARG_WEIGHTS, MemoryAt(dy, k.inputs[1])},
                 {DNNL_ARG_DST, MemoryAt(db, k.outputs[1])}});
  }
  return kernel;
}

// dx [N, in] = dy [N, out] · Wᵀ, W [in, out].
GF_REGISTER_OP(OpDef{
    .name = "DenseBackwardData",
    .num_inputs = 2,  // dy, kernel
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckProductOperands(ctx, 0, 1));
      const Shape& dy = ctx.shape(0);
      const Shape& w = ctx.shape(1);
      if (dy.rank() != 2 || w.rank() != 2 || dy[1] != w[1]) {
        return ctx.Error(absl::StrCat("needs dy [N, out] and kernel [in, out], got ", ctx.Describe(0),
                                      " and ", ctx.Describe(1)));
      }
      ctx.AddOutput(DType::kF32, Shape{dy[0], w[0]});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      return Implementations(k, [&k] { return BackwardDataInnerProduct(k); },
                             [&k] { return BackwardDataMatMul(k); });
    },
    .no_gradient_reason = kBackwardOpReason,
    .takes_bf16 = true,
});

// dW [in, out] = xᵀ·dy and, with attr with_bias, db [out] = Σ_rows dy.
GF_REGISTER_OP(OpDef{
    .name = "DenseBackwardWeights",
    .num_inputs = 2,  // x, dy
    .attrs = {OptionalAttr("with_bias", false)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckProductOperands(ctx, 0, 1));
      const Shape& x = ctx.shape(0);
      const Shape& dy = ctx.shape(1);
      if (x.rank() != 2 || dy.rank() != 2 || (x[0] >= 0 && dy[0] >= 0 && x[0] != dy[0])) {
        return ctx.Error(absl::StrCat("needs x [N, in] and dy [N, out], got ", ctx.Describe(0), " and ",
                                      ctx.Describe(1)));
      }
      ctx.AddOutput(DType::kF32, Shape{x[1], dy[1]});
      if (ctx.node().attr<bool>("with_bias")) ctx.AddOutput(DType::kF32, Shape{dy[1]});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) {
      return Implementations(k, [&k] { return BackwardWeightsInnerProduct(k); },
                             [&k] { return BackwardWeightsMatMul(k); });
    },
    .no_gradient_reason = kBackwardOpReason,
    .takes_bf16 = true,
});

}  // namespace

// ---------------------------------------------------------------- builders

Output MatMul(const Scope& scope, Output a, Output b, bool transpose_a, bool transpose_b) {
  return scope.graph().AddNode1(scope, "MatMul", {a, b}, TransposeAttrs(transpose_a, transpose_b));
}

Output BiasAdd(const Scope& scope, Output x, Output bias) {
  return scope.graph().AddNode1(scope, "BiasAdd", {x, bias});
}

Output Dense(const Scope& scope, Output x, Output kernel, Output bias,
             const FusedActivation& activation, DType compute_dtype) {
  if (compute_dtype == DType::kBF16 && x.valid() && kernel.valid()) {
    if (x.dtype() != DType::kBF16) x = Cast(scope, x, DType::kBF16);
    if (kernel.dtype() != DType::kBF16) kernel = Cast(scope, kernel, DType::kBF16);
  }
  std::vector<Output> inputs = {x, kernel};
  if (bias.valid()) inputs.push_back(bias);
  Attrs attrs;
  if (!activation.name.empty()) {
    // An unset alpha is the activation's Keras default (elu 1, relu 0); an
    // activation that cannot be fused is refused by InferDense, naming it.
    const std::optional<FusedEltwise> fused = FusedActivationOf(activation.name, activation.alpha);
    attrs = {{"activation", activation.name},
             {"activation_alpha", fused ? fused->alpha : activation.alpha.value_or(0.0)},
             {"activation_beta", activation.beta}};
  }
  return scope.graph().AddNode1(scope, "Dense", std::move(inputs), std::move(attrs));
}

}  // namespace gradflow::ops
