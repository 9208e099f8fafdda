// Tests of nn/activation_layers.cc: Keras defaults and names, PReLU's slope
// variable (shape, shared axes, training), RReLU in fit vs predict, errors;
// activation layer objects as DenseOptions::activation / nn::Activation
// (ActivationOption): values, configs, errors.

#include "nn/activation_layers.h"

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/model_config.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

Tensor Column(const std::vector<float>& v) { return Tensor::FromVector<float>({int64_t(v.size()), 1}, v).value(); }

// Predicts a one-layer model on `x` (rank 2, one feature).
std::vector<float> PredictWith(nn::LayerPtr layer, const std::vector<float>& x) {
  nn::Sequential model({nn::Dense(1, {.kernel_initializer = "ones", .input_shape = Shape{1}}), layer});
  EXPECT_TRUE(model.Compile({.loss = "mse"}).ok());
  auto out = model.Predict(Column(x));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->ToVector<float>() : std::vector<float>{};
}

TEST(ActivationLayersTest, LeakyReLUAndELUUseKerasLayerDefaults) {
  const std::vector<float> x = {-2.0f, 0.0f, 3.0f};
  EXPECT_EQ(PredictWith(nn::LeakyReLU(), x), std::vector<float>({-0.6f, 0.0f, 3.0f}));  // alpha 0.3
  EXPECT_EQ(PredictWith(nn::LeakyReLU(0.2), x), std::vector<float>({-0.4f, 0.0f, 3.0f}));
  std::vector<float> elu = PredictWith(nn::ELU(), x);
  EXPECT_NEAR(elu[0], std::expm1(-2.0), 1e-6);
  EXPECT_EQ(elu[2], 3.0f);
}

TEST(ActivationLayersTest, KerasLayerNames) {
  nn::Sequential model({nn::Dense(4, {.input_shape = Shape{2}}), nn::LeakyReLU(), nn::PReLU(),
                        nn::ELU(), nn::RReLU(), nn::LeakyReLU()});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  std::vector<std::string> names;
  for (const auto& layer : model.layers()) names.push_back(layer->name());
  EXPECT_EQ(names, (std::vector<std::string>{"dense", "leaky_re_lu", "p_re_lu", "elu", "r_re_lu",
                                             "leaky_re_lu_1"}));
}

TEST(ActivationLayersTest, PReLUHasOneSlopePerFeatureAndLearnsIt) {
  // Targets y = x for x > 0 and 0.5 x otherwise: the slope goes from 0
  // (Keras's zeros initializer) to 0.5. dL/dalpha = 2/3 (alpha - 0.5)
  // E[x^2; x < 0] ~ 0.44 (alpha - 0.5), so 80 steps at lr 0.3 leave ~1e-5.
  constexpr int64_t kRows = 128;
  Tensor x(DType::kF32, {kRows, 3}), y(DType::kF32, {kRows, 3});
  Rng rng(5);
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const float v = static_cast<float>(rng.Uniform(-2, 2));
    x.data<float>()[i] = v;
    y.data<float>()[i] = v > 0 ? v : 0.5f * v;
  }
  auto prelu = nn::PReLU({.input_shape = Shape{3}});
  nn::Sequential model({prelu});
  ASSERT_TRUE(model.Compile({.loss = "mse", .optimizer = optimizers::SGD{.learning_rate = 0.3}}).ok());
  ASSERT_EQ(prelu->variables().size(), 1u);
  EXPECT_EQ(prelu->variables()[0].node->name, "p_re_lu/alpha");
  EXPECT_EQ(prelu->variables()[0].shape(), Shape({3}));
  EXPECT_EQ(model.CountParams(true), 3);
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 20, .verbose = 0}).ok());
  auto alpha = model.session()->variables().Get("p_re_lu/alpha");
  ASSERT_TRUE(alpha.ok());
  for (float a : alpha->flat<float>()) EXPECT_NEAR(a, 0.5, 0.01);
}

TEST(ActivationLayersTest, PReLUSharedAxes) {
  auto prelu = nn::PReLU({.shared_axes = {1}, .input_shape = Shape{5, 3}});
  nn::Sequential model({prelu});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  EXPECT_EQ(prelu->variables()[0].shape(), Shape({1, 3}));

  nn::Sequential bad({nn::PReLU({.shared_axes = {2}, .input_shape = Shape{3}})});
  absl::Status s = bad.Compile({.loss = "mse"});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("PReLU layer 'p_re_lu': shared axis 2"));
}

// Predict runs an inference plan: the mean slope; Fit's steps draw slopes
// from [lower, upper], so a training loss lies between the two extremes.
TEST(ActivationLayersTest, RReLUUsesTheMeanSlopeInPredict) {
  const std::vector<float> x = {-4.0f, -1.0f, 0.0f, 2.0f};
  std::vector<float> y = PredictWith(nn::RReLU(0.1, 0.3), x);
  EXPECT_NEAR(y[0], -0.8, 1e-6);
  EXPECT_NEAR(y[1], -0.2, 1e-6);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 2.0f);
  // The default bounds of the paper: mean slope (1/8 + 1/3) / 2.
  EXPECT_NEAR(PredictWith(nn::RReLU(), {-1.0f})[0], -(1.0 / 8 + 1.0 / 3) / 2, 1e-6);
}

TEST(ActivationLayersTest, RReLUDrawsSlopesInFit) {
  // A frozen identity Dense then RReLU with slopes in [0, 1] on x = -1:
  // the MSE to 0 over one full batch is the mean squared slope, E[s^2] = 1/3
  // for s ~ U[0, 1] (it would be 0.25 with the mean slope); 4096 samples
  // give a standard error of 0.0047.
  constexpr int64_t kRows = 4096;
  auto dense = nn::Dense(1, {.kernel_initializer = "ones", .use_bias = false, .input_shape = Shape{1}});
  nn::Sequential model({dense, nn::RReLU(0.0, 1.0)});
  ASSERT_TRUE(model.Compile({.loss = "mse", .optimizer = optimizers::SGD{.learning_rate = 1e-9}}).ok());
  Tensor x(DType::kF32, {kRows, 1}), y(DType::kF32, {kRows, 1});
  for (float& v : x.flat<float>()) v = -1.0f;
  auto history = model.Fit(x, y, {.epochs = 1, .batch_size = kRows, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_NEAR(history->history["loss"][0], 1.0 / 3, 0.02);
  auto evaluated = model.Evaluate(x, y, kRows);
  ASSERT_TRUE(evaluated.ok());
  EXPECT_NEAR((*evaluated)["loss"], 0.25, 1e-4);
}


// ------------------------------------------------------------ activation objects

// 16 samples of 3 features in [-2, 2] (a fixed seed).
Tensor Inputs() {
  Tensor x(DType::kF32, {16, 3});
  Rng rng(11);
  for (float& v : x.flat<float>()) v = static_cast<float>(rng.Uniform(-2, 2));
  return x;
}

// The predictions of `layers` after copying the weights of `source`'s first
// layer into their first layer (a Dense of 4 units on 3 inputs).
std::vector<float> PredictWithWeightsOf(const nn::Model& source, std::vector<nn::LayerPtr> layers) {
  nn::Sequential model(std::move(layers));
  EXPECT_TRUE(model.Compile({.loss = "mse"}).ok());
  EXPECT_TRUE(model.layers()[0]->SetWeights(source.layers()[0]->GetWeights()).ok());
  auto out = model.Predict(Inputs());
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->ToVector<float>() : std::vector<float>{};
}

// Keras: Dense(4, activation=LeakyReLU(negative_slope=0.2)) is Dense(4)
// followed by that LeakyReLU layer.
TEST(ActivationObjectTest, DenseWithLeakyReLUObjectEqualsDenseThenLeakyReLULayer) {
  nn::Sequential fused({nn::Dense(4, {.activation = nn::LeakyReLU(0.2), .input_shape = Shape{3}})});
  ASSERT_TRUE(fused.Compile({.loss = "mse"}).ok());
  auto got = fused.Predict(Inputs());
  ASSERT_TRUE(got.ok()) << got.status();
  const std::vector<float> separate =
      PredictWithWeightsOf(fused, {nn::Dense(4, {.input_shape = Shape{3}}), nn::LeakyReLU(0.2)});
  const std::vector<float> linear = PredictWithWeightsOf(fused, {nn::Dense(4, {.input_shape = Shape{3}})});
  ASSERT_EQ(separate.size(), 64u);
  EXPECT_EQ(got->ToVector<float>(), separate);
  int negatives = 0;
  for (size_t i = 0; i < linear.size(); ++i) {
    negatives += linear[i] < 0;
    EXPECT_FLOAT_EQ(got->ToVector<float>()[i], linear[i] > 0 ? linear[i] : 0.2f * linear[i]);
  }
  EXPECT_GT(negatives, 8);  // the slope is really exercised
}

TEST(ActivationObjectTest, OtherWeightlessObjectsAndTheActivationLayer) {
  nn::Sequential elu({nn::Dense(4, {.activation = nn::ELU(0.5), .input_shape = Shape{3}})});
  ASSERT_TRUE(elu.Compile({.loss = "mse"}).ok());
  const std::vector<float> linear = PredictWithWeightsOf(elu, {nn::Dense(4, {.input_shape = Shape{3}})});
  const std::vector<float> got = elu.Predict(Inputs())->ToVector<float>();
  for (size_t i = 0; i < linear.size(); ++i) {
    EXPECT_NEAR(got[i], linear[i] > 0 ? linear[i] : 0.5 * std::expm1(linear[i]), 1e-6);
  }
  // nn::Activation takes the same objects.
  EXPECT_EQ(PredictWithWeightsOf(elu, {nn::Dense(4, {.input_shape = Shape{3}}), nn::Activation(nn::ELU(0.5))}), got);
  // A Softmax object leaves its logits for the cross-entropy, as "softmax" does.
  nn::Sequential softmax({nn::Dense(4, {.activation = nn::Softmax(), .input_shape = Shape{3}})});
  ASSERT_TRUE(softmax.Compile({}).ok());
  EXPECT_TRUE(softmax.layers()[0]->softmax_logits().valid());
}

TEST(ActivationObjectTest, NamesStillWorkAsBefore) {
  nn::DenseOptions hidden{.activation = "relu"};
  auto out = hidden;
  out.activation = "softmax";
  const std::string name = "elu";
  out.activation = name;
  EXPECT_EQ(out.activation.name(), "elu");
  EXPECT_EQ(hidden.activation.name(), "relu");
  EXPECT_TRUE(nn::DenseOptions{}.activation.is_linear());
  EXPECT_EQ(*nn::ActivationOption("swish").ToJson(), "silu");  // Keras 3's spelling
  EXPECT_EQ(*nn::ActivationOption().ToJson(), "linear");
}

TEST(ActivationObjectTest, ConfigIsKerasSerializedObjectAndRoundTrips) {
  auto dense = nn::Dense(4, {.activation = nn::LeakyReLU(0.2), .input_shape = Shape{3}});
  auto json = nn::LayerToJson(*dense);
  ASSERT_TRUE(json.ok()) << json.status();
  // keras.activations.serialize of a layer: serialize_keras_object.
  EXPECT_EQ((*json)["config"]["activation"], nlohmann::json::parse(R"({"module": "keras.layers",
      "class_name": "LeakyReLU", "registered_name": null,
      "config": {"name": "leaky_re_lu", "trainable": true, "negative_slope": 0.2}})"));
  auto back = nn::LayerFromJson(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*nn::LayerToJson(**back), *json);
  // The reloaded layer computes the same function.
  nn::Sequential original({dense});
  ASSERT_TRUE(original.Compile({.loss = "mse"}).ok());
  EXPECT_EQ(PredictWithWeightsOf(original, {*back}), original.Predict(Inputs())->ToVector<float>());
  // The whole model file's config too.
  auto text = nn::ModelConfigToJson({.layers = {dense}});
  ASSERT_TRUE(text.ok()) << text.status();
  auto parsed = nn::ParseModelConfig(*text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*nn::LayerToJson(*parsed->layers[0]), *nn::LayerToJson(*dense));  // named "dense" by Compile now
}

TEST(ActivationObjectTest, BadActivationsAreErrorsNamingTheLayer) {
  nn::Sequential prelu({nn::Dense(4, {.activation = nn::PReLU(), .name = "hidden", .input_shape = Shape{3}})});
  absl::Status s = prelu.Compile({.loss = "mse"});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("Dense layer 'hidden': its activation, a PReLU layer, has weights (hidden/alpha)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("add the PReLU as a layer of its own after this one"));

  nn::Sequential null({nn::Dense(4, {.activation = nn::LayerPtr(), .input_shape = Shape{3}})});
  EXPECT_THAT(std::string(null.Compile({.loss = "mse"}).message()),
              HasSubstr("Dense layer 'dense': the activation is a null layer pointer"));
  EXPECT_FALSE(nn::LayerToJson(*nn::Dense(4, {.activation = nn::LayerPtr()})).ok());

  nn::Sequential nan_slope({nn::Dense(3, {.input_shape = Shape{3}}), nn::Activation(nn::LeakyReLU(std::nan("")))});
  EXPECT_THAT(std::string(nan_slope.Compile({.loss = "mse"}).message()),
              HasSubstr("LeakyReLU layer 'activation': 'negative_slope' must be a finite number, got nan"));

  nn::Sequential unknown({nn::Dense(4, {.activation = "relux", .input_shape = Shape{3}})});
  EXPECT_THAT(std::string(unknown.Compile({.loss = "mse"}).message()), HasSubstr("relux"));

  auto bad_config = nn::LayerFromJson(nlohmann::json::parse(
      R"({"class_name": "Dense", "config": {"units": 2, "activation": {"class_name": "LeakyReLU",
          "config": {"negative_slope": "steep"}}}})"));
  ASSERT_FALSE(bad_config.ok());
  EXPECT_THAT(std::string(bad_config.status().message()),
              HasSubstr("layer (Dense).config.activation (LeakyReLU).config: 'negative_slope' must be"));
  auto unknown_type = nn::LayerFromJson(nlohmann::json::parse(
      R"({"class_name": "Dense", "config": {"units": 2, "activation": {"class_name": "Swoosh", "config": {}}}})"));
  ASSERT_FALSE(unknown_type.ok());
  // What is accepted instead: the activation names and the layer classes.
  for (const char* part : {"'activation' is a 'Swoosh' object", "an activation name (", "relu", "LeakyReLU, PReLU"}) {
    EXPECT_THAT(std::string(unknown_type.status().message()), HasSubstr(part));
  }
}

}  // namespace
}  // namespace gradflow
