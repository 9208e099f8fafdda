// ops/piecewise: PiecewiseConstant, PiecewiseLinear and Floor against
// test-side references, at and between the knots; attr errors. Gradients are
// checked by gradient_check_test (PiecewiseLinear) or declared absent.

#include "ops/piecewise.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/reduce.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// The kernels interpolate in double and round once to f32.
constexpr double kTolerance = 1e-6;

std::vector<float> Eval(Graph& g, Output x, Output y, const std::vector<float>& xs) {
  Session s(g);
  auto plan = s.Compile({y});
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  auto out = plan->Run({{x, Tensor::FromVector<float>({static_cast<int64_t>(xs.size())}, xs).value()}});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? (*out)[0].ToVector<float>() : std::vector<float>{};
}

TEST(PiecewiseTest, PiecewiseConstantFollowsKerasBoundaryRule) {
  // Keras PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]): 1.0 for t <= 10,
  // 0.5 for 10 < t <= 20, 0.1 after.
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1});
  Output y = ops::PiecewiseConstant(g, x, {10, 20}, {1.0, 0.5, 0.1});
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<float> got = Eval(g, x, y, {-5, 0, 10, 10.5, 11, 20, 21, 1e6});
  EXPECT_EQ(got, (std::vector<float>{1.0f, 1.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.1f, 0.1f}));
}

TEST(PiecewiseTest, PiecewiseLinearInterpolatesAndClampsOutside) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1});
  const std::vector<double> kx = {0, 100, 200, 230}, ky = {0.001, 0.01, 0.001, 1e-6};
  Output y = ops::PiecewiseLinear(g, x, kx, ky);
  ASSERT_TRUE(g.ok()) << g.status();
  const std::vector<float> at = {-3, 0, 1, 50, 100, 150, 199, 200, 215, 230, 500};
  std::vector<float> got = Eval(g, x, y, at);
  ASSERT_EQ(got.size(), at.size());
  for (size_t i = 0; i < at.size(); ++i) {
    double want;  // the chapter's _interpolate: (lr2 - lr1) * (it - it1) / (it2 - it1) + lr1
    if (at[i] <= kx.front()) {
      want = ky.front();
    } else if (at[i] >= kx.back()) {
      want = ky.back();
    } else {
      size_t j = 0;
      while (!(at[i] <= kx[j + 1])) ++j;
      want = (ky[j + 1] - ky[j]) * (at[i] - kx[j]) / (kx[j + 1] - kx[j]) + ky[j];
    }
    EXPECT_NEAR(got[i], want, kTolerance * std::abs(want)) << "x = " << at[i];
  }
}

TEST(PiecewiseTest, PiecewiseLinearGradientIsTheSegmentSlope) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {4});
  Output y = ops::PiecewiseLinear(g, x, {0, 2, 4}, {1, 5, 4});
  auto grads = AddGradients(g, ops::ReduceSum(g, y), {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  std::vector<float> got = Eval(g, x, (*grads)[0], {-1, 1, 3, 9});
  EXPECT_EQ(got, (std::vector<float>{0.0f, 2.0f, -0.5f, 0.0f}));
}

TEST(PiecewiseTest, FloorRoundsDown) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1});
  Output y = ops::Floor(g, x);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(Eval(g, x, y, {-1.5f, -1.0f, 0.0f, 0.99f, 2.0f, 7.25f}),
            (std::vector<float>{-2.0f, -1.0f, 0.0f, 0.0f, 2.0f, 7.0f}));
}

TEST(PiecewiseTest, BadKnotsAreBuildErrors) {
  {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {3});
    EXPECT_FALSE(ops::PiecewiseConstant(g, x, {10, 5}, {1, 2, 3}).valid());
    EXPECT_THAT(g.status().message(), HasSubstr("strictly increasing"));
  }
  {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {3});
    EXPECT_FALSE(ops::PiecewiseConstant(g, x, {10, 20}, {1, 2}).valid());
    EXPECT_THAT(g.status().message(), HasSubstr("'values' has 2 elements, needs 3"));
  }
  {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {3});
    EXPECT_FALSE(ops::PiecewiseLinear(g, x, {1}, {1}).valid());
    EXPECT_THAT(g.status().message(), HasSubstr("at least 2 knots"));
  }
}

}  // namespace
}  // namespace gradflow
