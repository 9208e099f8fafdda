// ops/prelu: forward at fixed points (0, large magnitudes, per-feature
// slopes, shared axes) and the slope gradient against hand-computed sums.

#include "ops/prelu.h"

#include <cmath>
#include <vector>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;

// One f32 multiply per element; sums of a few terms for the slope gradient.
constexpr double kRelTolerance = 1e-6;

void ExpectNear(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, kRelTolerance * std::max(1.0, std::abs(want))) << what;
}

TEST(PReluTest, ForwardAndGradientsAtFixedPoints) {
  // x [3, 4] including 0, tiny and huge values; one slope per feature.
  const std::vector<float> xs = {0.0f, -1.0f, 2.0f,   -3.0f,   //
                                 -1e6f, 1e6f, -1e-3f, 0.5f,    //
                                 4.0f, -0.25f, 0.0f,  -100.0f};
  const std::vector<float> alphas = {0.1f, 0.25f, -0.5f, 2.0f};  // any real slope, as Keras
  const std::vector<float> ws = {1, -2, 3, 0.5f, -1, 1, 2, -3, 0.25f, 4, -1, 1};
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output alpha = ops::Placeholder(g, "alpha", DType::kF32, {4});
  Output w = ops::Placeholder(g, "w", DType::kF32, {-1, 4});
  Output y = ops::PRelu(g, x, alpha);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.shape(), Shape({-1, 4}));
  // L = sum(w * y): dL/dy = w.
  auto grads = AddGradients(g, ops::ReduceSum(g, ops::Mul(g, w, y)), {x, alpha});
  ASSERT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({y, (*grads)[0], (*grads)[1]}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Tensor::FromVector<float>({3, 4}, xs).value()},
                        {alpha, Tensor::FromVector<float>({4}, alphas).value()},
                        {w, Tensor::FromVector<float>({3, 4}, ws).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<double> dalpha(4, 0.0);
  for (int i = 0; i < 12; ++i) {
    const double xi = xs[i], a = alphas[i % 4], wi = ws[i];
    const std::string at = "element " + std::to_string(i) + " x = " + std::to_string(xi);
    ExpectNear((*out)[0].data<float>()[i], xi > 0 ? xi : a * xi, "y " + at);
    ExpectNear((*out)[1].data<float>()[i], xi > 0 ? wi : a * wi, "dx " + at);
    dalpha[i % 4] += wi * std::min(xi, 0.0);
  }
  // dalpha_f = sum over the batch of dy * min(x, 0). By hand for feature 1:
  // w = -2, 1, 4 at x = -1, 1e6, -0.25 -> (-2)(-1) + 0 + 4(-0.25) = 1.
  EXPECT_NEAR(dalpha[1], 1.0, 1e-12);
  for (int f = 0; f < 4; ++f) ExpectNear((*out)[2].data<float>()[f], dalpha[f], "dalpha " + std::to_string(f));
}

// Keras shared_axes: x [N, T, C] with alpha [1, C] shares one slope per
// channel across T; its gradient sums over the batch and T.
TEST(PReluTest, SharedAxesBroadcastTheSlope) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3, 2});
  Output alpha = ops::Placeholder(g, "alpha", DType::kF32, {1, 2});
  Output y = ops::PRelu(g, x, alpha);
  auto grads = AddGradients(g, y, {alpha});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ((*grads)[0].shape(), Shape({1, 2}));
  Session s(g);
  auto plan = s.Compile({y, (*grads)[0]}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor xv(DType::kF32, {2, 3, 2});
  for (int64_t i = 0; i < xv.num_elements(); ++i) xv.data<float>()[i] = float(i) - 6.0f;
  auto out = plan->Run({{x, xv}, {alpha, Tensor::FromVector<float>({1, 2}, {0.5f, 3.0f}).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  double dalpha[2] = {0, 0};
  for (int64_t i = 0; i < xv.num_elements(); ++i) {
    const double xi = xv.data<float>()[i], a = i % 2 ? 3.0 : 0.5;
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], xi > 0 ? xi : a * xi);
    dalpha[i % 2] += std::min(xi, 0.0);
  }
  EXPECT_FLOAT_EQ((*out)[1].data<float>()[0], dalpha[0]);  // -6 - 4 - 2 = -12
  EXPECT_FLOAT_EQ((*out)[1].data<float>()[1], dalpha[1]);  // -5 - 3 - 1 = -9
  EXPECT_EQ(dalpha[0], -12.0);
}

TEST(PReluTest, InferencePlanComputesTheSame) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 2});
  Output y = ops::PRelu(g, x, ops::Constant(g, Tensor::FromVector<float>({2}, {0.2f, 0.3f}).value()));
  Session s(g);
  auto plan = s.Compile({y}, {}, Phase::kInfer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Tensor::FromVector<float>({2, 2}, {-1, -1, 1, 2}).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToVector<float>(), std::vector<float>({-0.2f, -0.3f, 1, 2}));
}

TEST(PReluTest, SlopeShapeErrorNamesBothShapes) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output alpha = ops::Placeholder(g, "alpha", DType::kF32, {3});
  EXPECT_FALSE(ops::PRelu(g.Scope("p_re_lu"), x, alpha).valid());
  ExpectMentions(g.status().message(), {"p_re_lu/PRelu", "'alpha' f32[3]", "'x' f32[-1, 4]"});

  Graph g2;
  Output v = ops::Placeholder(g2, "v", DType::kF32, {4});
  EXPECT_FALSE(ops::PRelu(g2, v, ops::Placeholder(g2, "alpha", DType::kF32, {})).valid());
  EXPECT_NE(std::string(g2.status().message()).find("rank >= 2"), std::string::npos) << g2.status();
}

}  // namespace
}  // namespace gradflow
