// Walks every registry a model config names components from (layers,
// losses, metrics, activations, optimizers, schedules, initializers) and
// checks that each entry is reachable by its Keras name and round-trips
// through the model config. Nothing here lists components by hand: a new
// entry is covered the moment it is registered, and a missing piece of it
// (no reader, no example, a name that does not resolve) fails here.

#include <variant>

#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "core/initializers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layer_registry.h"
#include "nn/losses.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "nn/saving.h"
#include "ops/activations.h"
#include "optimizers/optimizers.h"
#include "optimizers/schedules.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kSamples = 8, kFeatures = 4, kClasses = 3;

Tensor Inputs() {
  Tensor x(DType::kF32, {kSamples, kFeatures});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = float((i * 7) % 11) / 11.0f - 0.4f;
  return x;
}

Tensor ClassLabels() {
  Tensor y(DType::kI32, {kSamples});
  for (int64_t i = 0; i < kSamples; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(i % kClasses);
  return y;
}

// f32 targets of the output's shape: one-hot rows (valid for every non-sparse loss).
Tensor OneHotTargets() {
  Tensor t(DType::kF32, {kSamples, kClasses});
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = (i % kClasses) == (i / kClasses) % kClasses;
  return t;
}

// ---------------------------------------------------------------- layers

TEST(RegistryTest, EveryLayerTypeHasAnExampleAndRoundTrips) {
  std::vector<nn::LayerTypeInfo> types = nn::LayerTypes();
  ASSERT_FALSE(types.empty());
  for (const nn::LayerTypeInfo& type : types) {
    if (type.example_config.empty()) continue;  // registered from outside nn/ (a test)
    SCOPED_TRACE(type.class_name);
    const Json layer_json = {{"class_name", type.class_name}, {"config", Json::parse(type.example_config)}};
    absl::StatusOr<nn::LayerPtr> layer = nn::LayerFromJson(layer_json);
    ASSERT_TRUE(layer.ok()) << layer.status();
    EXPECT_EQ((*layer)->type(), type.class_name) << "type() and the registration must agree";
    absl::StatusOr<Json> written = nn::LayerToJson(**layer);
    ASSERT_TRUE(written.ok()) << written.status();
    absl::StatusOr<nn::LayerPtr> again = nn::LayerFromJson(*written);
    ASSERT_TRUE(again.ok()) << written->dump() << ": " << again.status();
    EXPECT_EQ(nn::LayerToJson(**again)->dump(), written->dump());
    EXPECT_THAT(nn::LayerTypeNames(), ::testing::Contains(type.class_name));
  }
}

// Every layer type trains in a model, saves, and loads back to the same
// predictions: its reader, writer and Build agree.
TEST(RegistryTest, EveryLayerTypeTrainsSavesAndLoads) {
  const std::string dir = testing_util::TempDir("registry_layers");
  for (const nn::LayerTypeInfo& type : nn::LayerTypes()) {
    if (type.example_config.empty()) continue;
    SCOPED_TRACE(type.class_name);
    auto layer = nn::LayerFromJson({{"class_name", type.class_name}, {"config", Json::parse(type.example_config)}});
    ASSERT_TRUE(layer.ok()) << layer.status();
    nn::Sequential model({nn::Dense(kFeatures, {.input_shape = Shape{kFeatures}}), *layer,
                          nn::Dense(kClasses, {.activation = "softmax"})});
    ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{}}).ok());
    auto history = model.Fit(Inputs(), ClassLabels(), {.epochs = 1, .batch_size = 4, .verbose = 0});
    ASSERT_TRUE(history.ok()) << history.status();
    const std::string path = dir + "/" + type.class_name + ".safetensors";
    ASSERT_TRUE(model.Save(path).ok());
    auto loaded = nn::LoadModel(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->layers()[1]->type(), type.class_name);
    auto before = model.Predict(Inputs());
    auto after = loaded->Predict(Inputs());
    ASSERT_TRUE(before.ok() && after.ok());
    for (int64_t i = 0; i < before->num_elements(); ++i) {
      EXPECT_EQ(before->data<float>()[i], after->data<float>()[i]) << "element " << i;
    }
  }
}

// ---------------------------------------------------------------- losses, metrics

// Each loss (by every name) compiles, trains, and is saved and reloaded by name.
TEST(RegistryTest, EveryLossIsReachableByEachNameAndRoundTrips) {
  ASSERT_FALSE(nn::Losses().empty());
  for (const nn::LossInfo& loss : nn::Losses()) {
    for (const std::string& name : loss.names) {
      SCOPED_TRACE(name);
      absl::StatusOr<const nn::LossInfo*> found = nn::FindLoss(name);
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(*found, &loss);
      nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
      ASSERT_TRUE(model.Compile({.loss = name, .metrics = {"accuracy"}}).ok());
      const Tensor y = loss.class_index_targets ? ClassLabels() : OneHotTargets();
      auto history = model.Fit(Inputs(), y, {.epochs = 1, .verbose = 0});
      ASSERT_TRUE(history.ok()) << history.status();
      EXPECT_TRUE(std::isfinite(history->history.at("loss")[0]));
      nn::ModelConfig config{.layers = model.layers(), .compile = *model.compile_options()};
      auto parsed = nn::ParseModelConfig(*nn::ModelConfigToJson(config));
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(parsed->compile->loss, name);
    }
  }
  auto unknown = nn::FindLoss("no_such_loss");
  for (const std::string& name : nn::LossNames()) EXPECT_THAT(unknown.status().message(), HasSubstr(name));
}

TEST(RegistryTest, EveryMetricIsReachableByEachNameWithEveryLoss) {
  ASSERT_FALSE(nn::Metrics().empty());
  for (const std::string& name : nn::MetricNames()) {
    ASSERT_TRUE(nn::FindMetric(name).ok()) << name;
    for (const nn::LossInfo& loss : nn::Losses()) {
      SCOPED_TRACE(name + " with " + loss.names[0]);
      // Class-index metrics need class-index targets and the reverse.
      const bool sparse_metric = absl::StrContains(name, "sparse");
      if (sparse_metric != loss.class_index_targets && name != "accuracy" && name != "acc") continue;
      nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
      ASSERT_TRUE(model.Compile({.loss = loss.names[0], .metrics = {name}}).ok());
      const Tensor y = loss.class_index_targets ? ClassLabels() : OneHotTargets();
      auto metrics = model.Evaluate(Inputs(), y);
      ASSERT_TRUE(metrics.ok()) << metrics.status();
      const double value = metrics->at(name);
      EXPECT_TRUE(value >= 0 && value <= 1) << value;
    }
  }
  auto unknown = nn::FindMetric("no_such_metric");
  for (const std::string& name : nn::MetricNames()) EXPECT_THAT(unknown.status().message(), HasSubstr(name));
}

// ---------------------------------------------------------------- activations, initializers

TEST(RegistryTest, EveryActivationRoundTripsAsADenseAndAnActivationLayer) {
  ASSERT_FALSE(ops::ActivationNames().empty());
  for (const std::string& name : ops::ActivationNames()) {
    SCOPED_TRACE(name);
    for (const nn::LayerPtr& layer : {nn::Dense(2, {.activation = name}), nn::Activation(name)}) {
      auto json = nn::LayerToJson(*layer);
      ASSERT_TRUE(json.ok()) << json.status();
      auto copy = nn::LayerFromJson(*json);
      ASSERT_TRUE(copy.ok()) << copy.status();
      EXPECT_EQ(nn::LayerToJson(**copy)->dump(), json->dump());
    }
    nn::Sequential model({nn::Dense(kClasses, {.activation = name, .input_shape = Shape{kFeatures}})});
    ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
    EXPECT_TRUE(model.Predict(Inputs()).ok());
  }
}

// The initializer names, as InitializerFromName's own error lists them
// (core/initializers has no names list of its own yet).
std::vector<std::string> InitializerNames() {
  const std::string message(InitializerFromName("").status().message());
  const std::string marker = "valid names: ";
  const size_t at = message.find(marker);
  if (at == std::string::npos) return {};
  return absl::StrSplit(message.substr(at + marker.size()), ", ");
}

TEST(RegistryTest, EveryInitializerRoundTripsInADenseConfig) {
  ASSERT_FALSE(InitializerNames().empty());
  for (const std::string& name : InitializerNames()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(InitializerFromName(name).ok());
    auto json = nn::LayerToJson(*nn::Dense(2, {.kernel_initializer = name, .bias_initializer = name}));
    ASSERT_TRUE(json.ok());
    auto copy = nn::LayerFromJson(*json);
    ASSERT_TRUE(copy.ok()) << copy.status();
    EXPECT_EQ(nn::LayerToJson(**copy)->dump(), json->dump());
  }
}

// ---------------------------------------------------------------- optimizers, schedules

// The default-constructed alternative I of a variant.
template <typename Variant, size_t... I>
std::vector<Variant> EveryAlternative(std::index_sequence<I...>) {
  return {Variant(std::in_place_index<I>)...};
}
template <typename Variant>
std::vector<Variant> EveryAlternative() {
  return EveryAlternative<Variant>(std::make_index_sequence<std::variant_size_v<Variant>>());
}

std::string CompileJson(const nn::CompileOptions& options) {
  return nn::ModelConfigToJson({.layers = {nn::Dense(2, {.input_shape = Shape{3}})}, .compile = options}).value();
}

TEST(RegistryTest, EveryOptimizerRoundTripsByItsKerasName) {
  for (const optimizers::Optimizer& optimizer : EveryAlternative<optimizers::Optimizer>()) {
    const std::string name = optimizers::OptimizerName(optimizer);
    SCOPED_TRACE(name);
    const std::string text = CompileJson({.optimizer = optimizer});
    auto parsed = nn::ParseModelConfig(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->compile->optimizer.index(), optimizer.index());
    EXPECT_EQ(nn::ModelConfigToJson(*parsed).value(), text);
    EXPECT_EQ(Json::parse(text)["compile"]["optimizer"]["class_name"], name);
  }
}

// Defaults of some schedules are not valid (required fields); those must
// still resolve by name and fail on their fields, never as an unknown class.
TEST(RegistryTest, EveryScheduleIsReachableByItsKerasName) {
  for (const optimizers::Schedule& schedule : EveryAlternative<optimizers::Schedule>()) {
    const std::string name = optimizers::ScheduleName(schedule);
    SCOPED_TRACE(name);
    nn::CompileOptions options{.learning_rate_schedule = schedule};
    const bool valid = optimizers::ValidateOptimizer(options.optimizer, {.schedule = schedule}).ok();
    Json json = Json::parse(nn::ModelConfigToJson({.layers = {nn::Dense(2, {.input_shape = Shape{3}})}}).value());
    json["compile"] = nn::CompileOptionsToJson(options);
    EXPECT_EQ(json["compile"]["learning_rate_schedule"]["class_name"], name);
    auto parsed = nn::ParseModelConfig(json.dump());
    if (valid) {
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(parsed->compile->learning_rate_schedule->index(), schedule.index());
      EXPECT_EQ(nn::ModelConfigToJson(*parsed).value(), CompileJson(options));
    } else {
      EXPECT_THAT(parsed.status().message(), ::testing::Not(HasSubstr("is not known")));
    }
  }
}

}  // namespace
}  // namespace gradflow
