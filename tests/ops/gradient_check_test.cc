// Walks the op registry and checks every differentiable op's gradient
// against central differences, so no op can land without a checked gradient.
//
// For each case, L = sum_k sum(w_k * y_k) with fixed random weights w_k over
// the op's f32 outputs. The analytic dL/dx comes from AddGradients; the
// numeric one is (L(x+h) - L(x-h)) / 2h with L summed in double from the
// fetched f32 outputs. With h = 1e-3 the f32 rounding of y (relative 6e-8)
// contributes about 1e-4 of error and the O(h^2) truncation less, so
// |analytic - numeric| <= 2e-3 + 1e-2 * |numeric| leaves a margin of ~10x
// while still catching a wrong factor or sign anywhere.

#include <cmath>
#include <cstdio>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/op_registry.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"

namespace gradflow {
namespace {

constexpr double kStep = 1e-3;
constexpr double kAbsTolerance = 2e-3;
constexpr double kRelTolerance = 1e-2;

Tensor RandomInput(const InputSpec& spec, Rng& rng) {
  Tensor t(spec.dtype, spec.shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    double v = rng.Uniform(spec.lo, spec.hi);
    switch (spec.dtype) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(std::floor(v)); break;
      case DType::kI64: t.data<int64_t>()[i] = static_cast<int64_t>(std::floor(v)); break;
      case DType::kBF16: t.data<uint16_t>()[i] = FloatToBFloat16(static_cast<float>(v)); break;
    }
  }
  return t;
}

// Runs one case; returns the largest error seen, failing the test on a miss.
double CheckCase(const OpDef& op, const GradCheckCase& c, int case_index) {
  SCOPED_TRACE(testing::Message() << "op " << op.name << " case " << case_index);
  Graph g;
  Rng rng(1234 + case_index);
  std::vector<Output> inputs;
  std::vector<Tensor> values;
  std::vector<Feed> feeds;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    values.push_back(RandomInput(c.inputs[i], rng));
    if (c.inputs[i].dtype == DType::kF32) {
      inputs.push_back(ops::Placeholder(g, "x" + std::to_string(i), DType::kF32, c.inputs[i].shape));
      feeds.push_back({inputs.back(), values.back()});
    } else {
      inputs.push_back(ops::Constant(g, values.back()));
    }
  }
  std::vector<Output> ys = g.AddNode(g, op.name, inputs, c.attrs);
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return 0;

  std::vector<Output> terms;
  std::vector<Output> fetch_ys;
  std::vector<Tensor> weights;
  for (const Output& y : ys) {
    if (y.dtype() != DType::kF32) continue;
    Shape concrete = y.shape();
    EXPECT_TRUE(concrete.IsFullyKnown()) << "grad-check cases use fixed shapes";
    weights.push_back(RandomInput({.shape = concrete, .lo = -1, .hi = 1}, rng));
    terms.push_back(ops::ReduceSum(g, ops::Mul(g, y, ops::Constant(g, weights.back()))));
    fetch_ys.push_back(y);
  }
  Output loss = ops::AddN(g, terms);
  std::vector<Output> xs;
  std::vector<int> x_input;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (c.inputs[i].dtype == DType::kF32 && !c.inputs[i].no_grad) {
      xs.push_back(inputs[i]);
      x_input.push_back(static_cast<int>(i));
    }
  }
  auto grads = AddGradients(g, loss, xs);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return 0;

  Session session(g);
  std::vector<ValueRef> grad_refs(grads->begin(), grads->end());
  auto grad_plan = session.Compile(grad_refs, {}, Phase::kTrain);
  EXPECT_TRUE(grad_plan.ok()) << grad_plan.status();
  std::vector<ValueRef> y_refs(fetch_ys.begin(), fetch_ys.end());
  auto forward = session.Compile(y_refs, {}, Phase::kTrain);
  EXPECT_TRUE(forward.ok()) << forward.status();
  if (!grad_plan.ok() || !forward.ok()) return 0;

  auto analytic = grad_plan->Run(feeds);
  EXPECT_TRUE(analytic.ok()) << analytic.status();
  if (!analytic.ok()) return 0;

  auto loss_at = [&]() {
    auto out = forward->Run(feeds);
    EXPECT_TRUE(out.ok()) << out.status();
    double l = 0;
    for (size_t k = 0; k < out->size(); ++k) {
      for (int64_t e = 0; e < (*out)[k].num_elements(); ++e) {
        l += double((*out)[k].data<float>()[e]) * weights[k].data<float>()[e];
      }
    }
    return l;
  };

  double worst = 0;
  for (size_t j = 0; j < xs.size(); ++j) {
    // A declared-differentiable input whose gradient is the "no path" zeros
    // means the gradient function dropped it.
    const Node* gnode = (*grads)[j].node;
    EXPECT_FALSE(gnode->op_name() == "ZerosLike" && gnode->inputs[0] == xs[j])
        << "input " << x_input[j] << " got no gradient; mark it no_grad if that is intended";
    Tensor& x = values[x_input[j]];
    float* data = x.data<float>();
    for (int64_t e = 0; e < x.num_elements(); ++e) {
      const float saved = data[e];
      data[e] = saved + kStep;
      double up = loss_at();
      data[e] = saved - kStep;
      double down = loss_at();
      data[e] = saved;
      double numeric = (up - down) / (2 * kStep);
      double got = (*analytic)[j].data<float>()[e];
      double err = std::abs(got - numeric);
      worst = std::max(worst, err / std::max(1.0, std::abs(numeric)));
      EXPECT_LE(err, kAbsTolerance + kRelTolerance * std::abs(numeric))
          << "input " << x_input[j] << " element " << e << ": analytic " << got << ", numeric "
          << numeric;
    }
  }
  return worst;
}

TEST(GradientCheckTest, EveryRegisteredOpIsCheckedOrSaysWhyNot) {
  int checked = 0;
  for (const OpDef* op : OpRegistry::Global().All()) {
    if (op->grad_checks.empty()) {
      EXPECT_FALSE(op->no_gradient_reason.empty())
          << "op " << op->name << " has no grad_checks case and no no_gradient_reason";
      continue;
    }
    EXPECT_TRUE(op->grad) << "op " << op->name << " has grad_checks but no gradient function";
    if (!op->grad) continue;
    double worst = 0;
    for (size_t i = 0; i < op->grad_checks.size(); ++i) {
      worst = std::max(worst, CheckCase(*op, op->grad_checks[i], static_cast<int>(i)));
    }
    std::printf("%-32s max scaled error %.2e\n", op->name.c_str(), worst);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace gradflow
