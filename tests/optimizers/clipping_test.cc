// Tests of optimizers/clipping.cc: a known gradient set clipped by value, by
// norm (per tensor) and by global norm, directly and through Minimize, plus
// the norm's independence of the thread count, non-finite norms and errors.

#include "optimizers/clipping.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/random.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "optimizers/optimizers.h"

namespace gradflow {
namespace {

// One f32 multiply of a double-computed scale: relative rounding of f32.
constexpr double kRelTol = 1e-6;

// The known gradient set: g1 = [3, 4] (norm 5) and g2 = [[1, 2], [2, 4]]
// (norm 5); global norm sqrt(50) = 7.0711.
const std::vector<float> kG1 = {3, 4};
const std::vector<float> kG2 = {1, 2, 2, 4};

struct Clipped {
  std::vector<float> g1, g2;
};

Clipped Clip(const optimizers::GradientClipping& clip) {
  Graph g;
  Output g1 = ops::Constant(g, Tensor::FromVector<float>({2}, kG1).value());
  Output g2 = ops::Constant(g, Tensor::FromVector<float>({2, 2}, kG2).value());
  std::vector<Output> out = optimizers::ClipGradients(g.Scope("clip"), {g1, g2}, clip);
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return {};
  EXPECT_EQ(out[0].shape(), Shape({2}));
  EXPECT_EQ(out[1].shape(), Shape({2, 2}));
  Session s(g);
  auto plan = s.Compile({out[0], out[1]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  auto values = plan->Run({});
  EXPECT_TRUE(values.ok()) << values.status();
  if (!values.ok()) return {};
  return {(*values)[0].ToVector<float>(), (*values)[1].ToVector<float>()};
}

void ExpectScaled(const std::vector<float>& got, const std::vector<float>& g, double scale,
                  const char* what) {
  ASSERT_EQ(got.size(), g.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(got[i], g[i] * scale, kRelTol * std::abs(g[i] * scale) + 1e-12) << what << " " << i;
  }
}

TEST(ClippingTest, ByValueClipsEachElement) {
  Clipped c = Clip(optimizers::ClipByValue(2.5));
  EXPECT_EQ(c.g1, std::vector<float>({2.5f, 2.5f}));
  EXPECT_EQ(c.g2, std::vector<float>({1.0f, 2.0f, 2.0f, 2.5f}));  // the direction changes
}

TEST(ClippingTest, ByNormRescalesEachTensorOnItsOwn) {
  Clipped c = Clip(optimizers::ClipByNorm(4.0));  // both norms are 5: scale 4/5
  ExpectScaled(c.g1, kG1, 0.8, "g1");
  ExpectScaled(c.g2, kG2, 0.8, "g2");
  EXPECT_FLOAT_EQ(c.g1[0], 2.4f);
  EXPECT_FLOAT_EQ(c.g1[1], 3.2f);
  // A norm within bounds leaves the tensor as it is.
  Clipped same = Clip(optimizers::ClipByNorm(5.5));
  EXPECT_EQ(same.g1, kG1);
  EXPECT_EQ(same.g2, kG2);
}

TEST(ClippingTest, ByGlobalNormRescalesAllTensorsTogether) {
  Clipped c = Clip(optimizers::ClipByGlobalNorm(5.0));
  const double scale = 5.0 / std::sqrt(50.0);  // 0.7071
  ExpectScaled(c.g1, kG1, scale, "g1");
  ExpectScaled(c.g2, kG2, scale, "g2");
  // Per-tensor clipping at 5 would have left both untouched: the global norm
  // is what exceeds the bound.
  Clipped per_tensor = Clip(optimizers::ClipByNorm(5.0));
  EXPECT_EQ(per_tensor.g1, kG1);
  Clipped loose = Clip(optimizers::ClipByGlobalNorm(7.5));
  EXPECT_EQ(loose.g1, kG1);
  EXPECT_EQ(loose.g2, kG2);
}

// Through Minimize: L = sum(c1 * w1) + sum(c2 * w2) has the constant
// gradients c1, c2, so one SGD step (lr 0.5) moves w by -0.5 * clipped(c).
TEST(ClippingTest, MinimizeAppliesTheClippedGradients) {
  for (auto [clip, scale] : {std::pair{optimizers::ClipByGlobalNorm(5.0), 5.0 / std::sqrt(50.0)},
                             std::pair{optimizers::ClipByNorm(2.0), 0.4}}) {
    Graph g;
    Output w1 = ops::Variable(g, "w1", {2}, Zeros());
    Output w2 = ops::Variable(g, "w2", {2, 2}, Zeros());
    Output loss = ops::Add(
        g, ops::ReduceSum(g, ops::Mul(g, w1, ops::Constant(g, Tensor::FromVector<float>({2}, kG1).value()))),
        ops::ReduceSum(g, ops::Mul(g, w2, ops::Constant(g, Tensor::FromVector<float>({2, 2}, kG2).value()))));
    Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.5}, {.clip = clip});
    ASSERT_TRUE(g.ok()) << g.status();
    // One scale node for all gradients, or one per gradient.
    EXPECT_EQ(g.FindNode("gradient_clipping/GlobalNormScale") != nullptr,
              clip.kind == optimizers::GradientClipping::Kind::kGlobalNorm);
    Session s(g);
    auto plan = s.Compile({loss}, {train}, Phase::kTrain);
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_TRUE(plan->Run({}).ok());
    auto v1 = s.variables().Get("w1");
    auto v2 = s.variables().Get("w2");
    ASSERT_TRUE(v1.ok() && v2.ok());
    ExpectScaled(v1->ToVector<float>(), kG1, -0.5 * scale, "w1");
    ExpectScaled(v2->ToVector<float>(), kG2, -0.5 * scale, "w2");
  }
}

// The norm of a large tensor (several chunks) is the same with 1 and 2
// threads, and matches a double reference.
TEST(ClippingTest, NormIsIndependentOfTheThreadCount) {
  Tensor big(DType::kF32, {300, 784});
  Rng rng(9);
  double sum = 0;
  for (float& v : big.flat<float>()) {
    v = static_cast<float>(rng.Normal());
    sum += double(v) * v;
  }
  Graph g;
  Output norm = optimizers::GlobalNorm(g, {ops::Constant(g, big)});
  Session s(g);
  auto plan = s.Compile({norm});
  ASSERT_TRUE(plan.ok()) << plan.status();
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = plan->Run({});
  omp_set_num_threads(2);
  auto two = plan->Run({});
  omp_set_num_threads(saved);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ((*one)[0].data<float>()[0], (*two)[0].data<float>()[0]);
  EXPECT_NEAR((*one)[0].data<float>()[0], std::sqrt(sum), kRelTol * std::sqrt(sum));
}

TEST(ClippingTest, NonFiniteNormGivesNaNGradients) {
  Graph g;
  Output a = ops::Constant(g, Tensor::FromVector<float>({2}, {1.0f, INFINITY}).value());
  Output b = ops::Constant(g, Tensor::FromVector<float>({1}, {2.0f}).value());
  std::vector<Output> out = optimizers::ClipGradients(g, {a, b}, optimizers::ClipByGlobalNorm(1.0));
  Session s(g);
  auto plan = s.Compile({out[1]});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto v = plan->Run({});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(std::isnan((*v)[0].data<float>()[0]));
}

TEST(ClippingTest, ThresholdMustBePositive) {
  for (auto clip : {optimizers::ClipByValue(0), optimizers::ClipByNorm(-1),
                    optimizers::ClipByGlobalNorm(NAN)}) {
    Graph g;
    Output w = ops::Variable(g, "w", {2}, Ones());
    Output train = optimizers::Minimize(g, ops::ReduceSum(g, w), optimizers::SGD{}, {.clip = clip});
    EXPECT_FALSE(train.valid());
    ASSERT_FALSE(g.ok());
    EXPECT_NE(std::string(g.status().message()).find("positive finite number"), std::string::npos)
        << g.status();
  }
}

}  // namespace
}  // namespace gradflow
