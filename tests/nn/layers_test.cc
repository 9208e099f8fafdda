// Tests of nn/layers.cc: Dense's kernel/bias regularizers (the loss that fit
// and evaluate report includes the penalties, as in Keras), max-norm
// constraints after fitting, and one DenseOptions value shared by many layers
// (the chapter's functools.partial); initializer objects in DenseOptions
// (Keras's VarianceScaling(scale=2, mode="fan_avg", distribution="uniform"))
// and their Keras 3 configs.

#include "nn/layers.h"

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/model_config.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

// 64 samples, 4 features, 2 classes (the sign of x0 + x1).
void MakeData(Tensor& x, Tensor& y) {
  x = Tensor(DType::kF32, {64, 4});
  y = Tensor(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) {
    for (int d = 0; d < 4; ++d) x.data<float>()[4 * i + d] = float(((i + 3) * (d + 5) * 37) % 19 - 9) / 9.0f;
    y.data<int32_t>()[i] = x.data<float>()[4 * i] + x.data<float>()[4 * i + 1] > 0;
  }
}

double SumSquares(const Tensor& t) {
  double s = 0;
  for (float v : t.flat<float>()) s += double(v) * v;
  return s;
}

double SumAbs(const Tensor& t) {
  double s = 0;
  for (float v : t.flat<float>()) s += std::abs(double(v));
  return s;
}

TEST(DenseRegularizerTest, ReportedLossIncludesThePenaltiesLikeKeras) {
  Tensor x, y;
  MakeData(x, y);
  Sequential plain({Dense(8, {.activation = "elu", .input_shape = Shape{4}}), Dense(2, {.activation = "softmax"})});
  Sequential regularized({Dense(8, {.activation = "elu",
                                    .kernel_regularizer = L2(0.01),
                                    .bias_regularizer = L1(0.5),
                                    .input_shape = Shape{4}}),
                          Dense(2, {.activation = "softmax", .kernel_regularizer = L1L2(0.02, 0.03)})});
  CompileOptions options{.optimizer = optimizers::SGD{.learning_rate = 0.05}};
  ASSERT_TRUE(plain.Compile(options).ok());
  ASSERT_TRUE(regularized.Compile(options).ok());
  // Same seed and names: the same initial weights. Non-zero biases make the
  // bias penalty visible.
  auto weights = *regularized.GetWeights();
  for (float& v : weights["dense/bias"].flat<float>()) v = 0.25f;
  ASSERT_TRUE(regularized.SetWeights(weights).ok());
  ASSERT_TRUE(plain.SetWeights(weights).ok());
  const double penalty = 0.01 * SumSquares(weights["dense/kernel"]) + 0.5 * SumAbs(weights["dense/bias"]) +
                         0.02 * SumAbs(weights["dense_1/kernel"]) + 0.03 * SumSquares(weights["dense_1/kernel"]);
  auto plain_loss = plain.Evaluate(x, y);
  auto total_loss = regularized.Evaluate(x, y);
  ASSERT_TRUE(plain_loss.ok() && total_loss.ok());
  EXPECT_NEAR((*total_loss)["loss"] - (*plain_loss)["loss"], penalty, 1e-5);

  // One full-batch step reports the loss at the pre-update weights: the same total.
  auto history = regularized.Fit(x, y, {.epochs = 1, .batch_size = 64, .shuffle = false, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_NEAR(history->history.at("loss")[0], (*total_loss)["loss"], 1e-5);
}

TEST(DenseRegularizerTest, OneOptionsValueConfiguresManyLayers) {
  // The chapter's RegularizedDense = partial(Dense, activation="elu",
  // kernel_initializer="he_normal", kernel_regularizer=l2(0.01)).
  const DenseOptions regularized{.activation = "elu",
                                 .kernel_initializer = "he_normal",
                                 .kernel_regularizer = L2(0.01)};
  DenseOptions first = regularized;
  first.input_shape = Shape{4};
  DenseOptions output = regularized;
  output.activation = "softmax";
  output.kernel_initializer = "glorot_uniform";
  Sequential model({Dense(16, first), Dense(8, regularized), Dense(2, output)});
  ASSERT_TRUE(model.Compile({}).ok());
  const Graph& g = *model.graph();
  for (const char* name : {"dense/kernel", "dense_1/kernel", "dense_2/kernel"}) {
    const Node* kernel = g.FindNode(name);
    ASSERT_NE(kernel, nullptr) << name;
    EXPECT_EQ(kernel->attr_or<double>("l2", -1), 0.01) << name;
    EXPECT_EQ(g.FindNode(std::string(name) + "/L1L2Penalty") != nullptr, true) << name;
  }
  EXPECT_EQ(g.FindNode("dense/bias")->has_attr("l2"), false);  // no bias_regularizer
  EXPECT_EQ(g.FindNode("dense_2/Softmax") != nullptr, true);
  EXPECT_EQ(g.FindNode("dense/kernel")->attr<Initializer>("initializer"), HeNormal());
}

TEST(DenseConstraintTest, MaxNormHoldsAfterFitting) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model({Dense(8, {.activation = "relu",
                              .kernel_constraint = MaxNorm{.max_value = 0.5},
                              .bias_constraint = MaxNorm{.max_value = 0.1},
                              .input_shape = Shape{4}}),
                    Dense(2, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.5, .momentum = 0.9}}).ok());
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 3, .batch_size = 8, .verbose = 0}).ok());
  auto weights = *model.GetWeights();
  const Tensor& kernel = weights["dense/kernel"];
  for (int unit = 0; unit < 8; ++unit) {
    double s = 0;
    for (int i = 0; i < 4; ++i) s += std::pow(kernel.data<float>()[i * 8 + unit], 2);
    EXPECT_LE(std::sqrt(s), 0.5 + 1e-6) << "unit " << unit;
  }
  EXPECT_LE(std::sqrt(SumSquares(weights["dense/bias"])), 0.1 + 1e-6);
  // The unconstrained output layer grew past those norms.
  EXPECT_GT(std::sqrt(SumSquares(weights["dense_1/kernel"])), 0.5);
}

TEST(DenseRegularizerTest, BadSettingsFailCompileNamingTheVariable) {
  Sequential nan_penalty({Dense(2, {.kernel_regularizer = L2(std::nan("")), .input_shape = Shape{4}})});
  absl::Status s = nan_penalty.Compile({});
  EXPECT_THAT(std::string(s.message()), HasSubstr("'dense/kernel'"));
  Sequential bad_axis({Dense(2, {.kernel_constraint = MaxNorm{.axis = 3}, .input_shape = Shape{4}})});
  s = bad_axis.Compile({});
  EXPECT_THAT(std::string(s.message()), HasSubstr("axis 3 is out of range"));
}


// ------------------------------------------------------------ initializer objects

// Keras: Dense(1000, kernel_initializer=VarianceScaling(scale=2,
// mode="fan_avg", distribution="uniform")) on 500 inputs.
constexpr int64_t kFanIn = 500, kUnits = 1000;
const Initializer kScaling = init::VarianceScaling{
    .scale = 2, .mode = init::Mode::kFanAvg, .distribution = init::Distribution::kUniform};

TEST(DenseInitializerTest, VarianceScalingObjectDrawsKerasVariance) {
  Sequential model({Dense(kUnits, {.kernel_initializer = kScaling, .input_shape = Shape{kFanIn}})});
  ASSERT_TRUE(model.Compile({.loss = "mse", .seed = 7}).ok());
  const Tensor kernel = model.layers()[0]->GetWeights().at("kernel");
  double sum_sq = 0, max_abs = 0;
  for (float v : kernel.flat<float>()) {
    sum_sq += double(v) * v;
    max_abs = std::max(max_abs, std::abs(double(v)));
  }
  // Keras: variance scale / ((fan_in + fan_out) / 2), U(-limit, limit) with
  // limit sqrt(3 variance). 500,000 uniform samples: the standard error of
  // the sample variance is 0.13% of it, so 1% is 7.5 of them, while fan_in
  // instead of fan_avg (33% off) or scale 1 (50%) fall far outside.
  const double variance = 2.0 / ((kFanIn + kUnits) / 2.0);
  EXPECT_NEAR(sum_sq / double(kernel.num_elements()), variance, 0.01 * variance);
  EXPECT_LE(max_abs, std::sqrt(3 * variance));
  EXPECT_GT(max_abs, 0.99 * std::sqrt(3 * variance));  // uniform up to the limit, not a normal
}

TEST(DenseInitializerTest, VarianceScalingConfigIsWhatKeras3Writes) {
  auto json = LayerToJson(*Dense(3, {.kernel_initializer = kScaling}));
  ASSERT_TRUE(json.ok()) << json.status();
  const nlohmann::json keras = nlohmann::json::parse(R"({"module": "keras.initializers",
      "class_name": "VarianceScaling", "registered_name": null,
      "config": {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform", "seed": null}})");
  EXPECT_EQ((*json)["config"]["kernel_initializer"], keras);
  auto back = LayerFromJson(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*LayerToJson(**back), *json);
}

// Keras 3.15+ also writes input_axes / output_axes (null), and Keras takes
// distribution "normal" for "truncated_normal".
TEST(DenseInitializerTest, ReadsWhatNewerKerasWritesAndItsAliases) {
  auto read = [](const std::string& initializer) {
    return LayerFromJson(nlohmann::json::parse(
        R"({"class_name": "Dense", "config": {"units": 3, "kernel_initializer": )" + initializer + "}}"));
  };
  auto axes = read(R"({"class_name": "GlorotUniform", "config": {"seed": null, "input_axes": null, "output_axes": null}})");
  ASSERT_TRUE(axes.ok()) << axes.status();
  EXPECT_EQ((*LayerToJson(**axes))["config"]["kernel_initializer"]["config"], nlohmann::json({{"seed", nullptr}}));
  auto normal = read(R"({"class_name": "VarianceScaling", "config": {"distribution": "normal", "input_axes": null}})");
  ASSERT_TRUE(normal.ok()) << normal.status();
  EXPECT_EQ((*LayerToJson(**normal))["config"]["kernel_initializer"]["config"]["distribution"], "truncated_normal");
  auto set_axes = read(R"({"class_name": "VarianceScaling", "config": {"input_axes": [0]}})");
  ASSERT_FALSE(set_axes.ok());
  EXPECT_THAT(std::string(set_axes.status().message()), HasSubstr("'input_axes' is array [0]: gradflow computes fans"));
}

TEST(DenseInitializerTest, BadVarianceScalingSettingsFailCompileNamingTheLayer) {
  struct Case {
    init::VarianceScaling scaling;
    const char* message;
  };
  const Case cases[] = {
      {{.scale = 0}, "VarianceScaling scale must be > 0, got 0"},
      {{.scale = -2}, "VarianceScaling scale must be > 0, got -2"},
      {{.scale = std::nan("")}, "VarianceScaling scale must be > 0, got nan"},
      {{.mode = static_cast<init::Mode>(7)}, "VarianceScaling mode must be one of fan_in, fan_out, fan_avg, got 7"},
      {{.distribution = static_cast<init::Distribution>(3)}, "VarianceScaling distribution must be one of"},
  };
  for (const Case& c : cases) {
    Sequential model({Dense(3, {.kernel_initializer = c.scaling, .name = "hidden", .input_shape = Shape{4}})});
    absl::Status s = model.Compile({.loss = "mse"});
    EXPECT_THAT(std::string(s.message()), HasSubstr("Dense layer 'hidden': ")) << c.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
  auto bad_mode = LayerFromJson(nlohmann::json::parse(
      R"({"class_name": "Dense", "config": {"units": 3, "kernel_initializer":
          {"class_name": "VarianceScaling", "config": {"mode": "fan_sideways"}}}})"));
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_THAT(std::string(bad_mode.status().message()), HasSubstr("use one of fan_in, fan_out, fan_avg"));
}

}  // namespace
}  // namespace gradflow::nn
