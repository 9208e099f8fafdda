// ops/dense_batch_norm: inference plans fold Dense -> BatchNorm -> activation
// into one inner product (DenseBatchNormInference). Each case compares a
// fused plan with the same graph compiled without fusion
// (SessionOptions::fuse_ops = false), before and after the variables change
// (the kernel must refold), and checks where the fusion must not happen.

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "core/random.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/normalization.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/batch_norm.h"
#include "ops/dense.h"
#include "ops/softmax.h"

namespace gradflow {
namespace {

// Folding reorders float products (x·(W·s) instead of (x·W)·s): rounding only.
constexpr double kTolerance = 1e-5;

double MaxRelDiff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
  }
  return worst;
}

Tensor RandomTensor(Shape shape, uint64_t seed, double lo, double hi) {
  Tensor t(DType::kF32, std::move(shape));
  Rng rng(seed);
  for (float& v : t.flat<float>()) v = static_cast<float>(lo + (hi - lo) * rng.Uniform());
  return t;
}

int CountFused(const Plan& plan) {
  int n = 0;
  for (const std::string& name : plan.NodeNames()) n += name.find('+') != std::string::npos;
  return n;
}

struct Case {
  std::string activation;  // "" for none
  bool bias, scale, center;
  friend void PrintTo(const Case& c, std::ostream* os) {
    *os << "'" << c.activation << "' bias " << c.bias << " gamma " << c.scale << " beta " << c.center;
  }
};

class DenseBatchNormTest : public ::testing::TestWithParam<Case> {};

// x [-1, 5] -> Dense(4) -> BatchNorm -> activation -> Dense(3) -> softmax.
TEST_P(DenseBatchNormTest, FusedPlanMatchesUnfusedBeforeAndAfterWeightsChange) {
  const Case c = GetParam();
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 5});
  Scope dense(g, "dense"), bn(g, "bn");
  Output kernel = ops::Variable(dense, "kernel", {5, 4}, RandomUniform(-1, 1));
  Output bias = c.bias ? ops::Variable(dense, "bias", {4}, RandomUniform(-1, 1)) : Output{};
  Output z = ops::Dense(dense, x, kernel, bias);
  ops::BatchNormParams params{
      .gamma = c.scale ? ops::Variable(bn, "gamma", {4}, RandomUniform(0.5, 2)) : Output{},
      .beta = c.center ? ops::Variable(bn, "beta", {4}, RandomUniform(-1, 1)) : Output{},
      .moving_mean = ops::Variable(bn, "moving_mean", {4}, RandomUniform(-1, 1), false),
      .moving_variance = ops::Variable(bn, "moving_variance", {4}, RandomUniform(0.2, 3), false)};
  Output h = ops::BatchNorm(bn, z, params).y;
  h = ops::Activation(Scope(g, "act"), h, c.activation);
  Scope head(g, "head");
  Output y = ops::Softmax(head, ops::Dense(head, h, ops::Variable(head, "kernel", {4, 3}, RandomUniform(-1, 1))));
  ASSERT_TRUE(g.ok()) << g.status();

  Session fused(g), unfused(g, {.fuse_ops = false});
  auto fused_plan = fused.Compile({y});
  auto unfused_plan = unfused.Compile({y});
  ASSERT_TRUE(fused_plan.ok()) << fused_plan.status();
  ASSERT_TRUE(unfused_plan.ok()) << unfused_plan.status();
  EXPECT_EQ(CountFused(*fused_plan), 1);
  EXPECT_EQ(CountFused(*unfused_plan), 0);
  // Same variables in both sessions (Compile created them from the same seed).
  auto sync = [&] {
    for (const std::string& name : fused.variables().Names()) {
      ASSERT_TRUE(unfused.variables().Set(name, *fused.variables().Get(name)).ok());
    }
  };
  sync();
  const Tensor input = RandomTensor({7, 5}, 1, -2, 2);
  auto compare = [&](const char* when) {
    auto a = fused_plan->Run({{x, input}});
    auto b = unfused_plan->Run({{x, input}});
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_LT(MaxRelDiff((*a)[0], (*b)[0]), kTolerance) << when;
  };
  compare("initial weights");
  // Set: the next run must refold.
  ASSERT_TRUE(fused.variables().Set("bn/moving_variance", RandomTensor({4}, 2, 0.1, 5)).ok());
  ASSERT_TRUE(fused.variables().Set("dense/kernel", RandomTensor({5, 4}, 3, -2, 2)).ok());
  sync();
  compare("after Set");
  // Writing through the live tensor from Get (as pruning does).
  Tensor mean = *fused.variables().Get("bn/moving_mean");
  for (float& v : mean.flat<float>()) v += 0.5f;
  sync();
  compare("after writing through Get");
  // A batch of another size compiles another executable: it folds too.
  auto a = fused_plan->Run({{x, input.Slice(0, 2).value()}});
  auto b = unfused_plan->Run({{x, input.Slice(0, 2).value()}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(MaxRelDiff((*a)[0], (*b)[0]), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DenseBatchNormTest,
    ::testing::Values(Case{"", true, true, true}, Case{"elu", true, true, true},
                      Case{"relu", false, true, true}, Case{"tanh", true, false, true},
                      Case{"sigmoid", true, true, false}, Case{"gelu", false, false, false},
                      Case{"softmax", true, true, true}),  // softmax: folded, not a post-op
    [](const auto& info) {
      const Case& c = info.param;
      return (c.activation.empty() ? std::string("linear") : c.activation) + (c.bias ? "_bias" : "") +
             (c.scale ? "_gamma" : "") + (c.center ? "_beta" : "");
    });

// The fusion must not happen where a removed value is still needed.
TEST(DenseBatchNormFusion, OnlyWhereEveryIntermediateStaysInside) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  Scope dense(g, "dense"), bn(g, "bn");
  Output z = ops::Dense(dense, x, ops::Variable(dense, "kernel", {3, 2}, HeNormal()));
  ops::BatchNormParams params{.moving_mean = ops::Variable(bn, "mean", {2}, Zeros(), false),
                              .moving_variance = ops::Variable(bn, "var", {2}, Ones(), false)};
  ops::BatchNormOutputs stats = ops::BatchNorm(bn, z, params);
  Output h = stats.y;
  Output y = ops::Elu(g, h);
  Session s(g);
  auto fused = s.Compile({y});
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(fused->NodeNames().back(), "dense/Dense+bn/BatchNorm+Elu");
  // The Dense output is fetched too: nothing fuses.
  auto with_z = s.Compile({y, z});
  ASSERT_TRUE(with_z.ok());
  EXPECT_EQ(CountFused(*with_z), 0);
  // The batch norm output is fetched: Dense and BatchNorm fold, the Elu stays.
  auto with_h = s.Compile({y, h});
  ASSERT_TRUE(with_h.ok());
  EXPECT_EQ(CountFused(*with_h), 1);
  EXPECT_EQ(with_h->NodeNames().back(), "Elu");
  // The batch norm's statistics are fetched: the fused op does not provide them.
  auto with_mean = s.Compile({y, stats.mean});
  ASSERT_TRUE(with_mean.ok());
  EXPECT_EQ(CountFused(*with_mean), 0);
  // A training plan uses batch statistics: no folding.
  auto train = s.Compile({y}, {}, Phase::kTrain);
  ASSERT_TRUE(train.ok());
  EXPECT_EQ(CountFused(*train), 0);
  const Tensor input = RandomTensor({4, 3}, 5, -1, 1);
  auto a = fused->Run({{x, input}});
  auto b = with_z->Run({{x, input}});
  auto c = with_mean->Run({{x, input}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_LT(MaxRelDiff((*a)[0], (*b)[0]), kTolerance);
  EXPECT_LT(MaxRelDiff((*a)[0], (*c)[0]), kTolerance);
}

// Through nn::Sequential: Predict after Fit, and after more Fit (the training
// plan's updates must make the predict plan refold).
TEST(DenseBatchNormFusion, SequentialPredictFollowsTraining) {
  nn::Sequential model({nn::Dense(16, {.use_bias = false, .input_shape = Shape{6}}),
                        nn::BatchNormalization(), nn::Activation("elu"),
                        nn::Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.loss = "sparse_categorical_crossentropy", .optimizer = optimizers::SGD{0.05}}).ok());
  Tensor x = RandomTensor({64, 6}, 7, -2, 2);
  Tensor labels(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) labels.data<int32_t>()[i] = (i * 5) % 3;
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(model.Fit(x, labels, {.epochs = 2, .batch_size = 16, .verbose = 0}).ok());
    auto predicted = model.Predict(x, 32);
    ASSERT_TRUE(predicted.ok()) << predicted.status();
    EXPECT_EQ(CountFused(*model.predict_plan()), 1);
    // The reference: the same graph and weights, unfused.
    Session reference(*model.graph(), {.fuse_ops = false});
    auto plan = reference.Compile({model.output()});
    ASSERT_TRUE(plan.ok()) << plan.status();
    for (const std::string& name : model.session()->variables().Names()) {
      ASSERT_TRUE(reference.variables().Set(name, *model.session()->variables().Get(name)).ok());
    }
    auto expected = plan->Run({{model.input(), x}});
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_LT(MaxRelDiff(*predicted, (*expected)[0]), kTolerance) << "round " << round;
  }
}

}  // namespace
}  // namespace gradflow
