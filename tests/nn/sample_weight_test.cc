// Fit's and Evaluate's sample_weight and class_weight (Keras's), on a model
// compiled with CompileOptions::sample_weights.

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "tests/nn/callback_test_model.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

Sequential WeightedModel(double lr = 0.1, bool sample_weights = true) {
  return CompiledModel(lr, std::nullopt, sample_weights);
}

Tensor Weights(const std::vector<float>& values) {
  return *Tensor::FromVector<float>(Shape{static_cast<int64_t>(values.size())}, values);
}

std::vector<float> RampWeights(int64_t n) {
  std::vector<float> w(n);
  for (int64_t i = 0; i < n; ++i) w[i] = 0.25f * (i % 5);
  return w;
}

void ExpectSameWeights(const Model& a, const Model& b, double tolerance) {
  auto wa = a.GetWeights(), wb = b.GetWeights();
  ASSERT_TRUE(wa.ok() && wb.ok());
  for (const auto& [name, value] : *wa) {
    const std::vector<float> u = value.ToVector<float>(), v = wb->at(name).ToVector<float>();
    for (size_t i = 0; i < u.size(); ++i) EXPECT_NEAR(u[i], v[i], tolerance) << name;
  }
}

TEST(SampleWeightTest, TheLossIsTheWeightedSumOverTheBatchSizeAndMetricsStayUnweighted) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = WeightedModel();
  const std::vector<float> w = RampWeights(64);
  auto weighted = model.Evaluate(x, y, {.batch_size = 64, .sample_weight = Weights(w)});
  auto plain = model.Evaluate(x, y, 64);
  auto probabilities = model.Predict(x);
  ASSERT_TRUE(weighted.ok() && plain.ok() && probabilities.ok()) << weighted.status();
  double sum = 0;  // Keras: sum_i w_i * -log p_i[y_i] / batch
  for (int i = 0; i < 64; ++i) {
    sum += w[i] * -std::log(probabilities->data<float>()[2 * i + y.data<int32_t>()[i]]);
  }
  EXPECT_NEAR(weighted->at("loss"), sum / 64, 1e-5);
  EXPECT_NE(weighted->at("loss"), plain->at("loss"));
  EXPECT_EQ(weighted->at("accuracy"), plain->at("accuracy"));
}

TEST(SampleWeightTest, WithoutWeightsEachSampleWeighsOne) {
  Tensor x, y;
  MakeData(x, y);
  Sequential weighted = WeightedModel(), plain = WeightedModel(0.1, false);
  ASSERT_TRUE(weighted.Fit(x, y, {.epochs = 2, .verbose = 0}).ok());
  ASSERT_TRUE(plain.Fit(x, y, {.epochs = 2, .verbose = 0}).ok());
  ExpectSameWeights(weighted, plain, 1e-6);
}

TEST(SampleWeightTest, WeightingEverySampleByTwoIsSgdAtTwiceTheRate) {
  Tensor x, y;
  MakeData(x, y);
  Sequential twice = WeightedModel(0.05), faster = WeightedModel(0.1);
  ASSERT_TRUE(twice.Fit(x, y, {.epochs = 2, .verbose = 0, .sample_weight = Weights(std::vector<float>(64, 2))}).ok());
  ASSERT_TRUE(faster.Fit(x, y, {.epochs = 2, .verbose = 0}).ok());
  ExpectSameWeights(twice, faster, 1e-5);
}

TEST(SampleWeightTest, ClassWeightIsTheWeightOfEachSamplesClass) {
  Tensor x, y;
  MakeData(x, y);
  std::vector<float> w(64);
  for (int i = 0; i < 64; ++i) w[i] = y.data<int32_t>()[i] == 1 ? 3.0f : 1.0f;  // class 0 not listed: 1
  Sequential by_class = WeightedModel(), by_sample = WeightedModel();
  auto a = by_class.Fit(x, y, {.epochs = 2, .verbose = 0, .class_weight = {{1, 3.0}}});
  auto b = by_sample.Fit(x, y, {.epochs = 2, .verbose = 0, .sample_weight = Weights(w)});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  EXPECT_EQ(a->history.at("loss"), b->history.at("loss"));
  EXPECT_EQ(by_class.GetWeights()->at("dense/kernel").ToVector<float>(),
            by_sample.GetWeights()->at("dense/kernel").ToVector<float>());
}

TEST(SampleWeightTest, ClassWeightOfOneHotTargetsUsesTheArgmax) {
  Tensor x, labels;
  MakeData(x, labels);
  Tensor one_hot(DType::kF32, {64, 2});
  for (int i = 0; i < 64; ++i) {
    one_hot.data<float>()[2 * i] = labels.data<int32_t>()[i] == 0;
    one_hot.data<float>()[2 * i + 1] = labels.data<int32_t>()[i] == 1;
  }
  auto compiled = [](Sequential& m) {
    return m.Compile({.loss = "categorical_crossentropy", .optimizer = optimizers::SGD{.learning_rate = 0.1},
                      .sample_weights = true});
  };
  Sequential by_class({Dense(2, {.activation = "softmax", .input_shape = Shape{2}})});
  Sequential by_sample({Dense(2, {.activation = "softmax", .input_shape = Shape{2}})});
  ASSERT_TRUE(compiled(by_class).ok() && compiled(by_sample).ok());
  std::vector<float> w(64);
  for (int i = 0; i < 64; ++i) w[i] = labels.data<int32_t>()[i] == 0 ? 0.5f : 2.0f;
  auto a = by_class.Fit(x, one_hot, {.verbose = 0, .class_weight = {{0, 0.5}, {1, 2.0}}});
  auto b = by_sample.Fit(x, one_hot, {.verbose = 0, .sample_weight = Weights(w)});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  EXPECT_EQ(a->history.at("loss"), b->history.at("loss"));
}

TEST(SampleWeightTest, ValidationSplitSplitsTheWeightsWithTheSamples) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = WeightedModel();
  const std::vector<float> w = RampWeights(64);
  auto history = model.Fit(x, y, {.epochs = 1, .validation_split = 0.25, .shuffle = false, .verbose = 0,
                                  .sample_weight = Weights(w)});
  ASSERT_TRUE(history.ok()) << history.status();
  auto x_valid = x.Slice(48, 64), y_valid = y.Slice(48, 64);
  auto evaluated = model.Evaluate(*x_valid, *y_valid,
                                  {.sample_weight = Weights(std::vector<float>(w.begin() + 48, w.end()))});
  ASSERT_TRUE(evaluated.ok());
  EXPECT_NEAR(history->history.at("val_loss")[0], evaluated->at("loss"), 1e-6);
}

TEST(SampleWeightTest, BadWeightsAreErrorsThatSayWhatToDo) {
  Tensor x, y;
  MakeData(x, y);
  Sequential unweighted = WeightedModel(0.1, false);
  auto refused = unweighted.Fit(x, y, {.verbose = 0, .sample_weight = Weights(std::vector<float>(64, 1))});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("CompileOptions::sample_weights = true"));
  EXPECT_THAT(unweighted.Fit(x, y, {.verbose = 0, .class_weight = {{0, 2.0}}}).status().message(),
              HasSubstr("Fit: class_weight"));

  Sequential model = WeightedModel();
  EXPECT_THAT(model.Fit(x, y, {.verbose = 0, .sample_weight = Weights({1, 2})}).status().message(),
              HasSubstr("sample_weight is f32[2] but the data has 64 samples"));
  std::vector<float> nan(64, 1);
  nan[7] = NAN;
  EXPECT_THAT(model.Evaluate(x, y, {.sample_weight = Weights(nan)}).status().message(),
              HasSubstr("sample_weight[7] is nan"));
  EXPECT_THAT(model.Fit(x, y, {.verbose = 0, .sample_weight = Weights(std::vector<float>(64, 1)),
                               .class_weight = {{0, 2.0}}})
                  .status()
                  .message(),
              HasSubstr("not both"));
  EXPECT_THAT(model.Fit(x, y, {.verbose = 0, .class_weight = {{0, INFINITY}}}).status().message(),
              HasSubstr("class_weight of class 0 is inf"));
  ValidationData validation{x, y, Weights({1})};
  EXPECT_THAT(model.Fit(x, y, {.validation_data = validation, .verbose = 0}).status().message(),
              HasSubstr("validation sample_weight is f32[1]"));
}

TEST(SampleWeightTest, TheOptionIsSavedWithTheModel) {
  Sequential model = WeightedModel();
  auto json = ModelConfigToJson(ConfigOf(model));
  ASSERT_TRUE(json.ok()) << json.status();
  auto parsed = ParseModelConfig(*json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->compile.has_value());
  EXPECT_TRUE(parsed->compile->sample_weights);
}

}  // namespace
}  // namespace gradflow::nn
