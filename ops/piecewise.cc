#include "ops/piecewise.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/math.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {



Tensor ToTensor(const std::vector<double>& values) {
  Tensor t(DType::kF32, {static_cast<int64_t>(values.size())});
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// Checks the f32 vector attr `key`: rank 1, finite, `size` elements if size >= 0.
absl::Status CheckKnotAttr(InferContext& ctx, const char* key, int64_t size, bool increasing) {
  const Tensor& t = ctx.node().attr<Tensor>(key);
  if (t.dtype() != DType::kF32 || t.shape().rank() != 1) {
    return ctx.Error(absl::StrCat("attr '", key, "' must be a f32 vector, got ",
                                  TensorType{t.dtype(), t.shape()}.ToString()));
  }
  if (size >= 0 && t.num_elements() != size) {
    return ctx.Error(absl::StrCat("attr '", key, "' has ", t.num_elements(), " elements, needs ", size));
  }
  const float* v = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (!std::isfinite(v[i])) return ctx.Error(absl::StrCat("attr '", key, "' has a non-finite value"));
    if (increasing && i > 0 && !(v[i] > v[i - 1])) {
      return ctx.Error(absl::StrCat("attr '", key, "' must be strictly increasing, but element ", i,
                                    " (", v[i], ") <= element ", i - 1, " (", v[i - 1], ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status SameAsInput0(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  ctx.AddOutput(DType::kF32, ctx.shape(0));
  return absl::OkStatus();
}

// An elementwise f32 loop y[i] = f(x[i]) over the node's only input.
template <typename F>
absl::StatusOr<std::unique_ptr<Kernel>> ElementwiseKernel(const KernelContext& k, F f) {
  const float* src = k.in<float>(0);
  float* dst = k.out<float>(0);
  const int64_t n = k.out_shape(0).NumElements();
  return MakeKernel([src, dst, n, f](const RunContext&) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dst[i] = f(src[i]);
    return absl::OkStatus();
  });
}

// The index of the piece x falls in: the number of boundaries strictly below x.
int64_t PieceIndex(const std::vector<float>& boundaries, float x) {
  int64_t i = 0;
  while (i < static_cast<int64_t>(boundaries.size()) && x > boundaries[i]) ++i;
  return i;
}

}  // namespace

// ---------------------------------------------------------------- PiecewiseConstant

GF_REGISTER_OP(OpDef{
    .name = "PiecewiseConstant",
    .num_inputs = 1,
    .attrs = {RequiredAttr("boundaries", AttrType::kTensor), RequiredAttr("values", AttrType::kTensor)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckKnotAttr(ctx, "boundaries", -1, /*increasing=*/true));
      const int64_t k = ctx.node().attr<Tensor>("boundaries").num_elements();
      GF_RETURN_IF_ERROR(CheckKnotAttr(ctx, "values", k + 1, /*increasing=*/false));
      return SameAsInput0(ctx);
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      std::vector<float> boundaries = k.node.attr<Tensor>("boundaries").ToVector<float>();
      std::vector<float> values = k.node.attr<Tensor>("values").ToVector<float>();
      return ElementwiseKernel(k, [boundaries, values](float x) {
        return values[PieceIndex(boundaries, x)];
      });
    },
    .grad = NoGradient,
    .no_gradient_reason = "piecewise constant: its gradient is zero wherever it exists, so none flows",
});

Output PiecewiseConstant(const Scope& scope, Output x, const std::vector<double>& boundaries,
                         const std::vector<double>& values) {
  return scope.graph().AddNode1(scope, "PiecewiseConstant", {x},
                                {{"boundaries", ToTensor(boundaries)}, {"values", ToTensor(values)}});
}

// ---------------------------------------------------------------- PiecewiseLinear

// y = ys[j] + (x - xs[j]) * (ys[j+1] - ys[j]) / (xs[j+1] - xs[j]) on knot
// segment j, ys[0] left of xs[0], ys.back() right of xs.back(). So
// dy/dx = the segment's slope inside and 0 outside: dx = dy * s(x) with s the
// piecewise-constant function of the slopes (at a knot, the left segment's).
std::vector<Output> PiecewiseLinearGrad(GradContext& g) {
  std::vector<float> xs = g.node.attr<Tensor>("xs").ToVector<float>();
  std::vector<float> ys = g.node.attr<Tensor>("ys").ToVector<float>();
  std::vector<double> boundaries(xs.begin(), xs.end());
  std::vector<double> slopes = {0.0};
  for (size_t j = 0; j + 1 < xs.size(); ++j) {
    slopes.push_back((double(ys[j + 1]) - ys[j]) / (double(xs[j + 1]) - xs[j]));
  }
  slopes.push_back(0.0);
  return {Mul(g.scope, g.dy[0], PiecewiseConstant(g.scope, g.x(0), boundaries, slopes))};
}

GF_REGISTER_OP(OpDef{
    .name = "PiecewiseLinear",
    .num_inputs = 1,
    .attrs = {RequiredAttr("xs", AttrType::kTensor), RequiredAttr("ys", AttrType::kTensor)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(CheckKnotAttr(ctx, "xs", -1, /*increasing=*/true));
      const int64_t k = ctx.node().attr<Tensor>("xs").num_elements();
      if (k < 2) return ctx.Error(absl::StrCat("needs at least 2 knots, got ", k));
      GF_RETURN_IF_ERROR(CheckKnotAttr(ctx, "ys", k, /*increasing=*/false));
      return SameAsInput0(ctx);
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      std::vector<float> xs = k.node.attr<Tensor>("xs").ToVector<float>();
      std::vector<float> ys = k.node.attr<Tensor>("ys").ToVector<float>();
      return ElementwiseKernel(k, [xs, ys](float x) {
        const int64_t j = PieceIndex(xs, x);  // x in (xs[j-1], xs[j]]
        if (j == 0) return ys.front();
        if (j == static_cast<int64_t>(xs.size())) return ys.back();
        // Interpolated in double: knots far apart (steps of a long run) keep f32 accuracy.
        const double t = (double(x) - xs[j - 1]) / (double(xs[j]) - xs[j - 1]);
        return static_cast<float>(ys[j - 1] + (double(ys[j]) - ys[j - 1]) * t);
      });
    },
    .grad = PiecewiseLinearGrad,
    // Inside two different segments and right of the last knot, away from the knots.
    .grad_checks = {{.inputs = {{.shape = {2, 3}, .lo = 0.1, .hi = 0.9}},
                     .attrs = {{"xs", ToTensor({-1, 0, 1, 2})}, {"ys", ToTensor({0.5, 1, -2, 0.25})}}},
                    {.inputs = {{.shape = {2, 3}, .lo = 1.1, .hi = 1.9}},
                     .attrs = {{"xs", ToTensor({-1, 0, 1, 2})}, {"ys", ToTensor({0.5, 1, -2, 0.25})}}},
                    {.inputs = {{.shape = {3}, .lo = 2.1, .hi = 3}},
                     .attrs = {{"xs", ToTensor({-1, 0, 1, 2})}, {"ys", ToTensor({0.5, 1, -2, 0.25})}}}},
});

Output PiecewiseLinear(const Scope& scope, Output x, const std::vector<double>& xs,
                       const std::vector<double>& ys) {
  return scope.graph().AddNode1(scope, "PiecewiseLinear", {x}, {{"xs", ToTensor(xs)}, {"ys", ToTensor(ys)}});
}

// ---------------------------------------------------------------- Floor

GF_REGISTER_OP(OpDef{
    .name = "Floor",
    .num_inputs = 1,
    .infer = SameAsInput0,
    .kernel = [](const KernelContext& k) { return ElementwiseKernel(k, [](float x) { return std::floor(x); }); },
    .grad = NoGradient,
    .no_gradient_reason = "piecewise constant: its gradient is zero wherever it exists, so none flows",
});

Output Floor(const Scope& scope, Output x) { return scope.graph().AddNode1(scope, "Floor", {x}); }

}  // namespace gradflow::ops
