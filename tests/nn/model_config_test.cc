// Tests of nn/model_config.cc: every layer type and every optimizer /
// schedule round-trips through its JSON, custom layer types can be
// registered, and hostile configurations give errors naming the problem.

#include "nn/model_config.h"

#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/gaussian_noise.h"
#include "nn/layer_registry.h"
#include "nn/config_reader.h"
#include "nn/layers.h"
#include "nn/merge_layers.h"
#include "nn/normalization.h"
#include "nn/preprocessing.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::vector<nn::LayerPtr> EveryLayerType() {
  std::vector<nn::LayerPtr> layers = {
      nn::Flatten(Shape{4, 5}),
      nn::Dense(7, {.activation = "selu",
                    .kernel_initializer = "lecun_normal",
                    .bias_initializer = "ones",
                    .use_bias = true,
                    .kernel_regularizer = nn::L1L2(0.001, 0.25),
                    .bias_regularizer = nn::L2(0.5),
                    .kernel_constraint = nn::MaxNorm{.max_value = 1.5, .axis = 1},
                    .bias_constraint = nn::MaxNorm{},
                    .name = "hidden"}),
      nn::Dense(3, {.use_bias = false}),
      nn::Activation("gelu"),
      nn::Dropout(0.2),
      nn::AlphaDropout(0.1),
      nn::MCDropout(0.3),
      nn::MCAlphaDropout(0.05),
      nn::BatchNormalization({.momentum = 0.9, .epsilon = 1e-5, .center = false,
                              .gamma_initializer = "random_normal"}),
      nn::LeakyReLU(0.125),
      nn::ELU(0.75),
      nn::PReLU({.alpha_initializer = "constant", .shared_axes = {1}}),
      nn::RReLU(0.1, 0.2),
      nn::ReLU(0.05),
      nn::Softmax(),
      nn::GaussianNoise(0.25, 17),
      nn::GaussianNoise(0.5),
      nn::Normalization({.invert = true}),
      nn::Normalization({.mean = {{0.5, -1}}, .variance = {{2, 0.25}}}),
      nn::Concatenate(1, "joined"),
      nn::Add(),
      nn::Subtract(),
      nn::Multiply(),
      nn::Average(),
      nn::Maximum(),
      nn::Minimum(),
  };
  layers[2]->trainable = false;
  layers[3]->set_name("act");
  return layers;
}

TEST(ModelConfigTest, EveryLayerTypeRoundTrips) {
  for (const nn::LayerPtr& layer : EveryLayerType()) {
    auto json = nn::LayerToJson(*layer);
    ASSERT_TRUE(json.ok()) << layer->type() << ": " << json.status();
    auto copy = nn::LayerFromJson(*json);
    ASSERT_TRUE(copy.ok()) << json->dump() << ": " << copy.status();
    EXPECT_EQ((*copy)->type(), layer->type());
    EXPECT_EQ((*copy)->name(), layer->name());
    EXPECT_EQ((*copy)->trainable, layer->trainable);
    EXPECT_EQ((*copy)->input_shape(), layer->input_shape());
    auto again = nn::LayerToJson(**copy);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->dump(), json->dump());
  }
  // Every built-in layer type (every registered type with an example
  // config, nn/layer_registry.h) is covered above with non-default settings.
  std::vector<std::string> covered;
  for (const nn::LayerPtr& layer : EveryLayerType()) covered.push_back(layer->type());
  std::vector<std::string> registered = nn::LayerTypeNames();
  for (const std::string& name : covered) EXPECT_THAT(registered, ::testing::Contains(name));
  for (const nn::LayerTypeInfo& type : nn::LayerTypes()) {
    if (!type.example_config.empty()) {
      EXPECT_THAT(covered, ::testing::Contains(type.class_name));
    }
  }
}

TEST(ModelConfigTest, DenseConfigHasKerasFieldNames) {
  auto json = nn::LayerToJson(*nn::Dense(300, {.activation = "relu", .kernel_initializer = "he_normal",
                                               .input_shape = Shape{784}}));
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["class_name"], "Dense");
  const Json& config = (*json)["config"];
  EXPECT_EQ(config["units"], 300);
  EXPECT_EQ(config["activation"], "relu");
  // Keras 3's object form of an initializer.
  EXPECT_EQ(config["kernel_initializer"],
            Json::parse(R"({"module": "keras.initializers", "class_name": "HeNormal",
                            "config": {"seed": null}, "registered_name": null})"));
  EXPECT_EQ(config["bias_initializer"]["class_name"], "Zeros");
  EXPECT_EQ(config["use_bias"], true);
  EXPECT_TRUE(config["kernel_regularizer"].is_null());
  EXPECT_EQ(config["input_shape"], Json::array({784}));
  EXPECT_EQ(config["trainable"], true);
}

TEST(ModelConfigTest, ModelWithEveryOptimizerAndScheduleRoundTrips) {
  std::vector<optimizers::Optimizer> all = {
      optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true},
      optimizers::Adagrad{.initial_accumulator_value = 0.2},
      optimizers::RMSprop{.rho = 0.8, .momentum = 0.1, .centered = true},
      optimizers::Adam{.beta_2 = 0.99, .amsgrad = true},
      optimizers::AdamW{.weight_decay = 0.01},
      optimizers::Nadam{.schedule_decay = optimizers::kKeras2NadamScheduleDecay},
      optimizers::Adamax{.epsilon = 1e-6},
  };
  std::vector<optimizers::Schedule> schedules = {
      optimizers::PowerSchedule{.decay_steps = 100, .power = 2},
      optimizers::ExponentialDecay{.decay_steps = 10, .staircase = true},
      optimizers::PiecewiseConstantDecay{.boundaries = {10, 20}, .values = {0.1, 0.01, 0.001}},
      optimizers::CosineDecay{.decay_steps = 50, .alpha = 0.1, .warmup_target = 0.5, .warmup_steps = 7},
      optimizers::PolynomialDecay{.decay_steps = 30, .power = 0.5, .cycle = true},
      optimizers::OneCycle{.total_steps = 1000, .max_learning_rate = 0.1},
      optimizers::InverseTimeDecay{.decay_steps = 10, .decay_rate = 0.5, .staircase = true},
  };
  ASSERT_EQ(schedules.size(), std::variant_size_v<optimizers::Schedule>);
  for (size_t i = 0; i < all.size(); ++i) {
    nn::ModelConfig config{.name = "m", .layers = {nn::Dense(2, {.input_shape = Shape{3}})}};
    config.compile = nn::CompileOptions{.loss = "mse", .optimizer = all[i], .metrics = {"accuracy"},
                                        .seed = 18446744073709551615ull};
    if (i < schedules.size()) config.compile->learning_rate_schedule = schedules[i];
    if (i % 3 == 0) config.compile->clip = optimizers::ClipByGlobalNorm(2.0);
    if (i % 3 == 1) config.compile->clip = optimizers::ClipByValue(0.5);
    auto text = nn::ModelConfigToJson(config);
    ASSERT_TRUE(text.ok()) << text.status();
    auto parsed = nn::ParseModelConfig(*text);
    ASSERT_TRUE(parsed.ok()) << *text << "\n" << parsed.status();
    EXPECT_EQ(parsed->name, "m");
    ASSERT_TRUE(parsed->compile.has_value());
    EXPECT_EQ(parsed->compile->optimizer.index(), i);
    EXPECT_EQ(parsed->compile->seed, 18446744073709551615ull);
    auto again = nn::ModelConfigToJson(*parsed);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *text) << "a second round trip must give the same text";
  }
}

// Every loss class with non-default options: written as Keras 3's loss
// object, read back by the generic reader with the same fields.
TEST(ModelConfigTest, ModelWithEveryLossConfigRoundTrips) {
  const std::vector<losses::Loss> all = {
      losses::SparseCategoricalCrossentropy{.from_logits = true, .reduction = losses::Reduction::kSum},
      losses::CategoricalCrossentropy{.label_smoothing = 0.1},
      losses::BinaryCrossentropy{.label_smoothing = 0.2, .keras2_log_epsilon = true},
      losses::MeanSquaredError{.reduction = losses::Reduction::kSum},
      losses::Huber{.delta = 2.5},
  };
  ASSERT_EQ(all.size(), std::variant_size_v<losses::Loss>);
  for (const losses::Loss& loss : all) {
    SCOPED_TRACE(VariantName(loss));
    nn::ModelConfig config{.name = "m", .layers = {nn::Dense(2, {.input_shape = Shape{3}})}};
    config.compile = nn::CompileOptions{.loss_config = loss};
    auto text = nn::ModelConfigToJson(config);
    ASSERT_TRUE(text.ok()) << text.status();
    const Json written = Json::parse(*text)["compile"]["loss_config"];
    EXPECT_EQ(written["class_name"], VariantName(loss));
    EXPECT_EQ(written["module"], "keras.losses");
    auto parsed = nn::ParseModelConfig(*text);
    ASSERT_TRUE(parsed.ok()) << *text << "\n" << parsed.status();
    ASSERT_TRUE(parsed->compile && parsed->compile->loss_config);
    EXPECT_EQ(nn::DescribedToJson(*parsed->compile->loss_config), nn::DescribedToJson(loss));
    auto again = nn::ModelConfigToJson(*parsed);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *text);
  }
  // Specific values survive (not only the text).
  nn::ModelConfig config{.name = "m", .layers = {nn::Dense(2, {.input_shape = Shape{3}})}};
  config.compile = nn::CompileOptions{.loss_config = losses::Huber{.delta = 2.5}};
  auto parsed = nn::ParseModelConfig(*nn::ModelConfigToJson(config));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::get<losses::Huber>(*parsed->compile->loss_config).delta, 2.5);
}

TEST(ModelConfigTest, BadLossConfigIsAnErrorNamingTheField) {
  nn::ModelConfig config{.name = "m", .layers = {nn::Dense(2, {.input_shape = Shape{3}})}};
  config.compile = nn::CompileOptions{.loss_config = losses::Huber{}};
  Json json = Json::parse(*nn::ModelConfigToJson(config));
  json["compile"]["loss_config"]["config"]["delta"] = -1;
  auto parsed = nn::ParseModelConfig(json.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("delta"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("-1"));
  json["compile"]["loss_config"] = {{"class_name", "Hubber"}};
  parsed = nn::ParseModelConfig(json.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("Huber"));  // the valid names
  json["compile"]["loss_config"] = "huber";  // a Keras name means its defaults
  parsed = nn::ParseModelConfig(json.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::get<losses::Huber>(*parsed->compile->loss_config).delta, 1.0);
}

TEST(ModelConfigTest, CustomLayerTypeCanBeRegistered) {
  // A layer type from outside nn/: doubles its input.
  class Doubler : public nn::Layer {
   public:
    std::string type() const override { return "TestDoubler"; }
    Json Config() const override { return Json::object(); }

   protected:
    Output Build(const Scope& scope, Output x) override { return x; }
  };
  auto factory = [](const Json& config) -> absl::StatusOr<nn::LayerPtr> {
    return nn::LayerPtr(std::make_shared<Doubler>());
  };
  ASSERT_TRUE(nn::RegisterLayerType("TestDoubler", factory).ok());
  EXPECT_EQ(nn::RegisterLayerType("TestDoubler", factory).code(), absl::StatusCode::kAlreadyExists);
  auto copy = nn::CloneLayer(Doubler());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->type(), "TestDoubler");

  class Unsaveable : public nn::Layer {
   public:
    std::string type() const override { return "TestUnsaveable"; }

   protected:
    Output Build(const Scope&, Output x) override { return x; }
  };
  auto json = nn::LayerToJson(Unsaveable());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(json.status().message(), HasSubstr("TestUnsaveable"));

  // A name the loader would reject is refused when saving already.
  auto slashed = nn::LayerToJson(*nn::Dense(2, {.name = "block/dense"}));
  EXPECT_THAT(slashed.status().message(), HasSubstr("may not contain '/'"));
}

// ---------------------------------------------------------------- hostile input

// A valid configuration with one edit applied to its JSON.
std::string Edited(const std::function<void(Json&)>& edit) {
  nn::ModelConfig config{.name = "m",
                         .layers = {nn::Flatten(Shape{2, 3}), nn::Dense(4, {.activation = "relu"}),
                                    nn::Dropout(0.5), nn::Dense(2, {.activation = "softmax"})},
                         .compile = nn::CompileOptions{.optimizer = optimizers::Adam{}}};
  Json json = Json::parse(*nn::ModelConfigToJson(config));
  edit(json);
  return json.dump();
}

struct BadConfig {
  std::string what;
  std::string text;
  std::string expected;  // a substring of the error
};

std::vector<BadConfig> BadConfigs() {
  std::vector<BadConfig> cases = {
      {"empty", "", "not valid JSON"},
      {"not JSON", "{\"format\": ", "not valid JSON"},
      {"trailing garbage", Edited([](Json&) {}) + "x", "not valid JSON"},
      {"array root", "[1, 2]", "must be a JSON object"},
      {"deep nesting", std::string(100000, '[') + std::string(100000, ']'), "nested deeper"},
      {"deep nesting in a string is fine but unclosed", "{\"a\": \"[[[[", "not valid JSON"},
      {"invalid UTF-8", "{\"format\": \"\xff\xfe\"}", "not valid JSON"},
      {"wrong format", Edited([](Json& j) { j["format"] = "keras"; }), "'format' is 'keras'"},
      {"future version", Edited([](Json& j) { j["format_version"] = 2; }), "this gradflow reads version 1"},
      {"functional model without its graph", Edited([](Json& j) { j["class_name"] = "Functional"; }), "has no 'input_layers'"},
      {"unknown model class", Edited([](Json& j) { j["class_name"] = "Subclassed"; }), "expected Sequential or Functional"},
      {"unknown top-level field", Edited([](Json& j) { j["extra"] = 1; }), "unknown field 'extra'"},
      {"missing layers", Edited([](Json& j) { j.erase("layers"); }), "'layers' is missing"},
      {"layers not an array", Edited([](Json& j) { j["layers"] = "dense"; }), "'layers' must be an array"},
      {"too many layers", Edited([](Json& j) { j["layers"] = Json(std::vector<int>(20000, 0)); }),
       "at most 10000"},
      {"layer not an object", Edited([](Json& j) { j["layers"][1] = 5; }), "layers[1]: must be a JSON object"},
      {"unknown layer type", Edited([](Json& j) { j["layers"][1]["class_name"] = "Conv2D"; }),
       "unknown layer type 'Conv2D'; known types: "},
      {"missing config", Edited([](Json& j) { j["layers"][1].erase("config"); }), "'config' is missing"},
      {"missing units", Edited([](Json& j) { j["layers"][1]["config"].erase("units"); }),
       "layers[1] (Dense).config: 'units' is missing"},
      {"units as a string", Edited([](Json& j) { j["layers"][1]["config"]["units"] = "4"; }),
       "'units' must be an integer in [1, 1048576], got string \"4\""},
      {"units 1e12 (a float)", Edited([](Json& j) { j["layers"][1]["config"]["units"] = 1e12; }),
       "'units' must be an integer"},
      {"units 10^12", Edited([](Json& j) { j["layers"][1]["config"]["units"] = int64_t{1000000000000}; }),
       "'units' must be an integer in [1, 1048576]"},
      {"units 0", Edited([](Json& j) { j["layers"][1]["config"]["units"] = 0; }), "'units' must be"},
      {"units 2^64-1", Edited([](Json& j) { j["layers"][1]["config"]["units"] = 18446744073709551615ull; }),
       "'units' must be"},
      {"unknown activation", Edited([](Json& j) { j["layers"][1]["config"]["activation"] = "swishy"; }),
       "unknown activation 'swishy'"},
      {"unknown initializer",
       Edited([](Json& j) { j["layers"][1]["config"]["kernel_initializer"] = "magic"; }), "magic"},
      {"unknown layer field", Edited([](Json& j) { j["layers"][1]["config"]["unit"] = 4; }),
       "unknown field 'unit'"},
      {"use_bias as a number", Edited([](Json& j) { j["layers"][1]["config"]["use_bias"] = 1; }),
       "'use_bias' must be true or false"},
      {"negative l2", Edited([](Json& j) { j["layers"][1]["config"]["kernel_regularizer"] = {{"l2", -1}}; }),
       "kernel_regularizer: L1L2 l2 must be >= 0, got -1"},
      {"regularizer not an object or a name",
       Edited([](Json& j) { j["layers"][1]["config"]["kernel_regularizer"] = 2; }),
       "kernel_regularizer: must be a JSON object"},
      {"zero max norm",
       Edited([](Json& j) { j["layers"][1]["config"]["kernel_constraint"] = {{"max_value", 0}}; }),
       "MaxNorm max_value must be > 0, got 0"},
      {"dropout rate 1", Edited([](Json& j) { j["layers"][2]["config"]["rate"] = 1.0; }),
       "'rate' must be in [0, 1)"},
      {"dropout rate null", Edited([](Json& j) { j["layers"][2]["config"]["rate"] = nullptr; }),
       "'rate' must be a finite number"},
      {"name with a slash", Edited([](Json& j) { j["layers"][1]["config"]["name"] = "a/b"; }),
       "may not contain '/'"},
      {"name not a string", Edited([](Json& j) { j["layers"][1]["config"]["name"] = 3; }),
       "'name' must be a string"},
      {"trainable as a string", Edited([](Json& j) { j["layers"][1]["config"]["trainable"] = "no"; }),
       "'trainable' must be true or false"},
      {"input shape too big",
       Edited([](Json& j) { j["layers"][0]["config"]["input_shape"] = {1 << 16, 1 << 16}; }),
       "'input_shape' must list"},
      {"input shape overflowing",
       Edited([](Json& j) {
         j["layers"][0]["config"]["input_shape"] = {int64_t{1} << 40, int64_t{1} << 40, int64_t{1} << 40};
       }),
       "'input_shape' must list"},
      {"negative input dim", Edited([](Json& j) { j["layers"][0]["config"]["input_shape"] = {-1, 3}; }),
       "'input_shape' must list"},
      {"empty input shape", Edited([](Json& j) { j["layers"][0]["config"]["input_shape"] = Json::array(); }),
       "'input_shape' must list"},
      {"unknown optimizer", Edited([](Json& j) { j["compile"]["optimizer"]["class_name"] = "Lamb"; }),
       "'class_name' 'Lamb' is not known; known: SGD, Adagrad"},
      {"negative learning rate",
       Edited([](Json& j) { j["compile"]["optimizer"]["config"]["learning_rate"] = -1; }), "learning rate"},
      {"unknown optimizer field", Edited([](Json& j) { j["compile"]["optimizer"]["config"]["lr"] = 1; }),
       "unknown field 'lr'"},
      {"unknown schedule",
       Edited([](Json& j) { j["compile"]["learning_rate_schedule"] = {{"class_name", "warmup"}}; }),
       "'warmup' is not known"},
      {"bad clip kind", Edited([](Json& j) { j["compile"]["clip"] = {{"kind", "max"}, {"threshold", 1}}; }),
       "'kind' is 'max'"},
      {"negative seed", Edited([](Json& j) { j["compile"]["seed"] = -3; }), "'seed' must be a non-negative"},
      {"metrics not a list", Edited([](Json& j) { j["compile"]["metrics"] = "accuracy"; }),
       "'metrics' must be an array"},
  };
  return cases;
}

TEST(ModelConfigTest, HostileConfigsGiveErrorsNamingTheProblem) {
  for (const BadConfig& bad : BadConfigs()) {
    absl::StatusOr<nn::ModelConfig> parsed = nn::ParseModelConfig(bad.text);
    ASSERT_FALSE(parsed.ok()) << bad.what;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad.what;
    EXPECT_THAT(parsed.status().message(), HasSubstr(bad.expected)) << bad.what;
  }
}

TEST(ModelConfigTest, TheUneditedConfigParses) {
  auto parsed = nn::ParseModelConfig(Edited([](Json&) {}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->layers.size(), 4u);
  auto layers = nn::ParseLayersConfig(Edited([](Json&) {}));
  ASSERT_TRUE(layers.ok());
  EXPECT_EQ((*layers)[1]->type(), "Dense");
  // Optional fields fall back to Keras defaults.
  auto minimal = nn::ParseModelConfig(
      R"({"format": "gradflow.model", "format_version": 1, "class_name": "Sequential",
          "layers": [{"class_name": "Dense", "config": {"units": 3, "input_shape": [2]}}]})");
  ASSERT_TRUE(minimal.ok()) << minimal.status();
  EXPECT_EQ(minimal->name, "sequential");
  EXPECT_FALSE(minimal->compile.has_value());
  auto json = nn::LayerToJson(*minimal->layers[0]);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["config"]["kernel_initializer"]["class_name"], "GlorotUniform");
}

}  // namespace
}  // namespace gradflow
