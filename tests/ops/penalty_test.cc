// L1L2Penalty on a fixed matrix: values and gradients against hand-computed
// numbers (Keras definitions: l1 * sum|w|, l2 * sum w^2), and a large tensor
// against a double reference with 1 and 2 threads.

#include "ops/penalty.h"

#include <cmath>
#include <vector>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "tests/util/threads.h"

namespace gradflow {
namespace {

using testing_util::WithThreads;

constexpr float kTolerance = 1e-6f;

// sum|w| = 10.5, sum w^2 = 30.25; one zero entry (sign 0).
const std::vector<float> kMatrix = {1.0f, -2.0f, 0.5f, 0.0f, -3.0f, 4.0f};

struct PenaltyRun {
  float value = 0;
  std::vector<float> grad;
};

PenaltyRun RunPenalty(double l1, double l2) {
  Graph g;
  Output w = ops::Placeholder(g, "w", DType::kF32, {3, 2});
  Output p = ops::L1L2Penalty(g, w, l1, l2);
  auto grads = AddGradients(g, p, {w});
  EXPECT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({p, (*grads)[0]});
  EXPECT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{w, Tensor::FromVector<float>({3, 2}, kMatrix).value()}});
  EXPECT_TRUE(out.ok()) << out.status();
  return {(*out)[0].data<float>()[0], (*out)[1].ToVector<float>()};
}

TEST(L1L2PenaltyTest, L2ValueAndGradient) {
  PenaltyRun r = RunPenalty(0.0, 0.01);
  EXPECT_NEAR(r.value, 0.3025f, kTolerance);  // 0.01 * 30.25
  const std::vector<float> want = {0.02f, -0.04f, 0.01f, 0.0f, -0.06f, 0.08f};  // 2 * 0.01 * w
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r.grad[i], want[i], kTolerance) << i;
}

TEST(L1L2PenaltyTest, L1ValueAndGradient) {
  PenaltyRun r = RunPenalty(0.01, 0.0);
  EXPECT_NEAR(r.value, 0.105f, kTolerance);  // 0.01 * 10.5
  const std::vector<float> want = {0.01f, -0.01f, 0.01f, 0.0f, -0.01f, 0.01f};  // 0.01 * sign(w)
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r.grad[i], want[i], kTolerance) << i;
}

TEST(L1L2PenaltyTest, L1L2ValueAndGradient) {
  PenaltyRun r = RunPenalty(0.01, 0.02);
  EXPECT_NEAR(r.value, 0.105f + 0.605f, kTolerance);
  const std::vector<float> want = {0.05f, -0.09f, 0.03f, 0.0f, -0.13f, 0.17f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r.grad[i], want[i], kTolerance) << i;
}

TEST(L1L2PenaltyTest, GradientWithAnAccumulatorAddsIt) {
  // The fused form Minimize uses: dw = acc + dy * (l1 * sign(w) + 2 * l2 * w).
  Graph g;
  Output w = ops::Placeholder(g, "w", DType::kF32, {3, 2});
  Output acc = ops::Placeholder(g, "acc", DType::kF32, {3, 2});
  Output dy = ops::Placeholder(g, "dy", DType::kF32, {});
  Output dw = g.AddNode1(g, "L1L2PenaltyGrad", {w, dy, acc}, {{"l1", 0.01}, {"l2", 0.02}});
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({dw});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{w, Tensor::FromVector<float>({3, 2}, kMatrix).value()},
                        {acc, Tensor::FromVector<float>({3, 2}, {1, 2, 3, 4, 5, 6}).value()},
                        {dy, Tensor::Scalar(2.0f)}});
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<float> want = {1 + 2 * 0.05f, 2 - 2 * 0.09f, 3 + 2 * 0.03f,
                                   4.0f,          5 - 2 * 0.13f, 6 + 2 * 0.17f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*out)[0].data<float>()[i], want[i], kTolerance) << i;
}

TEST(L1L2PenaltyTest, LargeTensorMatchesDoubleReferenceWithAnyThreadCount) {
  const int64_t n = 300000;  // several chunks, parallel
  std::vector<float> values(n);
  double abs_sum = 0, square_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    values[i] = float((i * 7919) % 2001 - 1000) / 1000.0f;
    abs_sum += std::abs(double(values[i]));
    square_sum += double(values[i]) * values[i];
  }
  Graph g;
  Output w = ops::Placeholder(g, "w", DType::kF32, {n});
  Output p = ops::L1L2Penalty(g, w, 0.001, 0.002);
  Session s(g);
  auto plan = s.Compile({p});
  ASSERT_TRUE(plan.ok()) << plan.status();
  const Tensor input = Tensor::FromVector<float>({n}, values).value();
  auto one = WithThreads(1, [&] { return plan->Run({{w, input}}); });
  auto two = WithThreads(2, [&] { return plan->Run({{w, input}}); });
  ASSERT_TRUE(one.ok() && two.ok());
  const double want = 0.001 * abs_sum + 0.002 * square_sum;
  EXPECT_NEAR((*two)[0].data<float>()[0], want, 1e-6 * want);
  EXPECT_EQ((*one)[0].data<float>()[0], (*two)[0].data<float>()[0]);
}

TEST(L1L2PenaltyTest, NonFiniteFactorIsABuildErrorNamingTheNode) {
  Graph g;
  Output w = ops::Placeholder(g, "w", DType::kF32, {2});
  Output p = ops::L1L2Penalty(g.Scope("dense"), w, 0.0, std::nan(""));
  EXPECT_FALSE(p.valid());
  EXPECT_NE(g.status().message().find("dense/L1L2Penalty"), absl::string_view::npos) << g.status();
  EXPECT_NE(g.status().message().find("l2"), absl::string_view::npos) << g.status();
}

}  // namespace
}  // namespace gradflow
