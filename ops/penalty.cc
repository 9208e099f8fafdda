#include "ops/penalty.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/array.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

constexpr char kPenaltyOp[] = "L1L2Penalty";
constexpr char kPenaltyGradOp[] = "L1L2PenaltyGrad";

// sum(|w|) and sum(w^2) over [begin, end) in double. Plain arguments and a
// simd reduction let the loop vectorize; its order is fixed by the code, so
// the sums do not depend on the thread count.
void PenaltyChunk(const float* __restrict w, int64_t begin, int64_t end, double* abs_out,
                  double* square_out) {
  double abs_sum = 0, square_sum = 0;
#pragma omp simd reduction(+ : abs_sum, square_sum)
  for (int64_t i = begin; i < end; ++i) {
    const double v = w[i];
    abs_sum += std::abs(v);
    square_sum += v * v;
  }
  *abs_out = abs_sum;
  *square_out = square_sum;
}

// dw = [acc +] l1g * sign(w) + l2x2g * w over [begin, end), where l1g and
// l2x2g already include the upstream scalar gradient.
void PenaltyGradChunk(const float* __restrict w, const float* __restrict acc, float* __restrict dw,
                      int64_t begin, int64_t end, float l1g, float l2x2g) {
  if (acc == nullptr) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float sign = float(w[i] > 0) - float(w[i] < 0);
      dw[i] = l1g * sign + l2x2g * w[i];
    }
  } else {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float sign = float(w[i] > 0) - float(w[i] < 0);
      dw[i] = acc[i] + (l1g * sign + l2x2g * w[i]);
    }
  }
}

// The penalty factors: finite (Keras allows negative ones, so does gradflow).
std::vector<AttrDef> FactorAttrs() {
  return {RequiredAttr("l1", AttrType::kFloat).Finite(), RequiredAttr("l2", AttrType::kFloat).Finite()};
}

absl::Status CheckFactors(InferContext& ctx) { return ctx.ExpectDType(0, DType::kF32); }

}  // namespace

// y = l1 * sum(|w|) + l2 * sum(w^2)
// dy/dw = l1 * sign(w) + 2 * l2 * w (sign(0) = 0: the subgradient TensorFlow
// uses for |w| at 0), so dw = dy * (l1 * sign(w) + 2 * l2 * w) with dy a scalar.
GF_REGISTER_OP(OpDef{
    .name = kPenaltyOp,
    .num_inputs = 1,
    .attrs = FactorAttrs(),
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckFactors(ctx));
      ctx.AddOutput(DType::kF32, Shape{});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* w = k.in<float>(0);
      float* y = k.out<float>(0);
      const int64_t n = k.in_shape(0).NumElements();
      const double l1 = k.node.attr<double>("l1"), l2 = k.node.attr<double>("l2");
      const int64_t chunks = std::max<int64_t>(1, (n + kSumChunk - 1) / kSumChunk);
      return MakeKernel([=, partial = std::vector<double>(2 * chunks)](const RunContext&) mutable {
        double* sums = partial.data();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t c = 0; c < chunks; ++c) {
          PenaltyChunk(w, c * kSumChunk, std::min(n, (c + 1) * kSumChunk), &sums[2 * c], &sums[2 * c + 1]);
        }
        double abs_total = 0, square_total = 0;
        for (int64_t c = 0; c < chunks; ++c) {
          abs_total += sums[2 * c];
          square_total += sums[2 * c + 1];
        }
        *y = static_cast<float>(l1 * abs_total + l2 * square_total);
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) {
      return std::vector<Output>{g.scope.graph().AddNode1(
          g.scope, kPenaltyGradOp, {g.x(0), g.dy[0]},
          {{"l1", g.node.attr<double>("l1")}, {"l2", g.node.attr<double>("l2")}})};
    },
    // |w| has a kink at 0: the cases with l1 > 0 keep w on one side of it.
    .grad_checks = {{.inputs = {{.shape = {3, 4}}}, .attrs = {{"l1", 0.0}, {"l2", 0.3}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 0.1, .hi = 1}},
                     .attrs = {{"l1", 0.2}, {"l2", 0.05}}},
                    {.inputs = {{.shape = {5}, .lo = -1, .hi = -0.1}},
                     .attrs = {{"l1", 0.7}, {"l2", 0.0}}}},
});

// dw = [acc +] dy * (l1 * sign(w) + 2 * l2 * w). The optional third input
// `acc` is the variable's other gradient (from the data loss): adding it here
// saves a separate AddN pass over the weights (FusePenaltyGradient
// builds this form).
GF_REGISTER_OP(OpDef{
    .name = kPenaltyGradOp,
    .num_inputs = -1,  // w, dy (scalar)[, acc]
    .attrs = FactorAttrs(),
    .infer = [](InferContext& ctx) {
      if (ctx.num_inputs() != 2 && ctx.num_inputs() != 3) {
        return ctx.Error(absl::StrCat("takes w, dy and optionally acc, got ", ctx.num_inputs(), " inputs"));
      }
      GF_RETURN_IF_ERROR(CheckFactors(ctx));
      if (ctx.shape(1).rank() != 0) {
        return ctx.Error(absl::StrCat(ctx.Describe(1), " must be a scalar (the penalty's gradient)"));
      }
      if (ctx.num_inputs() == 3 && (ctx.shape(2) != ctx.shape(0) || ctx.dtype(2) != DType::kF32)) {
        return ctx.Error(absl::StrCat(ctx.Describe(2), " must match ", ctx.Describe(0)));
      }
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* w = k.in<float>(0);
      const float* dy = k.in<float>(1);
      const float* acc = k.inputs.size() == 3 ? k.in<float>(2) : nullptr;
      float* dw = k.out<float>(0);
      const int64_t n = k.in_shape(0).NumElements();
      const float l1 = static_cast<float>(k.node.attr<double>("l1"));
      const float l2x2 = static_cast<float>(2 * k.node.attr<double>("l2"));
      const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
      return MakeKernel([=](const RunContext&) {
        const float g = *dy;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t c = 0; c < chunks; ++c) {
          PenaltyGradChunk(w, acc, dw, c * kSumChunk, std::min(n, (c + 1) * kSumChunk), g * l1, g * l2x2);
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

Output L1L2Penalty(const Scope& scope, Output w, double l1, double l2) {
  return scope.graph().AddNode1(scope, kPenaltyOp, {w}, {{"l1", l1}, {"l2", l2}});
}

bool IsL1L2Penalty(const Node& node) { return node.op_name() == kPenaltyOp; }

Output FusePenaltyGradient(Output grad) {
  if (!grad.valid() || grad.node->op_name() != "AddN") return grad;
  const std::vector<Output>& terms = grad.node->inputs;
  auto penalty = std::find_if(terms.begin(), terms.end(), [](const Output& t) {
    return t.node->op_name() == kPenaltyGradOp && t.node->inputs.size() == 2;
  });
  if (penalty == terms.end()) return grad;
  std::vector<Output> data_terms;
  for (auto it = terms.begin(); it != terms.end(); ++it) {
    if (it != penalty) data_terms.push_back(*it);
  }
  const Node& p = *penalty->node;
  Scope scope(*grad.node->graph, grad.node->name);
  Output data_gradient = AddN(scope, std::move(data_terms));
  return scope.graph().AddNode1(scope, kPenaltyGradOp, {p.inputs[0], p.inputs[1], data_gradient}, p.attrs,
                                "fused_penalty_grad");
}

}  // namespace gradflow::ops
