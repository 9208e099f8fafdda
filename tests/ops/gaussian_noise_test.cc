// GaussianNoise: N(0, stddev²) noise in training plans (mean, spread and
// tails checked on 10^5 draws), identity at inference, a new draw per step,
// reproducible for a seed and across thread counts, the identity gradient,
// and stddev errors.

#include "ops/gaussian_noise.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/reduce.h"

namespace gradflow {
namespace {

constexpr int64_t kElements = 100000;
constexpr double kStddev = 0.5;
// The sample mean and stddev of 10^5 normal draws lie within these of the
// true values with probability > 1 - 1e-6 (5 standard errors).
constexpr double kMeanTolerance = 5 * kStddev / 316.2;
constexpr double kStddevTolerance = 5 * kStddev / 447.2;

struct Net {
  Graph graph;
  Output x, y, dx;
  explicit Net(double stddev, ops::GaussianNoiseOptions options = {}, uint64_t seed = 42) : graph(seed) {
    x = ops::Placeholder(graph, "x", DType::kF32, {-1});
    y = ops::GaussianNoise(graph.Scope("noise"), x, stddev, options);
    auto grads = AddGradients(graph, ops::ReduceSum(graph, y), {x});  // dy = 1
    EXPECT_TRUE(grads.ok()) << grads.status();
    if (grads.ok()) dx = (*grads)[0];
  }
};

Tensor Ramp(int64_t n) {
  Tensor t(DType::kF32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = float(i % 100) / 100.0f;
  return t;
}

// y - x of each of `runs` runs of one plan.
std::vector<std::vector<float>> Noise(Net& net, Phase phase, int runs = 1) {
  Session session(net.graph);
  auto plan = session.Compile({net.y, net.dx}, {}, phase);
  EXPECT_TRUE(plan.ok()) << plan.status();
  const Tensor x = Ramp(kElements);
  std::vector<std::vector<float>> noise;
  std::vector<Tensor> out;
  for (int r = 0; r < runs && plan.ok(); ++r) {
    EXPECT_TRUE(plan->Run({{net.x, x}}, &out).ok());
    noise.emplace_back(kElements);
    for (int64_t i = 0; i < kElements; ++i) noise.back()[i] = out[0].data<float>()[i] - x.data<float>()[i];
    for (int64_t i = 0; i < kElements; ++i) EXPECT_EQ(out[1].data<float>()[i], 1.0f) << "dx = dy";
  }
  return noise;
}

TEST(GaussianNoiseTest, TrainingAddsZeroMeanNoiseOfTheGivenStddev) {
  Net net(kStddev);
  const std::vector<float> n = Noise(net, Phase::kTrain)[0];
  double sum = 0, squares = 0;
  int64_t beyond_4_sigma = 0;
  for (float v : n) {
    sum += v;
    squares += double(v) * v;
    beyond_4_sigma += std::abs(v) > 4 * kStddev;
  }
  const double mean = sum / kElements;
  EXPECT_NEAR(mean, 0.0, kMeanTolerance);
  EXPECT_NEAR(std::sqrt(squares / kElements - mean * mean), kStddev, kStddevTolerance);
  EXPECT_LT(beyond_4_sigma, 30) << "P(|z| > 4) = 6.3e-5: about 6 of 10^5";
}

TEST(GaussianNoiseTest, InferenceIsTheIdentity) {
  Net net(kStddev);
  const std::vector<float> noise = Noise(net, Phase::kInfer)[0];
  for (float v : noise) ASSERT_EQ(v, 0.0f);
}

TEST(GaussianNoiseTest, EachStepDrawsNewNoiseReproducibly) {
  Net a(kStddev), b(kStddev), other_seed(kStddev, {.seed = 3});
  auto runs_a = Noise(a, Phase::kTrain, 2);
  auto runs_b = Noise(b, Phase::kTrain, 2);
  EXPECT_NE(runs_a[0], runs_a[1]) << "a new draw every step";
  EXPECT_EQ(runs_a, runs_b) << "same session seed, same noise";
  EXPECT_NE(Noise(other_seed, Phase::kTrain)[0], runs_a[0]) << "the layer's seed changes the draws";
  Net fixed(kStddev, {.fixed_noise_seed = 9});
  auto runs_fixed = Noise(fixed, Phase::kTrain, 2);
  EXPECT_EQ(runs_fixed[0], runs_fixed[1]) << "a fixed noise seed repeats the noise";
}

TEST(GaussianNoiseTest, NoiseDoesNotDependOnTheThreadCount) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Net one(kStddev);
  auto single = Noise(one, Phase::kTrain);
  omp_set_num_threads(std::max(2, threads));
  Net many(kStddev);
  auto multi = Noise(many, Phase::kTrain);
  omp_set_num_threads(threads);
  EXPECT_EQ(single, multi);
}

TEST(GaussianNoiseTest, StddevMustBeFiniteAndNonNegative) {
  for (double bad : {-0.1, double(NAN), double(INFINITY)}) {
    Graph g;
    ops::GaussianNoise(g, ops::Placeholder(g, "x", DType::kF32, {-1, 3}), bad);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    // The declared range's message: "stddev must be >= 0, got -0.1" or
    // "stddev must be a finite number, got nan".
    EXPECT_THAT(std::string(g.status().message()), ::testing::HasSubstr("stddev must be "));
    EXPECT_THAT(std::string(g.status().message()), ::testing::HasSubstr(absl::StrCat("got ", bad)));
  }
}

}  // namespace
}  // namespace gradflow
