// Tests of nn/preprocessing.cc: Keras 3's Normalization layer. Expected values
// are Keras's docstring examples (keras/src/layers/preprocessing/normalization.py)
// and hand-computed NumPy expressions.

#include "nn/preprocessing.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/tensor_ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "nn/saving.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// f32 arithmetic against values computed in double or by hand.
constexpr float kTolerance = 1e-6f;

Tensor F32(Shape shape, const std::vector<float>& values) { return Tensor::FromVector(shape, values).value(); }

// Keras's docstring data: per-feature mean [1, 8, 5], variance [1, 1, 1].
Tensor KerasAdaptData() { return F32({4, 3}, {0, 7, 4, 2, 9, 6, 0, 7, 4, 2, 9, 6}); }

Tensor RandomData(int64_t rows, int64_t cols, uint64_t seed) {
  Tensor t(DType::kF32, {rows, cols});
  Rng rng(seed);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(3 * (i % cols) + 2 * rng.Normal());
  return t;
}

// The layer followed by an identity Dense: Predict returns the layer's output.
// (A model needs something to train for Compile.)
nn::Sequential WithIdentityHead(nn::LayerPtr layer, int64_t features) {
  nn::Sequential model({std::move(layer), nn::Dense(features, {.kernel_initializer = "identity", .use_bias = false})});
  EXPECT_TRUE(model.Compile({.loss = "mse"}).ok());
  return model;
}

void ExpectNear(const Tensor& got, const std::vector<float>& want) {
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data<float>()[i], want[i], kTolerance) << "element " << i;
}

TEST(NormalizationTest, AdaptComputesPerFeatureMeanAndVariance) {
  auto norm = nn::Normalization({.input_shape = Shape{3}});
  ASSERT_TRUE(norm->Adapt(KerasAdaptData()).ok());
  std::map<std::string, Tensor> w = norm->GetWeights();
  EXPECT_THAT(w.at("mean").ToVector<float>(), ElementsAre(1, 8, 5));     // x.mean(0)
  EXPECT_THAT(w.at("variance").ToVector<float>(), ElementsAre(1, 1, 1)); // x.var(0)
  EXPECT_EQ(w.at("count").dtype(), DType::kI64);
  EXPECT_EQ(*w.at("count").data<int64_t>(), 4);
  // Every axis but the last is pooled: x.reshape(2, 2, 3) gives the same statistics.
  auto pooled = nn::Normalization();
  ASSERT_TRUE(pooled->Adapt(KerasAdaptData().Reshaped({2, 2, 3}).value()).ok());
  EXPECT_THAT(pooled->GetWeights().at("mean").ToVector<float>(), ElementsAre(1, 8, 5));
  // np.var([1, 2, 4]) = 14/9: population variance, ddof 0.
  auto skewed = nn::Normalization();
  ASSERT_TRUE(skewed->Adapt(F32({3, 1}, {1, 2, 4})).ok());
  EXPECT_NEAR(skewed->GetWeights().at("variance").data<float>()[0], 14.0 / 9.0, kTolerance);
}

TEST(NormalizationTest, AdaptedModelPredictsKerasValues) {
  auto norm = nn::Normalization({.input_shape = Shape{3}});
  ASSERT_TRUE(norm->Adapt(KerasAdaptData()).ok());
  nn::Sequential model = WithIdentityHead(norm, 3);
  auto y = model.Predict(F32({1, 3}, {0, 7, 4}));  // Keras: array([-1., -1., -1.])
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectNear(*y, {-1, -1, -1});
  // Keras's parameter count: mean 3 + variance 3 + count 1, all non-trainable.
  EXPECT_THAT(model.Summary(), HasSubstr("Non-trainable params: 7"));
}

TEST(NormalizationTest, AdaptedModelMatchesStandardize) {
  const Tensor x = RandomData(50, 4, 7);
  auto norm = nn::Normalization();  // Adapt gives it x's input shape, so it can start a model
  ASSERT_TRUE(norm->Adapt(x).ok());
  EXPECT_EQ(norm->input_shape(), Shape{4});
  nn::Sequential model = WithIdentityHead(norm, 4);
  auto y = model.Predict(x);
  auto want = Standardize(x);  // (x - x.mean(0)) / np.maximum(x.std(0), 1e-7)
  ASSERT_TRUE(y.ok() && want.ok());
  ExpectNear(*y, want->ToVector<float>());
  // And the result is standardized: every column has mean 0 and std 1.
  for (float m : Mean(*y, 0)->ToVector<float>()) EXPECT_NEAR(m, 0, 1e-5);
  for (float s : Std(*y, 0)->ToVector<float>()) EXPECT_NEAR(s, 1, 1e-5);
}

TEST(NormalizationTest, AdaptAfterCompileUpdatesTheModel) {
  auto norm = nn::Normalization({.input_shape = Shape{3}});
  nn::Sequential model = WithIdentityHead(norm, 3);
  // Not adapted: Keras's build initializes mean 0 and variance 1, the identity.
  ExpectNear(*model.Predict(F32({1, 3}, {0, 7, 4})), {0, 7, 4});
  ASSERT_TRUE(norm->Adapt(KerasAdaptData()).ok());
  ExpectNear(*model.Predict(F32({1, 3}, {0, 7, 4})), {-1, -1, -1});
  // A constant feature: (x - 5) / max(sqrt(0), 1e-7) is 0, not NaN.
  ASSERT_TRUE(norm->Adapt(F32({2, 3}, {1, 5, 0, 3, 5, 0})).ok());
  ExpectNear(*model.Predict(F32({1, 3}, {2, 5, 0})), {0, 0, 0});
}

TEST(NormalizationTest, InvertUndoesTheAdaptedNormalization) {
  auto inverse = nn::Normalization({.invert = true, .input_shape = Shape{3}});
  ASSERT_TRUE(inverse->Adapt(KerasAdaptData()).ok());
  nn::Sequential model = WithIdentityHead(inverse, 3);
  ExpectNear(*model.Predict(F32({1, 3}, {1, 2, 3})), {2, 10, 8});  // Keras: array([2., 10., 8.])
  // mean + x * sqrt(variance) with variance 4: 1 + 2 * 2.
  auto given = nn::Normalization({.mean = {{1}}, .variance = {{4}}, .invert = true, .input_shape = Shape{1}});
  ExpectNear(*WithIdentityHead(given, 1).Predict(F32({1, 1}, {2})), {5});
}

TEST(NormalizationTest, GivenMeanAndVarianceAreConstantsWithoutWeights) {
  // Keras: Normalization(mean=3., variance=2.)([[1.], [2.], [3.]])
  auto norm = nn::Normalization({.mean = {{3}}, .variance = {{2}}, .input_shape = Shape{1}});
  nn::Sequential model = WithIdentityHead(norm, 1);
  ExpectNear(*model.Predict(F32({3, 1}, {1, 2, 3})), {-1.4142135f, -0.70710677f, 0});
  EXPECT_TRUE(norm->weights().empty()) << "Keras's layer has no weights when given mean and variance";
  // One value per feature.
  auto per_feature = nn::Normalization({.mean = {{1, 10}}, .variance = {{4, 100}}, .input_shape = Shape{2}});
  ExpectNear(*WithIdentityHead(per_feature, 2).Predict(F32({1, 2}, {3, 30})), {1, 2});
  absl::Status s = norm->Adapt(F32({1, 1}, {1}));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("was given its mean and variance; make it without them"));
}

TEST(NormalizationTest, ConfigRoundTripsAndReadsKeras3Configs) {
  for (const nn::LayerPtr& layer : {nn::LayerPtr(nn::Normalization()),
                                    nn::LayerPtr(nn::Normalization({.mean = {{1, 2}}, .variance = {{3, 4}},
                                                                    .invert = true}))}) {
    auto json = nn::LayerToJson(*layer);
    ASSERT_TRUE(json.ok()) << json.status();
    auto copy = nn::LayerFromJson(*json);
    ASSERT_TRUE(copy.ok()) << json->dump() << ": " << copy.status();
    EXPECT_EQ(nn::LayerToJson(**copy)->dump(), json->dump());
  }
  // What Keras 3's get_config() writes (axis as a tuple, mean null when adapted, scalars as numbers).
  auto keras = nn::LayerFromJson(Json::parse(R"({"class_name": "Normalization", "config": {
      "name": "normalization", "trainable": true, "dtype": "float32",
      "axis": [-1], "invert": false, "mean": 3.0, "variance": 2.0}})"));
  ASSERT_TRUE(keras.ok()) << keras.status();
  auto* norm = dynamic_cast<nn::NormalizationLayer*>(keras->get());
  ASSERT_NE(norm, nullptr);
  EXPECT_THAT(*norm->options().mean, ElementsAre(3));
  EXPECT_THAT(*norm->options().variance, ElementsAre(2));
  auto adapted = nn::LayerFromJson(Json::parse(R"({"class_name": "Normalization", "config": {
      "axis": [-1], "invert": true, "mean": null, "variance": null}})"));
  ASSERT_TRUE(adapted.ok()) << adapted.status();
  EXPECT_TRUE(dynamic_cast<nn::NormalizationLayer*>(adapted->get())->options().invert);
}

TEST(NormalizationTest, SaveAndLoadKeepTheAdaptedStatistics) {
  const std::string path = testing_util::TempDir("normalization") + "/model.safetensors";
  const Tensor x = RandomData(20, 3, 11);
  auto norm = nn::Normalization({.input_shape = Shape{3}});
  ASSERT_TRUE(norm->Adapt(x).ok());
  nn::Sequential model = WithIdentityHead(norm, 3);
  ASSERT_TRUE(model.Save(path).ok());
  auto loaded = nn::LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->layers()[0]->type(), "Normalization");
  std::map<std::string, Tensor> want = norm->GetWeights(), got = loaded->layers()[0]->GetWeights();
  EXPECT_EQ(got.at("mean").ToVector<float>(), want.at("mean").ToVector<float>());
  EXPECT_EQ(got.at("variance").ToVector<float>(), want.at("variance").ToVector<float>());
  EXPECT_EQ(*got.at("count").data<int64_t>(), 20);
  EXPECT_EQ(loaded->Predict(x)->ToVector<float>(), model.Predict(x)->ToVector<float>());
}

TEST(NormalizationTest, AdaptRefusesBadData) {
  auto norm = nn::Normalization({.name = "norm", .input_shape = Shape{3}});
  absl::Status s = norm->Adapt(F32({2, 2}, {1, 2, 3, 4}));
  EXPECT_THAT(s.message(), HasSubstr("Adapt: Normalization layer 'norm' normalizes 3 features but x [2, 2] has 2"));
  s = norm->Adapt(Tensor(DType::kF32, {0, 3}));
  EXPECT_THAT(s.message(), HasSubstr("x [0, 3] holds no values to adapt to"));
  s = norm->Adapt(F32({2, 3}, {1, 2, std::numeric_limits<float>::quiet_NaN(), 4, 5, 6}));
  EXPECT_THAT(s.message(), HasSubstr("holds nan at element 2; remove or impute non-finite values"));
  s = norm->Adapt(F32({3}, {1, 2, 3}));
  EXPECT_THAT(s.message(), HasSubstr("x must be a tensor [samples, ..., features], got f32[3]"));
  s = norm->Adapt(Tensor());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(norm->GetWeights().empty()) << "a refused Adapt changes nothing";
  // After Compile the built feature count is the one that counts.
  auto built = nn::Normalization();
  nn::Sequential model({nn::Dense(4, {.input_shape = Shape{2}}), built, nn::Dense(1)});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  EXPECT_THAT(built->Adapt(F32({1, 3}, {1, 2, 3})).message(), HasSubstr("normalizes 4 features but x [1, 3] has 3"));
}

TEST(NormalizationTest, BadSettingsAreErrors) {
  auto compile_error = [](nn::NormalizationOptions options) {
    options.input_shape = Shape{3};
    nn::Sequential model({nn::Normalization(std::move(options)), nn::Dense(1)});
    absl::Status s = model.Compile({.loss = "mse"});
    EXPECT_FALSE(s.ok());
    return std::string(s.message());
  };
  EXPECT_THAT(compile_error({.axis = 0}), HasSubstr("axis 0 is not the last axis (1)"));
  EXPECT_THAT(compile_error({.mean = {{1, 2}}, .variance = {{1, 2}}}),
              HasSubstr("mean and variance have 2 values but the input f32[-1, 3] has 3 features"));
  EXPECT_THAT(compile_error({.mean = {{1}}}), HasSubstr("give both mean and variance, or neither"));
  EXPECT_THAT(compile_error({.mean = {{1}}, .variance = {{-1}}}), HasSubstr("variance -1 is not a finite value >= 0"));
  auto config_error = [](const char* config) {
    auto layer = nn::LayerFromJson({{"class_name", "Normalization"}, {"config", Json::parse(config)}});
    EXPECT_FALSE(layer.ok()) << config;
    return std::string(layer.status().message());
  };
  EXPECT_THAT(config_error(R"({"axis": null})"), HasSubstr("last axis only"));
  EXPECT_THAT(config_error(R"({"axis": [1, 2]})"), HasSubstr("last axis only"));
  EXPECT_THAT(config_error(R"({"axis": "x"})"), HasSubstr("must be -1 or the index of the last axis"));
  EXPECT_THAT(config_error(R"({"mean": 1.0})"), HasSubstr("give both mean and variance"));
  EXPECT_THAT(config_error(R"({"mean": [1, 2], "variance": [1]})"), HasSubstr("mean has 2 values but variance 1"));
  EXPECT_THAT(config_error(R"({"mean": [], "variance": []})"), HasSubstr("empty list"));
  EXPECT_THAT(config_error(R"({"mean": [[1]], "variance": [[1]]})"), HasSubstr("wrong type"));
  EXPECT_THAT(config_error(R"({"invert": false, "typo": 1})"), HasSubstr("typo"));
}

}  // namespace
}  // namespace gradflow
