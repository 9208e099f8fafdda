// Tests of nn/normalization.cc: BatchNormalization's variables and summary
// counts (Keras's numbers), moving statistics updated by Fit only, inference
// with the moving statistics, frozen layers, and BN before or after the
// activation in a model that trains.

#include "nn/normalization.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

constexpr double kEpsilon = 1e-3;  // Keras's default
// f32 statistics of a few dozen values against double references.
constexpr double kTolerance = 1e-5;

Tensor RandomData(int64_t rows, int64_t cols, uint64_t seed, double mean = 0, double stddev = 1) {
  Tensor t(DType::kF32, {rows, cols});
  Rng rng(seed);
  for (float& v : t.flat<float>()) v = static_cast<float>(mean + stddev * rng.Normal());
  return t;
}

Tensor Variable(nn::Model& model, const std::string& name) {
  auto v = model.session()->variables().Get(name);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? v->Clone() : Tensor();
}

// Keras: BatchNormalization after Flatten on 28x28 has 4 x 784 = 3,136
// parameters, of which the moving mean and variance (1,568) are non-trainable.
TEST(BatchNormalizationTest, SummaryCountsMovingStatisticsAsNonTrainable) {
  nn::Sequential model({nn::Flatten(Shape{28, 28}), nn::BatchNormalization(),
                        nn::Dense(10, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  std::vector<std::string> names;
  for (const Output& v : model.layers()[1]->variables()) names.push_back(v.node->name);
  EXPECT_EQ(names, (std::vector<std::string>{"batch_normalization/gamma", "batch_normalization/beta",
                                             "batch_normalization/moving_mean",
                                             "batch_normalization/moving_variance"}));
  const std::string summary = model.Summary();
  EXPECT_THAT(summary, HasSubstr("batch_normalization (BatchNormalization)"));
  EXPECT_THAT(summary, HasSubstr("3,136"));
  EXPECT_EQ(model.CountParams(false), 1568);
  EXPECT_EQ(model.CountParams(true), 1568 + 7850);
}

// The chapter's BN model: the summary of Keras prints 271,346 parameters,
// 268,978 trainable and 2,368 non-trainable.
TEST(BatchNormalizationTest, ChapterModelHasKerasParameterCounts) {
  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::BatchNormalization(),
      nn::Dense(300, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::BatchNormalization(),
      nn::Dense(100, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::BatchNormalization(),
      nn::Dense(10, {.activation = "softmax"}),
  });
  ASSERT_TRUE(model.Compile({}).ok());
  EXPECT_EQ(model.CountParams(true) + model.CountParams(false), 271346);
  EXPECT_EQ(model.CountParams(true), 268978);
  EXPECT_EQ(model.CountParams(false), 2368);
  EXPECT_THAT(model.Summary(), HasSubstr("batch_normalization_2 (BatchNormalization)"));
}

// A model that is just a BN layer, trained on MSE towards 0: one full-batch
// step without shuffling moves the moving statistics once, with the biased
// batch variance, and Predict then uses them.
TEST(BatchNormalizationTest, FitUpdatesMovingStatisticsAndPredictUsesThem) {
  constexpr int64_t kRows = 32, kCols = 3;
  constexpr double kMomentum = 0.9;
  Tensor x = RandomData(kRows, kCols, 1, /*mean=*/2.0, /*stddev=*/3.0);
  nn::Sequential model({nn::BatchNormalization({.momentum = kMomentum, .input_shape = Shape{kCols}})});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  EXPECT_EQ(model.layers()[0]->updates().size(), 2u);

  // Evaluate and Predict do not touch the moving statistics.
  ASSERT_TRUE(model.Evaluate(x, Tensor(DType::kF32, {kRows, kCols})).ok());
  EXPECT_EQ(Variable(model, "batch_normalization/moving_mean").ToVector<float>(),
            std::vector<float>(kCols, 0.0f));

  ASSERT_TRUE(model.Fit(x, Tensor(DType::kF32, {kRows, kCols}),
                        {.epochs = 1, .batch_size = kRows, .shuffle = false, .verbose = 0})
                  .ok());
  Tensor moving_mean = Variable(model, "batch_normalization/moving_mean");
  Tensor moving_variance = Variable(model, "batch_normalization/moving_variance");
  for (int64_t f = 0; f < kCols; ++f) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < kRows; ++i) mean += x.data<float>()[i * kCols + f];
    mean /= kRows;
    for (int64_t i = 0; i < kRows; ++i) {
      var += std::pow(x.data<float>()[i * kCols + f] - mean, 2);
    }
    var /= kRows;
    EXPECT_NEAR(moving_mean.data<float>()[f], (1 - kMomentum) * mean, kTolerance);
    EXPECT_NEAR(moving_variance.data<float>()[f], kMomentum * 1.0 + (1 - kMomentum) * var,
                kTolerance * var);
  }

  auto predicted = model.Predict(x);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  Tensor gamma = Variable(model, "batch_normalization/gamma");
  Tensor beta = Variable(model, "batch_normalization/beta");
  for (int64_t i = 0; i < kRows * kCols; ++i) {
    const int64_t f = i % kCols;
    const double want = gamma.data<float>()[f] * (x.data<float>()[i] - moving_mean.data<float>()[f]) /
                            std::sqrt(moving_variance.data<float>()[f] + kEpsilon) +
                        beta.data<float>()[f];
    EXPECT_NEAR(predicted->data<float>()[i], want, kTolerance * std::max(1.0, std::abs(want))) << i;
  }
}

// Keras: trainable = False freezes gamma and beta and makes the layer
// normalize with its moving statistics even in fit, without updating them.
TEST(BatchNormalizationTest, FrozenLayerUsesAndKeepsItsMovingStatistics) {
  constexpr int64_t kRows = 64, kCols = 4;
  Tensor x = RandomData(kRows, kCols, 2, 5.0, 2.0);
  Tensor y = RandomData(kRows, kCols, 3);
  auto bn = nn::BatchNormalization();
  nn::Sequential model({nn::Dense(kCols, {.input_shape = Shape{kCols}}), bn});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0}).ok());
  auto before = model.GetWeights();
  ASSERT_TRUE(before.ok());

  bn->trainable = false;
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());  // keeps the weights
  EXPECT_TRUE(bn->updates().empty());
  EXPECT_EQ(model.CountParams(false), 4 * kCols);  // gamma, beta and the statistics
  // The training loss equals the inference loss: both use the moving statistics.
  auto evaluated = model.Evaluate(x, y, kRows);
  ASSERT_TRUE(evaluated.ok());
  auto history = model.Fit(x, y, {.epochs = 1, .batch_size = kRows, .shuffle = false, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_NEAR(history->history["loss"][0], (*evaluated)["loss"], 1e-5);

  auto after = model.GetWeights();
  ASSERT_TRUE(after.ok());
  for (const char* name : {"batch_normalization/gamma", "batch_normalization/beta",
                           "batch_normalization/moving_mean", "batch_normalization/moving_variance"}) {
    EXPECT_EQ(after->at(name).ToVector<float>(), before->at(name).ToVector<float>()) << name;
  }
  // The Dense layer below still trains.
  EXPECT_NE(after->at("dense/kernel").ToVector<float>(), before->at("dense/kernel").ToVector<float>());
}

// Four features of very different scales: a small MLP learns the sign of
// their sum with BN before the activation (Dense without bias, BN,
// Activation) or after it. Momentum 0.9 lets the moving statistics, which
// Evaluate uses, converge within the run's 160 steps.
TEST(BatchNormalizationTest, TrainsBeforeOrAfterTheActivation) {
  constexpr int64_t kRows = 256;
  Tensor x = RandomData(kRows, 4, 4);
  const float scales[4] = {100.0f, 0.01f, 10.0f, 1.0f};
  Tensor y(DType::kI32, {kRows});
  for (int64_t i = 0; i < kRows; ++i) {
    float sum = 0;
    for (int f = 0; f < 4; ++f) {
      sum += x.data<float>()[i * 4 + f];
      x.data<float>()[i * 4 + f] *= scales[f];
    }
    y.data<int32_t>()[i] = sum > 0;
  }
  std::vector<std::vector<nn::LayerPtr>> variants = {
      {nn::BatchNormalization({.momentum = 0.9, .input_shape = Shape{4}}),
       nn::Dense(16, {.use_bias = false}), nn::BatchNormalization({.momentum = 0.9}),
       nn::Activation("relu"), nn::Dense(2, {.activation = "softmax"})},
      {nn::BatchNormalization({.momentum = 0.9, .input_shape = Shape{4}}),
       nn::Dense(16, {.activation = "relu"}), nn::BatchNormalization({.momentum = 0.9}),
       nn::Dense(2, {.activation = "softmax"})},
  };
  for (size_t v = 0; v < variants.size(); ++v) {
    SCOPED_TRACE(v == 0 ? "BN before the activation" : "BN after the activation");
    nn::Sequential model(variants[v]);
    ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.1},
                               .metrics = {"accuracy"}})
                    .ok());
    auto history = model.Fit(x, y, {.epochs = 40, .batch_size = 64, .verbose = 0});
    ASSERT_TRUE(history.ok()) << history.status();
    auto scores = model.Evaluate(x, y);
    ASSERT_TRUE(scores.ok());
    EXPECT_GT((*scores)["accuracy"], 0.95);
    EXPECT_LT(history->history["loss"].back(), history->history["loss"].front() / 2);
  }
}

TEST(BatchNormalizationTest, OptionsDropGammaAndBetaAndCheckMomentum) {
  nn::Sequential model({nn::Dense(3, {.input_shape = Shape{2}}),
                        nn::BatchNormalization({.center = false, .scale = false})});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  ASSERT_EQ(model.layers()[1]->variables().size(), 2u);
  EXPECT_EQ(model.layers()[1]->variables()[0].node->name, "batch_normalization/moving_mean");

  nn::Sequential bad({nn::BatchNormalization({.momentum = 1.5, .input_shape = Shape{3}})});
  absl::Status s = bad.Compile({.loss = "mse"});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("momentum must be in [0, 1], got 1.5"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("batch_normalization"));
}

}  // namespace
}  // namespace gradflow
