// Dropout and AlphaDropout: kept fraction (binomial tolerance), scaling,
// identity at inference, mask reproducibility (same seed, thread count),
// gradient masked like the forward pass, alpha dropout's mean/variance
// preservation, and rate errors.

#include "ops/dropout.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/reduce.h"

namespace gradflow {
namespace {

constexpr int64_t kElements = 100000;
// A binomial count within this many standard deviations of its mean: a
// correct kernel fails with probability < 1e-6 (and the seeds are fixed).
constexpr double kSigmas = 5.0;

// Values in [-1, -0.01] U [0.01, 1]: never 0, so y == 0 means dropped.
Tensor NonZeroInput(int64_t n) {
  Tensor t(DType::kF32, {n});
  Rng rng(7);
  for (float& v : t.flat<float>()) {
    float u = static_cast<float>(rng.Uniform(0.01, 1.0));
    v = rng.Uniform() < 0.5 ? -u : u;
  }
  return t;
}

enum class Kind { kDropout, kAlpha };

struct Net {
  Graph graph;
  Output x, y, dx;
  explicit Net(Kind kind, double rate, ops::DropoutOptions options = {}, uint64_t seed = 42)
      : graph(seed) {
    x = ops::Placeholder(graph, "x", DType::kF32, {-1});
    Scope scope = graph.Scope("drop");
    y = kind == Kind::kDropout ? ops::Dropout(scope, x, rate, options)
                               : ops::AlphaDropout(scope, x, rate, options);
    auto grads = AddGradients(graph, ops::ReduceSum(graph, y), {x});  // dy = 1
    EXPECT_TRUE(grads.ok()) << grads.status();
    if (grads.ok()) dx = (*grads)[0];
  }
};

// Fetches y and dx from one plan of `phase`, `runs` times; returns the last run.
std::vector<Tensor> RunNet(Net& net, Phase phase, const Tensor& x, int runs = 1) {
  Session session(net.graph);
  auto plan = session.Compile({net.y, net.dx}, {}, phase);
  EXPECT_TRUE(plan.ok()) << plan.status();
  std::vector<Tensor> out;
  for (int r = 0; r < runs; ++r) EXPECT_TRUE(plan->Run({{net.x, x}}, &out).ok());
  return out;
}

int64_t CountKept(const Tensor& y) {
  int64_t kept = 0;
  for (float v : y.flat<float>()) kept += v != 0;
  return kept;
}

TEST(DropoutTest, KeepsTheExpectedFractionAndScalesKeptUnits) {
  for (double rate : {0.2, 0.5}) {
    SCOPED_TRACE(rate);
    Net net(Kind::kDropout, rate);
    const Tensor x = NonZeroInput(kElements);
    std::vector<Tensor> out = RunNet(net, Phase::kTrain, x);
    const double p = 1 - rate;
    const double sd = std::sqrt(kElements * p * (1 - p));
    EXPECT_NEAR(double(CountKept(out[0])), kElements * p, kSigmas * sd);
    const float scale = static_cast<float>(1.0 / (1.0 - rate));
    for (int64_t i = 0; i < kElements; ++i) {
      const float y = out[0].data<float>()[i];
      if (y != 0) {
        ASSERT_FLOAT_EQ(y, x.data<float>()[i] * scale) << i;
      }
    }
  }
}

TEST(DropoutTest, IsTheIdentityInInference) {
  for (Kind kind : {Kind::kDropout, Kind::kAlpha}) {
    Net net(kind, 0.5);
    const Tensor x = NonZeroInput(1000);
    std::vector<Tensor> out = RunNet(net, Phase::kInfer, x);
    EXPECT_EQ(out[0].ToVector<float>(), x.ToVector<float>());
    EXPECT_EQ(out[1].ToVector<float>(), std::vector<float>(1000, 1.0f));  // dx = dy
  }
}

TEST(DropoutTest, RateZeroIsTheIdentityInTraining) {
  Net net(Kind::kDropout, 0.0);
  const Tensor x = NonZeroInput(1000);
  EXPECT_EQ(RunNet(net, Phase::kTrain, x)[0].ToVector<float>(), x.ToVector<float>());
}

TEST(DropoutTest, ActiveInInferenceDropsInInferencePlans) {
  Net net(Kind::kDropout, 0.5, {.active_in_inference = true});
  const Tensor x = NonZeroInput(kElements);
  const double sd = std::sqrt(kElements * 0.25);
  EXPECT_NEAR(double(CountKept(RunNet(net, Phase::kInfer, x)[0])), kElements * 0.5, kSigmas * sd);
}

TEST(DropoutTest, SameSeedSameMaskNewStepNewMask) {
  const Tensor x = NonZeroInput(10000);
  Net a(Kind::kDropout, 0.5), b(Kind::kDropout, 0.5), other_seed(Kind::kDropout, 0.5, {}, 7);
  const std::vector<float> first = RunNet(a, Phase::kTrain, x)[0].ToVector<float>();
  EXPECT_EQ(first, RunNet(b, Phase::kTrain, x)[0].ToVector<float>());  // same graph seed
  EXPECT_NE(first, RunNet(a, Phase::kTrain, x, /*runs=*/2)[0].ToVector<float>());  // next step
  EXPECT_NE(first, RunNet(other_seed, Phase::kTrain, x)[0].ToVector<float>());
}

TEST(DropoutTest, FixedMaskSeedGivesTheSameMaskEveryStep) {
  const Tensor x = NonZeroInput(10000);
  Net net(Kind::kDropout, 0.5, {.fixed_mask_seed = 11});
  EXPECT_EQ(RunNet(net, Phase::kTrain, x, 1)[0].ToVector<float>(),
            RunNet(net, Phase::kTrain, x, 3)[0].ToVector<float>());
}

TEST(DropoutTest, TwoNodesInOneGraphDrawDifferentMasks) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1});
  Output y1 = ops::Dropout(g.Scope("a"), x, 0.5), y2 = ops::Dropout(g.Scope("b"), x, 0.5);
  Session s(g);
  auto plan = s.Compile({y1, y2}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{x, NonZeroInput(1000)}});
  ASSERT_TRUE(out.ok());
  EXPECT_NE((*out)[0].ToVector<float>(), (*out)[1].ToVector<float>());
}

TEST(DropoutTest, MaskDoesNotDependOnTheThreadCount) {
  const Tensor x = NonZeroInput(kElements);  // large enough to run in parallel
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Net one(Kind::kAlpha, 0.3);
  std::vector<Tensor> a = RunNet(one, Phase::kTrain, x);
  omp_set_num_threads(2);
  Net two(Kind::kAlpha, 0.3);
  std::vector<Tensor> b = RunNet(two, Phase::kTrain, x);
  omp_set_num_threads(saved);
  EXPECT_EQ(a[0].ToVector<float>(), b[0].ToVector<float>());
  EXPECT_EQ(a[1].ToVector<float>(), b[1].ToVector<float>());
}

TEST(DropoutTest, GradientUsesTheForwardMask) {
  const double rate = 0.4;
  Net net(Kind::kDropout, rate);
  const Tensor x = NonZeroInput(kElements);
  std::vector<Tensor> out = RunNet(net, Phase::kTrain, x, /*runs=*/3);
  const float scale = static_cast<float>(1.0 / (1.0 - rate));
  for (int64_t i = 0; i < kElements; ++i) {
    const bool kept = out[0].data<float>()[i] != 0;
    ASSERT_EQ(out[1].data<float>()[i], kept ? scale : 0.0f) << i;
  }
}

TEST(AlphaDropoutTest, GradientUsesTheForwardMaskAndDroppedUnitsTakeTheSaturationValue) {
  const double rate = 0.2;
  const ops::AlphaDropoutCoefficients c = ops::AlphaDropoutCoefficientsFor(rate);
  const float dropped = static_cast<float>(c.a * c.alpha_p + c.b);
  Net net(Kind::kAlpha, rate);
  const Tensor x = NonZeroInput(kElements);
  std::vector<Tensor> out = RunNet(net, Phase::kTrain, x, /*runs=*/2);
  int64_t kept = 0;
  for (int64_t i = 0; i < kElements; ++i) {
    const float y = out[0].data<float>()[i];
    const float kept_value = x.data<float>()[i] * float(c.a) + float(c.b);
    const bool is_kept = y == kept_value;
    ASSERT_TRUE(is_kept || y == dropped) << i << ": " << y;
    ASSERT_EQ(out[1].data<float>()[i], is_kept ? float(c.a) : 0.0f) << i;
    kept += is_kept;
  }
  const double sd = std::sqrt(kElements * rate * (1 - rate));
  EXPECT_NEAR(double(kept), kElements * (1 - rate), kSigmas * sd);
}

TEST(AlphaDropoutTest, CoefficientsFollowKeras) {
  // alpha_p = -alpha * scale with SELU's constants; rate 0 is the identity.
  const ops::AlphaDropoutCoefficients c = ops::AlphaDropoutCoefficientsFor(0.1);
  EXPECT_DOUBLE_EQ(c.alpha_p, -ops::kSeluAlpha * ops::kSeluScale);
  EXPECT_NEAR(c.alpha_p, -1.7580993408473766, 1e-12);
  EXPECT_NEAR(c.a, std::pow(0.9 * (1 + 0.1 * c.alpha_p * c.alpha_p), -0.5), 1e-12);
  EXPECT_NEAR(c.b, -c.a * c.alpha_p * 0.1, 1e-12);
  const ops::AlphaDropoutCoefficients zero = ops::AlphaDropoutCoefficientsFor(0.0);
  EXPECT_DOUBLE_EQ(zero.a, 1.0);
  EXPECT_DOUBLE_EQ(zero.b, 0.0);
}

TEST(AlphaDropoutTest, KeepsMeanZeroAndVarianceOneOfStandardizedInputs) {
  const int64_t n = 400000;
  Tensor x(DType::kF32, {n});
  Rng rng(3);
  for (float& v : x.flat<float>()) v = static_cast<float>(rng.Normal());
  for (double rate : {0.1, 0.3}) {
    SCOPED_TRACE(rate);
    Net net(Kind::kAlpha, rate);
    std::vector<Tensor> out = RunNet(net, Phase::kTrain, x);
    double sum = 0, square_sum = 0;
    for (float v : out[0].flat<float>()) {
      sum += v;
      square_sum += double(v) * v;
    }
    const double mean = sum / n, variance = square_sum / n - mean * mean;
    // Standard errors: 1/sqrt(n) = 0.0016 for the mean; about
    // sqrt(E[y^4] - 1)/sqrt(n) < 0.005 for the variance.
    EXPECT_NEAR(mean, 0.0, 0.01);
    EXPECT_NEAR(variance, 1.0, 0.03);
    // Plain dropout would not: zeros shift the variance to about 1 / (1 - rate).
  }
}

TEST(DropoutTest, RateOutsideZeroOneIsABuildErrorNamingTheNode) {
  for (double rate : {1.0, -0.1, 1.5}) {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
    EXPECT_FALSE(ops::Dropout(g.Scope("hidden_dropout"), x, rate).valid());
    EXPECT_NE(g.status().message().find("hidden_dropout/Dropout"), absl::string_view::npos)
        << g.status();
    EXPECT_NE(g.status().message().find("rate must be in [0, 1)"), absl::string_view::npos)
        << g.status();
  }
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  EXPECT_FALSE(ops::AlphaDropout(g, x, 1.0).valid());
}

}  // namespace
}  // namespace gradflow
