// Tests of nn/dropout_layers.cc: dropout layers drop only in the training
// plan (Predict and Evaluate are deterministic and equal to the same model
// without them), the MC variants also drop in Predict, names and errors.

#include "nn/dropout_layers.h"

#include <string>
#include <vector>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

Tensor Inputs(int64_t n = 50) {
  Tensor x(DType::kF32, {n, 6});
  Rng rng(5);
  for (float& v : x.flat<float>()) v = static_cast<float>(rng.Normal());
  return x;
}

std::vector<LayerPtr> Layers(LayerPtr first_dropout, LayerPtr second_dropout) {
  std::vector<LayerPtr> layers = {Flatten(Shape{6})};
  if (first_dropout) layers.push_back(first_dropout);
  layers.push_back(Dense(20, {.activation = "selu", .kernel_initializer = "lecun_normal"}));
  if (second_dropout) layers.push_back(second_dropout);
  layers.push_back(Dense(3, {.activation = "softmax"}));
  return layers;
}

TEST(DropoutLayersTest, PredictIsDeterministicAndEqualsTheModelWithoutDropout) {
  Sequential with(Layers(Dropout(0.5), AlphaDropout(0.2)));
  Sequential without(Layers(nullptr, nullptr));
  ASSERT_TRUE(with.Compile({}).ok());
  ASSERT_TRUE(without.Compile({}).ok());
  ASSERT_TRUE(without.SetWeights(*with.GetWeights()).ok());  // same names: dense, dense_1
  const Tensor x = Inputs();
  auto a = with.Predict(x), b = with.Predict(x), c = without.Predict(x);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->ToVector<float>(), b->ToVector<float>());
  EXPECT_EQ(a->ToVector<float>(), c->ToVector<float>());
}

TEST(DropoutLayersTest, TrainingPlanDrops) {
  // With rate 0.9 nearly every hidden unit is dropped in training: the loss
  // the train step reports differs from the evaluation loss on the same batch.
  Sequential model({Flatten(Shape{6}), Dropout(0.9), Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 1e-6}}).ok());
  const Tensor x = Inputs(64);
  Tensor y(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) y.data<int32_t>()[i] = i % 3;
  auto eval = model.Evaluate(x, y, 64);
  auto history = model.Fit(x, y, {.epochs = 1, .batch_size = 64, .shuffle = false, .verbose = 0});
  ASSERT_TRUE(eval.ok() && history.ok());
  EXPECT_GT(std::abs(history->history.at("loss")[0] - (*eval)["loss"]), 1e-3);
}

TEST(DropoutLayersTest, McLayersDropInPredict) {
  Sequential model(Layers(MCDropout(0.5), MCAlphaDropout(0.3)));
  ASSERT_TRUE(model.Compile({}).ok());
  const Tensor x = Inputs();
  auto a = model.Predict(x), b = model.Predict(x);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->ToVector<float>(), b->ToVector<float>());
}

TEST(DropoutLayersTest, KerasNamesInTheSummary) {
  Sequential model(Layers(Dropout(0.5), AlphaDropout(0.2)));
  model.Add(MCDropout(0.1));
  ASSERT_TRUE(model.Compile({}).ok());
  const std::string summary = model.Summary();
  EXPECT_THAT(summary, HasSubstr("dropout (Dropout)"));
  EXPECT_THAT(summary, HasSubstr("alpha_dropout (AlphaDropout)"));
  EXPECT_THAT(summary, HasSubstr("mc_dropout (MCDropout)"));
}

TEST(DropoutLayersTest, RateOutOfRangeFailsCompileNamingTheNode) {
  Sequential model(Layers(Dropout(1.0), nullptr));
  absl::Status s = model.Compile({});
  EXPECT_THAT(std::string(s.message()), HasSubstr("dropout/Dropout"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("rate must be in [0, 1) (the fraction of units dropped), got 1"));
}

}  // namespace
}  // namespace gradflow::nn
