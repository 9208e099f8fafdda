// ops/batch_norm: forward and backward against a double reference of
// Keras's formulas for a small batch (training form, inference form, frozen
// nodes, without gamma/beta, rank 3), the moving statistics after several
// update steps, and shape errors.

#include "ops/batch_norm.h"

#include <cmath>
#include <vector>

#include "core/random.h"
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

constexpr double kEpsilon = ops::kBatchNormDefaultEpsilon;
// f32 arithmetic over a handful of rows: a few ulp relative to the values
// (which are O(1) to O(10)).
constexpr double kTolerance = 2e-5;

// A double reference of Keras's batch normalization over the rows of an
// [M, C] matrix (row-major).
struct Reference {
  std::vector<double> y, mean, variance, dx, dgamma, dbeta;
};

Reference Compute(const std::vector<float>& x, int64_t m, int64_t c, const std::vector<float>& gamma,
                  const std::vector<float>& beta, const std::vector<float>& dy, bool batch_statistics,
                  const std::vector<float>& moving_mean, const std::vector<float>& moving_variance) {
  Reference r;
  r.y.resize(m * c);
  r.dx.resize(m * c);
  r.mean.assign(c, 0);
  r.variance.assign(c, 0);
  r.dgamma.assign(c, 0);
  r.dbeta.assign(c, 0);
  for (int64_t f = 0; f < c; ++f) {
    double mean = 0, var = 0;
    if (!batch_statistics) {
      mean = moving_mean[f];
      var = moving_variance[f];
    } else {
      mean = 0;
      for (int64_t i = 0; i < m; ++i) mean += x[i * c + f];
      mean /= m;
      var = 0;
      for (int64_t i = 0; i < m; ++i) var += (x[i * c + f] - mean) * (x[i * c + f] - mean);
      var /= m;  // biased, as tf.nn.moments
    }
    r.mean[f] = mean;
    r.variance[f] = var;
    const double inv_std = 1 / std::sqrt(var + kEpsilon);
    const double g = gamma.empty() ? 1.0 : gamma[f], b = beta.empty() ? 0.0 : beta[f];
    for (int64_t i = 0; i < m; ++i) {
      const double xhat = (x[i * c + f] - mean) * inv_std;
      r.y[i * c + f] = g * xhat + b;
      r.dbeta[f] += dy[i * c + f];
      r.dgamma[f] += dy[i * c + f] * xhat;
    }
    for (int64_t i = 0; i < m; ++i) {
      const double xhat = (x[i * c + f] - mean) * inv_std;
      r.dx[i * c + f] = batch_statistics
                            ? g * inv_std / m * (m * dy[i * c + f] - r.dbeta[f] - xhat * r.dgamma[f])
                            : g * inv_std * dy[i * c + f];
    }
  }
  return r;
}

void ExpectClose(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.num_elements(), int64_t(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got.data<float>()[i], want[i], kTolerance * std::max(1.0, std::abs(want[i])))
        << what << " element " << i;
  }
}

// x [4, 3]: three features with different scales and offsets.
const std::vector<float> kX = {1.0f, -2.0f, 10.0f,  //
                               2.0f, 0.5f,  12.0f,  //
                               3.0f, -1.0f, 9.0f,   //
                               4.0f, 3.0f,  13.5f};
const std::vector<float> kGamma = {1.5f, 0.5f, -1.0f};
const std::vector<float> kBeta = {0.1f, -0.2f, 3.0f};
const std::vector<float> kMovingMean = {0.5f, -0.5f, 11.0f};
const std::vector<float> kMovingVariance = {2.0f, 0.25f, 4.0f};
const std::vector<float> kDy = {1.0f, -1.0f, 0.5f, 2.0f, 0.25f, -3.0f, -0.5f, 1.0f, 1.0f, 0.0f, 2.0f, -1.5f};

struct BnGraph {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>();
  Output x, dy, gamma, beta, moving_mean, moving_variance;
  ops::BatchNormOutputs bn;
  Output dx, dgamma, dbeta;
};

// y = BatchNorm(x) and the gradients of sum(dy * y), with gamma/beta fed.
BnGraph Build(bool scale, bool center, bool frozen, Shape x_shape = {-1, 3}) {
  BnGraph b;
  Graph& g = *b.graph;
  const int64_t c = x_shape[x_shape.rank() - 1];
  b.x = ops::Placeholder(g, "x", DType::kF32, x_shape);
  b.dy = ops::Placeholder(g, "dy", DType::kF32, x_shape);
  if (scale) b.gamma = ops::Placeholder(g, "gamma", DType::kF32, {c});
  if (center) b.beta = ops::Placeholder(g, "beta", DType::kF32, {c});
  Scope bn = g.Scope("bn");
  b.moving_mean = ops::Variable(bn, "moving_mean", {c}, Zeros(), /*trainable=*/false);
  b.moving_variance = ops::Variable(bn, "moving_variance", {c}, Ones(), /*trainable=*/false);
  b.bn = ops::BatchNorm(bn, b.x, {.gamma = b.gamma, .beta = b.beta, .moving_mean = b.moving_mean,
                                  .moving_variance = b.moving_variance, .frozen = frozen});
  std::vector<Output> xs = {b.x};
  if (scale) xs.push_back(b.gamma);
  if (center) xs.push_back(b.beta);
  auto grads = AddGradients(g, ops::ReduceSum(g, ops::Mul(g, b.dy, b.bn.y)), xs);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return b;
  int k = 0;
  b.dx = (*grads)[k++];
  if (scale) b.dgamma = (*grads)[k++];
  if (center) b.dbeta = (*grads)[k++];
  return b;
}

std::vector<Feed> Feeds(const BnGraph& b, const std::vector<float>& x, Shape shape = {4, 3}) {
  std::vector<Feed> feeds = {{b.x, Tensor::FromVector<float>(shape, x).value()},
                             {b.dy, Tensor::FromVector<float>(shape, kDy).value()}};
  if (b.gamma.valid()) feeds.push_back({b.gamma, Tensor::FromVector<float>({3}, kGamma).value()});
  if (b.beta.valid()) feeds.push_back({b.beta, Tensor::FromVector<float>({3}, kBeta).value()});
  return feeds;
}

void SetMovingStatistics(Session& s) {
  ASSERT_TRUE(s.InitializeVariables().ok());
  ASSERT_TRUE(s.variables().Set("bn/moving_mean", Tensor::FromVector<float>({3}, kMovingMean).value()).ok());
  ASSERT_TRUE(s.variables().Set("bn/moving_variance", Tensor::FromVector<float>({3}, kMovingVariance).value()).ok());
}

// A worked column, by hand: feature 0 is x = 1, 2, 3, 4: mean 2.5, biased
// variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, so with gamma 1.5, beta
// 0.1 and epsilon 1e-3: y(x = 1) = 1.5 * (-1.5 / sqrt(1.251)) + 0.1.
TEST(BatchNormTest, TrainingFormMatchesHandComputedReference) {
  BnGraph b = Build(true, true, false);
  ASSERT_TRUE(b.graph->ok()) << b.graph->status();
  Session s(*b.graph);
  SetMovingStatistics(s);
  auto plan = s.Compile({b.bn.y, b.bn.mean, b.bn.variance, b.dx, b.dgamma, b.dbeta}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run(Feeds(b, kX));
  ASSERT_TRUE(out.ok()) << out.status();

  EXPECT_NEAR((*out)[1].data<float>()[0], 2.5, kTolerance);
  EXPECT_NEAR((*out)[2].data<float>()[0], 1.25, kTolerance);
  EXPECT_NEAR((*out)[0].data<float>()[0], 1.5 * (-1.5 / std::sqrt(1.251)) + 0.1, kTolerance);

  Reference r = Compute(kX, 4, 3, kGamma, kBeta, kDy, true, kMovingMean, kMovingVariance);
  ExpectClose((*out)[0], r.y, "y");
  ExpectClose((*out)[1], r.mean, "mean");
  ExpectClose((*out)[2], r.variance, "variance");
  ExpectClose((*out)[3], r.dx, "dx");
  ExpectClose((*out)[4], r.dgamma, "dgamma");
  ExpectClose((*out)[5], r.dbeta, "dbeta");
  // The training form's dx sums to zero per feature (shifting a whole
  // column changes nothing after normalization).
  for (int f = 0; f < 3; ++f) {
    double sum = 0;
    for (int i = 0; i < 4; ++i) sum += (*out)[3].data<float>()[i * 3 + f];
    EXPECT_NEAR(sum, 0.0, 1e-5);
  }
}

TEST(BatchNormTest, InferencePlanUsesTheMovingStatistics) {
  BnGraph b = Build(true, true, false);
  Session s(*b.graph);
  SetMovingStatistics(s);
  auto plan = s.Compile({b.bn.y, b.bn.mean, b.bn.variance, b.dx, b.dgamma, b.dbeta}, {}, Phase::kInfer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run(Feeds(b, kX));
  ASSERT_TRUE(out.ok()) << out.status();
  Reference r = Compute(kX, 4, 3, kGamma, kBeta, kDy, false, kMovingMean, kMovingVariance);
  ExpectClose((*out)[0], r.y, "y");
  ExpectClose((*out)[1], r.mean, "mean (the moving one)");
  ExpectClose((*out)[2], r.variance, "variance (the moving one)");
  ExpectClose((*out)[3], r.dx, "dx");
  ExpectClose((*out)[4], r.dgamma, "dgamma");
  ExpectClose((*out)[5], r.dbeta, "dbeta");
}

// Keras: a BatchNormalization layer with trainable = False normalizes with
// its moving statistics even while the rest of the model trains.
TEST(BatchNormTest, FrozenNodeUsesTheMovingStatisticsInATrainingPlan) {
  BnGraph b = Build(true, true, /*frozen=*/true);
  Session s(*b.graph);
  SetMovingStatistics(s);
  auto plan = s.Compile({b.bn.y, b.dx, b.dgamma, b.dbeta}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run(Feeds(b, kX));
  ASSERT_TRUE(out.ok()) << out.status();
  Reference r = Compute(kX, 4, 3, kGamma, kBeta, kDy, false, kMovingMean, kMovingVariance);
  ExpectClose((*out)[0], r.y, "y");
  ExpectClose((*out)[1], r.dx, "dx");
  ExpectClose((*out)[2], r.dgamma, "dgamma");
  ExpectClose((*out)[3], r.dbeta, "dbeta");
}

TEST(BatchNormTest, WithoutGammaAndBeta) {
  for (auto [scale, center] : {std::pair{false, false}, {true, false}, {false, true}}) {
    SCOPED_TRACE(testing::Message() << "scale " << scale << " center " << center);
    BnGraph b = Build(scale, center, false);
    ASSERT_TRUE(b.graph->ok()) << b.graph->status();
    Session s(*b.graph);
    std::vector<ValueRef> fetches = {b.bn.y, b.dx};
    if (scale) fetches.push_back(b.dgamma);
    if (center) fetches.push_back(b.dbeta);
    auto plan = s.Compile(fetches, {}, Phase::kTrain);
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto out = plan->Run(Feeds(b, kX));
    ASSERT_TRUE(out.ok()) << out.status();
    Reference r = Compute(kX, 4, 3, scale ? kGamma : std::vector<float>{},
                          center ? kBeta : std::vector<float>{}, kDy, true, {}, {});
    ExpectClose((*out)[0], r.y, "y");
    ExpectClose((*out)[1], r.dx, "dx");
    if (scale) ExpectClose((*out)[2], r.dgamma, "dgamma");
    if (center) ExpectClose((*out)[scale ? 3 : 2], r.dbeta, "dbeta");
  }
}

// [2, 2, 3] normalizes each of the 3 features over 2 x 2 = 4 values: the
// same numbers as the [4, 3] case.
TEST(BatchNormTest, HigherRankNormalizesOverAllButTheLastAxis) {
  BnGraph b = Build(true, true, false, Shape{-1, 2, 3});
  ASSERT_TRUE(b.graph->ok()) << b.graph->status();
  Session s(*b.graph);
  auto plan = s.Compile({b.bn.y, b.bn.mean, b.dx}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run(Feeds(b, kX, Shape{2, 2, 3}));
  ASSERT_TRUE(out.ok()) << out.status();
  Reference r = Compute(kX, 4, 3, kGamma, kBeta, kDy, true, {}, {});
  EXPECT_EQ((*out)[0].shape(), Shape({2, 2, 3}));
  ExpectClose((*out)[0], r.y, "y");
  ExpectClose((*out)[1], r.mean, "mean");
  ExpectClose((*out)[2], r.dx, "dx");
}

// A larger batch whose features sit far from 0 (offset 50, stddev ~1): the
// variance must not lose its digits to cancellation.
TEST(BatchNormTest, LargeBatchWithLargeOffsetMatchesReference) {
  constexpr int64_t kRows = 256, kCols = 3;
  std::vector<float> x(kRows * kCols);
  Rng rng(3);
  for (float& v : x) v = static_cast<float>(50 + rng.Normal());
  Graph g;
  Output xp = ops::Placeholder(g, "x", DType::kF32, {-1, kCols});
  Scope bn = g.Scope("bn");
  auto out_bn = ops::BatchNorm(bn, xp, {.moving_mean = ops::Variable(bn, "mm", {kCols}, Zeros(), false),
                                        .moving_variance = ops::Variable(bn, "mv", {kCols}, Ones(), false)});
  Session s(g);
  auto plan = s.Compile({out_bn.y, out_bn.variance}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{xp, Tensor::FromVector<float>({kRows, kCols}, x).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  Reference r = Compute(x, kRows, kCols, {}, {}, std::vector<float>(x.size(), 0.0f), true, {}, {});
  for (int f = 0; f < kCols; ++f) {
    EXPECT_NEAR((*out)[1].data<float>()[f], r.variance[f], 1e-4 * r.variance[f]) << f;
  }
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR((*out)[0].data<float>()[i], r.y[i], 1e-4) << i;
}

// Five training steps with momentum 0.9 (so the moving statistics move a
// lot): each step does moving = moving - (moving - batch_stat) * 0.1 with the
// biased batch variance, after the step's forward read the old value.
TEST(BatchNormTest, MovingStatisticsAfterSeveralSteps) {
  constexpr double kMomentum = 0.9;
  BnGraph b = Build(true, true, false);
  Graph& g = *b.graph;
  Node* update_mean = ops::AssignMovingAverage(g, b.moving_mean, b.bn.mean, kMomentum);
  Node* update_variance = ops::AssignMovingAverage(g, b.moving_variance, b.bn.variance, kMomentum);
  Output train = ops::Group(g, {update_mean, update_variance}, "train");
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({b.bn.y}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();

  std::vector<double> mean = {0, 0, 0}, variance = {1, 1, 1};  // Keras's initial values
  for (int step = 0; step < 5; ++step) {
    std::vector<float> x = kX;
    for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] * float(1 + step) + float(step * (i % 3));
    auto out = plan->Run(Feeds(b, x));
    ASSERT_TRUE(out.ok()) << out.status();
    Reference r = Compute(x, 4, 3, kGamma, kBeta, kDy, true, {}, {});
    ExpectClose((*out)[0], r.y, "y normalizes with the batch statistics");
    for (int f = 0; f < 3; ++f) {
      mean[f] -= (mean[f] - r.mean[f]) * (1 - kMomentum);
      variance[f] -= (variance[f] - r.variance[f]) * (1 - kMomentum);
    }
  }
  auto moving_mean = s.variables().Get("bn/moving_mean");
  auto moving_variance = s.variables().Get("bn/moving_variance");
  ASSERT_TRUE(moving_mean.ok() && moving_variance.ok());
  ExpectClose(*moving_mean, mean, "moving_mean");
  ExpectClose(*moving_variance, variance, "moving_variance");

  // An inference plan over the same graph normalizes with them.
  auto infer = s.Compile({b.bn.y}, {}, Phase::kInfer);
  ASSERT_TRUE(infer.ok()) << infer.status();
  auto out = infer->Run(Feeds(b, kX));
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<float> mm(3), mv(3);
  for (int f = 0; f < 3; ++f) {
    mm[f] = static_cast<float>(mean[f]);
    mv[f] = static_cast<float>(variance[f]);
  }
  ExpectClose((*out)[0], Compute(kX, 4, 3, kGamma, kBeta, kDy, false, mm, mv).y, "inference y");
}

TEST(BatchNormTest, KerasDefaults) {
  EXPECT_EQ(ops::kBatchNormDefaultEpsilon, 1e-3);
  EXPECT_EQ(ops::kBatchNormDefaultMomentum, 0.99);
  EXPECT_EQ(ops::BatchNormParams{}.epsilon, 1e-3);
}

TEST(BatchNormTest, ShapeErrorsNameTheNodeAndShapes) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  Output gamma = ops::Placeholder(g, "gamma", DType::kF32, {4});
  Scope bn = g.Scope("bn");
  Output mm = ops::Variable(bn, "moving_mean", {3}, Zeros(), false);
  Output mv = ops::Variable(bn, "moving_variance", {3}, Ones(), false);
  EXPECT_FALSE(ops::BatchNorm(bn, x, {.gamma = gamma, .moving_mean = mm, .moving_variance = mv}).y.valid());
  ExpectMentions(g.status().message(), {"bn/BatchNorm", "'gamma' f32[4]", "'x' f32[-1, 3]"});

  Graph g2;
  Output v = ops::Placeholder(g2, "v", DType::kF32, {3});
  Output mm2 = ops::Variable(g2, "mm", {3}, Zeros(), false);
  Output mv2 = ops::Variable(g2, "mv", {3}, Ones(), false);
  EXPECT_FALSE(ops::BatchNorm(g2, v, {.moving_mean = mm2, .moving_variance = mv2}).y.valid());
  EXPECT_NE(std::string(g2.status().message()).find("rank >= 2"), std::string::npos) << g2.status();

  Graph g3;
  Output x3 = ops::Placeholder(g3, "x", DType::kF32, {-1, 3});
  Output mm3 = ops::Variable(g3, "mm", {3}, Zeros(), false);
  Output mv3 = ops::Variable(g3, "mv", {3}, Ones(), false);
  EXPECT_FALSE(
      ops::BatchNorm(g3, x3, {.moving_mean = mm3, .moving_variance = mv3, .epsilon = 0}).y.valid());
  EXPECT_NE(std::string(g3.status().message()).find("epsilon must be > 0"), std::string::npos)
      << g3.status();

  Graph g4;
  Output x4 = ops::Placeholder(g4, "x", DType::kF32, {-1, 3});
  EXPECT_FALSE(ops::BatchNorm(g4.Scope("bn"), x4, {}).y.valid());
  EXPECT_NE(std::string(g4.status().message()).find("moving mean and variance are required"),
            std::string::npos)
      << g4.status();
  Output mm4 = ops::Variable(g4, "mm", {3}, Zeros(), false);
  EXPECT_EQ(ops::AssignMovingAverage(g4, mm4, mm4, 1.5), nullptr);
}

}  // namespace
}  // namespace gradflow
