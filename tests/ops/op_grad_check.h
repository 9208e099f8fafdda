#ifndef GRADFLOW_TESTS_OPS_OP_GRAD_CHECK_H_
#define GRADFLOW_TESTS_OPS_OP_GRAD_CHECK_H_

// Central-difference check of one single-output op's grad_checks cases that
// needs no other op family: the upstream gradient dy is fed directly into the
// op's gradient function (GradContext), so
//   analytic dx = grad(dy = w),   numeric dx = d/dx sum(w * y(x))
// with w random. Same step and tolerances as tests/ops/gradient_check_test.cc,
// which checks every registered op the same way once ops::Mul exists.

#include <cmath>
#include <string>
#include <vector>

#include "core/random.h"
#include "graph/op_registry.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"

namespace gradflow::testing_util {

inline void CheckOpGradients(const std::string& op_name) {
  constexpr double kStep = 1e-3, kAbs = 2e-3, kRel = 1e-2;
  const OpDef* op = OpRegistry::Global().Find(op_name);
  ASSERT_NE(op, nullptr) << op_name;
  ASSERT_FALSE(op->grad_checks.empty()) << op_name;
  for (size_t c = 0; c < op->grad_checks.size(); ++c) {
    SCOPED_TRACE(::testing::Message() << op_name << " case " << c);
    const GradCheckCase& cc = op->grad_checks[c];
    ASSERT_EQ(cc.inputs.size(), 1u) << "this helper checks unary ops";
    Rng rng(99 + c);
    Tensor x(DType::kF32, cc.inputs[0].shape), w(DType::kF32, cc.inputs[0].shape);
    for (float& v : x.flat<float>()) v = float(rng.Uniform(cc.inputs[0].lo, cc.inputs[0].hi));
    for (float& v : w.flat<float>()) v = float(rng.Uniform(-1, 1));

    Graph g;
    Output xp = ops::Placeholder(g, "x", DType::kF32, x.shape());
    Output wp = ops::Placeholder(g, "w", DType::kF32, x.shape());
    Output y = g.AddNode1(g, op_name, {xp}, cc.attrs);
    ASSERT_TRUE(g.ok()) << g.status();
    GradContext ctx{Scope(g, "gradients"), *y.node, {wp}};
    std::vector<Output> dx = op->grad(ctx);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_EQ(dx.size(), 1u);
    Session s(g);
    auto grad_plan = s.Compile({dx[0]});
    auto fwd_plan = s.Compile({y});
    ASSERT_TRUE(grad_plan.ok()) << grad_plan.status();
    ASSERT_TRUE(fwd_plan.ok()) << fwd_plan.status();
    auto analytic = grad_plan->Run({{xp, x}, {wp, w}});
    ASSERT_TRUE(analytic.ok()) << analytic.status();
    auto loss = [&]() {
      auto out = fwd_plan->Run({{xp, x}});
      EXPECT_TRUE(out.ok()) << out.status();
      double l = 0;
      for (int64_t e = 0; e < w.num_elements(); ++e) {
        l += double((*out)[0].data<float>()[e]) * w.data<float>()[e];
      }
      return l;
    };
    for (int64_t e = 0; e < x.num_elements(); ++e) {
      float saved = x.data<float>()[e];
      x.data<float>()[e] = saved + float(kStep);
      double up = loss();
      x.data<float>()[e] = saved - float(kStep);
      double down = loss();
      x.data<float>()[e] = saved;
      double numeric = (up - down) / (2 * kStep);
      double got = (*analytic)[0].data<float>()[e];
      EXPECT_LE(std::abs(got - numeric), kAbs + kRel * std::abs(numeric))
          << "element " << e << ": analytic " << got << ", numeric " << numeric;
    }
  }
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_OPS_OP_GRAD_CHECK_H_
