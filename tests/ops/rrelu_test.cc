// ops/rrelu: the inference form (mean slope), the training form (per-element
// uniform slopes, new every step, reproducible for a seed, independent of the
// thread count), a backward that uses the forward's slopes, and errors.

#include "ops/rrelu.h"

#include <cmath>
#include <set>
#include <vector>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "tests/util/messages.h"
#include "tests/util/threads.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;
using testing_util::WithThreads;

constexpr double kLower = ops::kRReluDefaultLower, kUpper = ops::kRReluDefaultUpper;
// y = s x is one f32 multiply: exact up to one rounding.
constexpr double kRelTolerance = 1e-6;

// x: every other element negative, magnitudes 0.5 .. 5.5, plus 0 and large values.
Tensor Inputs(int64_t rows, int64_t cols) {
  Tensor x(DType::kF32, {rows, cols});
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    x.data<float>()[i] = (i % 2 ? -1.0f : 1.0f) * (0.5f + float(i % 11) / 2);
  }
  x.data<float>()[0] = 0.0f;
  x.data<float>()[1] = -1e6f;
  x.data<float>()[2] = 1e6f;
  return x;
}

struct Built {
  std::unique_ptr<Graph> graph;
  Output x, y, slope, dx;
};

// y, its slopes and dx = d(sum y)/dx.
Built Build(double lower, double upper, int64_t cols, uint64_t seed = 7) {
  Built b;
  b.graph = std::make_unique<Graph>(seed);
  Graph& g = *b.graph;
  b.x = ops::Placeholder(g, "x", DType::kF32, {-1, cols});
  ops::RReluOutputs r = ops::RReluWithSlopes(g, b.x, lower, upper);
  b.y = r.y;
  b.slope = r.slope;
  auto grads = AddGradients(g, b.y, {b.x});
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (grads.ok()) b.dx = (*grads)[0];
  return b;
}

TEST(RReluTest, InferenceUsesTheMeanSlope) {
  Built b = Build(kLower, kUpper, 8);
  Session s(*b.graph);
  auto plan = s.Compile({b.y, b.slope, b.dx}, {}, Phase::kInfer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor x = Inputs(4, 8);
  for (int run = 0; run < 2; ++run) {  // the same in every run
    auto out = plan->Run({{b.x, x}});
    ASSERT_TRUE(out.ok()) << out.status();
    const double mean_slope = (kLower + kUpper) / 2;
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const double xi = x.data<float>()[i];
      const double want = xi >= 0 ? xi : mean_slope * xi;
      EXPECT_NEAR((*out)[0].data<float>()[i], want, kRelTolerance * std::max(1.0, std::abs(want)))
          << "x = " << xi;
      EXPECT_FLOAT_EQ((*out)[1].data<float>()[i], xi >= 0 ? 1.0 : mean_slope);
      EXPECT_FLOAT_EQ((*out)[2].data<float>()[i], xi >= 0 ? 1.0 : mean_slope);
    }
  }
}

// 50,000 negative inputs: the slopes are U[1/8, 1/3]. Standard errors for
// n = 50,000: mean (u - l) / sqrt(12 n) = 2.7e-4, stddev ~ 1.9e-4; the
// tolerances are > 7 of them.
TEST(RReluTest, TrainingDrawsUniformSlopesPerElement) {
  constexpr int64_t kRows = 500, kCols = 100;
  Built b = Build(kLower, kUpper, kCols);
  Session s(*b.graph);
  auto plan = s.Compile({b.y, b.slope}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor x(DType::kF32, {kRows, kCols});
  for (float& v : x.flat<float>()) v = -2.0f;
  auto out = plan->Run({{b.x, x}});
  ASSERT_TRUE(out.ok()) << out.status();
  double sum = 0, sum_sq = 0;
  std::set<float> distinct;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const float s = (*out)[1].data<float>()[i];
    ASSERT_GE(s, float(kLower));
    ASSERT_LE(s, float(kUpper));
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], -2.0f * s);
    sum += s;
    sum_sq += double(s) * s;
    distinct.insert(s);
  }
  const double n = double(x.num_elements());
  const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, (kLower + kUpper) / 2, 2e-3);
  EXPECT_NEAR(stddev, (kUpper - kLower) / std::sqrt(12.0), 1.5e-3);
  EXPECT_GT(distinct.size(), size_t(n / 2));  // per element, not one slope per tensor
}

TEST(RReluTest, TrainingKeepsNonNegativeInputs) {
  Built b = Build(kLower, kUpper, 8);
  Session s(*b.graph);
  auto plan = s.Compile({b.y, b.slope}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor x = Inputs(4, 8);
  auto out = plan->Run({{b.x, x}});
  ASSERT_TRUE(out.ok()) << out.status();
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const float xi = x.data<float>()[i];
    if (xi >= 0) {
      EXPECT_EQ((*out)[0].data<float>()[i], xi);
      EXPECT_EQ((*out)[1].data<float>()[i], 1.0f);
    } else {
      EXPECT_LT((*out)[0].data<float>()[i], 0.0f);  // y = s x with s > 0 keeps the sign
    }
  }
}

// The backward of a step multiplies by the slopes its forward drew.
TEST(RReluTest, GradientUsesTheSlopesOfTheSameStep) {
  Built b = Build(kLower, kUpper, 16);
  Session s(*b.graph);
  auto plan = s.Compile({b.y, b.slope, b.dx}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor x = Inputs(8, 16);
  for (int step = 0; step < 3; ++step) {
    auto out = plan->Run({{b.x, x}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const float xi = x.data<float>()[i];
      const float dx = (*out)[2].data<float>()[i];
      EXPECT_EQ(dx, (*out)[1].data<float>()[i]);  // d(sum y)/dx = slope
      if (xi != 0) {
        EXPECT_NEAR((*out)[0].data<float>()[i] / xi, dx, kRelTolerance) << "x = " << xi;
      }
    }
  }
}

std::vector<float> SlopesOfRuns(uint64_t seed, int runs) {
  Built b = Build(kLower, kUpper, 64, seed);
  Session s(*b.graph);
  auto plan = s.Compile({b.slope}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  Tensor x(DType::kF32, {64, 64});
  for (float& v : x.flat<float>()) v = -1.0f;
  std::vector<float> all;
  for (int r = 0; r < runs; ++r) {
    auto out = plan->Run({{b.x, x}});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return all;
    for (float v : (*out)[0].flat<float>()) all.push_back(v);
  }
  return all;
}

TEST(RReluTest, NewSlopesEveryStepReproducibleForASeed) {
  std::vector<float> a = SlopesOfRuns(11, 2), b = SlopesOfRuns(11, 2), c = SlopesOfRuns(12, 2);
  ASSERT_EQ(a.size(), 2u * 64 * 64);
  EXPECT_EQ(a, b);  // same seed, same draws
  EXPECT_NE(a, c);  // another seed, other draws
  const size_t half = a.size() / 2;
  int same = 0;
  for (size_t i = 0; i < half; ++i) same += a[i] == a[half + i];
  EXPECT_LT(same, int(half / 100));  // the second step drew new slopes
}

TEST(RReluTest, SlopesDoNotDependOnTheThreadCount) {
  std::vector<float> one = WithThreads(1, [] { return SlopesOfRuns(5, 1); });
  std::vector<float> two = WithThreads(2, [] { return SlopesOfRuns(5, 1); });
  EXPECT_EQ(one, two);
}

TEST(RReluTest, TwoNodesDrawDifferentSlopes) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 32});
  Output s1 = ops::RReluWithSlopes(g, x).slope;
  Output s2 = ops::RReluWithSlopes(g, x).slope;
  Session s(g);
  auto plan = s.Compile({s1, s2}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor xv(DType::kF32, {4, 32});
  for (float& v : xv.flat<float>()) v = -1.0f;
  auto out = plan->Run({{x, xv}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE((*out)[0].ToVector<float>(), (*out)[1].ToVector<float>());
}

TEST(RReluTest, EqualBoundsIsALeakyReluInBothPhases) {
  for (Phase phase : {Phase::kTrain, Phase::kInfer}) {
    Built b = Build(0.25, 0.25, 8);
    Session s(*b.graph);
    auto plan = s.Compile({b.y}, {}, phase);
    ASSERT_TRUE(plan.ok()) << plan.status();
    Tensor x = Inputs(2, 8);
    auto out = plan->Run({{b.x, x}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const float xi = x.data<float>()[i];
      EXPECT_EQ((*out)[0].data<float>()[i], xi >= 0 ? xi : 0.25f * xi);
    }
  }
}

TEST(RReluTest, DefaultsAreThePapersBoundsAndTheKerasStyleName) {
  EXPECT_DOUBLE_EQ(kLower, 1.0 / 8);
  EXPECT_DOUBLE_EQ(kUpper, 1.0 / 3);
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output y = ops::Activation(g, x, "rrelu");
  ASSERT_TRUE(y.valid()) << g.status();
  EXPECT_EQ(y.node->op_name(), "RRelu");
  EXPECT_EQ(y.node->attr<double>("lower"), kLower);
  EXPECT_EQ(y.node->attr<double>("upper"), kUpper);
}

TEST(RReluTest, RejectsLowerAboveUpper) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  EXPECT_FALSE(ops::RRelu(g.Scope("act"), x, 0.5, 0.1).valid());
  ExpectMentions(g.status().message(), {"act/RRelu", "lower <= upper"});
}

}  // namespace
}  // namespace gradflow
