// Walks every registry a model config names components from (layers,
// losses, metrics, activations, optimizers, schedules, initializers,
// regularizers, constraints) and
// checks that each entry is reachable by its Keras name and round-trips
// through the model config. Nothing here lists components by hand: a new
// entry is covered the moment it is registered, and a missing piece of it
// (no reader, no example, a name that does not resolve) fails here.

#include <cmath>
#include <map>
#include <variant>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/describe.h"
#include "core/initializers.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "nn/layer_registry.h"
#include "nn/losses.h"
#include "nn/metrics.h"
#include "nn/model.h"
#include "nn/config_reader.h"
#include "nn/model_config.h"
#include "nn/normalization.h"
#include "nn/saving.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/reduce.h"
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

// A layer taking two inputs (a merge layer), outside a model: built from its
// example config and from the config it writes, it computes the same values
// on the same inputs, and the gradient reaches both inputs.
void ExpectTwoInputLayerRoundTrips(const nn::LayerTypeInfo& type) {
  auto layer = nn::LayerFromJson({{"class_name", type.class_name}, {"config", Json::parse(type.example_config)}});
  ASSERT_TRUE(layer.ok()) << layer.status();
  auto again = nn::LayerFromJson(*nn::LayerToJson(**layer));
  ASSERT_TRUE(again.ok()) << again.status();
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, kFeatures});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, kFeatures});
  Output first = (*layer)->Apply(g.Scope("first"), {a, b});
  Output second = (*again)->Apply(g.Scope("second"), {a, b});
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<std::vector<Output>> grads = AddGradients(g, ops::ReduceSum(g, first), {a, b});
  ASSERT_TRUE(grads.ok() && g.ok()) << g.status();
  Session session(g);
  auto plan = session.Compile({first, second, (*grads)[0], (*grads)[1]}, {}, Phase::kInfer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor x = Inputs(), y = Inputs();
  for (int64_t i = 0; i < y.num_elements(); ++i) y.data<float>()[i] = 0.5f - 0.1f * float(i % 7);
  std::vector<Tensor> fetched;
  ASSERT_TRUE(plan->Run({{a, x}, {b, y}}, &fetched).ok());
  for (int64_t i = 0; i < fetched[0].num_elements(); ++i) {
    EXPECT_EQ(fetched[0].data<float>()[i], fetched[1].data<float>()[i]) << "element " << i;
  }
  EXPECT_EQ(fetched[2].shape(), x.shape());
  EXPECT_EQ(fetched[3].shape(), y.shape());
}

// Every layer type trains in a model, saves, and loads back to the same
// predictions: its reader, writer and Build agree.
TEST(RegistryTest, EveryLayerTypeTrainsSavesAndLoads) {
  const std::string dir = testing_util::TempDir("registry_layers");
  for (const nn::LayerTypeInfo& type : nn::LayerTypes()) {
    if (type.example_config.empty()) continue;
    SCOPED_TRACE(type.class_name);
    if (type.test_inputs == 2) {
      ExpectTwoInputLayerRoundTrips(type);
      continue;
    }
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

// Every loss class of the losses::Loss variant has its registration, named
// by Keras 3's snake_case alias of the class ("huber" for Huber), and a
// configured loss object compiles and trains with its options.
TEST(RegistryTest, EveryLossClassIsRegisteredAndCompilesAsAnObject) {
  const std::vector<std::string> keras3_names = {"sparse_categorical_crossentropy", "categorical_crossentropy",
                                                 "binary_crossentropy", "mean_squared_error", "huber"};
  std::vector<losses::Loss> all = EveryAlternative<losses::Loss>();
  ASSERT_EQ(all.size(), keras3_names.size());
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(keras3_names[i]);
    const nn::LossInfo& info = nn::LossInfoOf(all[i]);
    EXPECT_EQ(info.config.index(), i);
    EXPECT_EQ(info.names[0], keras3_names[i]);
    nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
    ASSERT_TRUE(model.Compile({.loss_config = all[i]}).ok());
    EXPECT_EQ(model.compile_options()->loss, keras3_names[i]);  // names the configured loss
    auto history = model.Fit(Inputs(), info.class_index_targets ? ClassLabels() : OneHotTargets(),
                             {.epochs = 1, .verbose = 0});
    ASSERT_TRUE(history.ok()) << history.status();
    EXPECT_TRUE(std::isfinite(history->history.at("loss")[0]));
  }
  // Keras 3's other spellings: the class name and the short aliases.
  for (const auto& [alias, name] : std::vector<std::pair<std::string, std::string>>{
           {"mse", "mean_squared_error"}, {"MSE", "mean_squared_error"}, {"MeanSquaredError", "mean_squared_error"},
           {"bce", "binary_crossentropy"}, {"BCE", "binary_crossentropy"}, {"Huber", "huber"}}) {
    ASSERT_TRUE(nn::FindLoss(alias).ok()) << alias;
    EXPECT_EQ(nn::FindLoss(alias).value(), nn::FindLoss(name).value()) << alias;
  }
}

// Compile's loss is what Fit reports: label smoothing changes it, and a
// per-sample reduction is refused with the fix.
TEST(RegistryTest, CompileUsesTheConfiguredLossAndRefusesReductionNone) {
  auto first_loss = [](const std::optional<losses::Loss>& config) {
    nn::Sequential model({nn::Dense(kClasses, {.activation = "sigmoid", .input_shape = Shape{kFeatures}})});
    EXPECT_TRUE(model.Compile({.loss = "binary_crossentropy", .loss_config = config,
                               .optimizer = optimizers::SGD{.learning_rate = 1e-9}}).ok());
    return model.Evaluate(Inputs(), OneHotTargets()).value().at("loss");
  };
  const double plain = first_loss(std::nullopt);
  EXPECT_NEAR(first_loss(losses::BinaryCrossentropy{}), plain, 1e-6);
  EXPECT_GT(std::abs(first_loss(losses::BinaryCrossentropy{.label_smoothing = 0.5}) - plain), 1e-3);

  nn::Sequential model({nn::Dense(kClasses, {.input_shape = Shape{kFeatures}})});
  absl::Status s = model.Compile({.loss_config = losses::Huber{.reduction = losses::Reduction::kNone}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("Huber"));
  EXPECT_THAT(s.message(), HasSubstr("reduction 'none'"));
  EXPECT_THAT(s.message(), HasSubstr("sum_over_batch_size"));
  s = model.Compile({.loss_config = losses::Huber{.delta = -2}});
  EXPECT_THAT(s.message(), HasSubstr("delta"));
}

TEST(RegistryTest, EveryMetricIsReachableByEachNameWithEveryLoss) {
  ASSERT_FALSE(nn::Metrics().empty());
  for (const std::string& name : nn::MetricNames()) {
    ASSERT_TRUE(nn::FindMetric(name).ok()) << name;
    for (const nn::LossInfo& loss : nn::Losses()) {
      SCOPED_TRACE(name + " with " + loss.names[0]);
      // Class-index metrics need class-index targets and the reverse.
      const std::string lower = absl::AsciiStrToLower(name);
      const bool sparse_metric = absl::StrContains(lower, "sparse");
      if (sparse_metric != loss.class_index_targets && name != "accuracy" && name != "acc") continue;
      nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
      absl::Status compiled = model.Compile({.loss = loss.names[0], .metrics = {name}});
      if (absl::StrContains(lower, "top_k") || absl::StrContains(lower, "topk")) {  // k = 5 > kClasses
        EXPECT_THAT(compiled.message(), HasSubstr("k = 5 is more than the 3 classes"));
        continue;
      }
      ASSERT_TRUE(compiled.ok()) << compiled;
      const Tensor y = loss.class_index_targets ? ClassLabels() : OneHotTargets();
      auto metrics = model.Evaluate(Inputs(), y);
      ASSERT_TRUE(metrics.ok()) << metrics.status();
      const double value = metrics->at(name);
      // Percentage errors are unbounded (a target 0 divides by 1e-7); the others lie in [0, 1] here.
      const bool percentage = absl::StrContains(lower, "percentage") || lower == "mape";
      EXPECT_TRUE(value >= 0 && (percentage ? std::isfinite(value) : value <= 1)) << value;
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

// ---------------------------------------------------------------- initializers, regularizers, constraints

// Keras 3's alias and get_config() defaults of every initializer,
// regularizer and constraint (keras/src/initializers, regularizers,
// constraints), stated once; a component missing here fails the walks below.
struct KerasComponent {
  const char* alias;
  const char* defaults;  // its config, JSON
};
const std::map<std::string, KerasComponent>& KerasComponents() {
  static const auto* components = new std::map<std::string, KerasComponent>{
      {"Zeros", {"zeros", "{}"}},
      {"Ones", {"ones", "{}"}},
      {"Constant", {"constant", R"({"value": 0.0})"}},
      {"RandomNormal", {"random_normal", R"({"mean": 0.0, "stddev": 0.05, "seed": null})"}},
      {"RandomUniform", {"random_uniform", R"({"minval": -0.05, "maxval": 0.05, "seed": null})"}},
      {"TruncatedNormal", {"truncated_normal", R"({"mean": 0.0, "stddev": 0.05, "seed": null})"}},
      {"VarianceScaling",
       {"variance_scaling", R"({"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": null})"}},
      {"GlorotNormal", {"glorot_normal", R"({"seed": null})"}},
      {"GlorotUniform", {"glorot_uniform", R"({"seed": null})"}},
      {"HeNormal", {"he_normal", R"({"seed": null})"}},
      {"HeUniform", {"he_uniform", R"({"seed": null})"}},
      {"LecunNormal", {"lecun_normal", R"({"seed": null})"}},
      {"LecunUniform", {"lecun_uniform", R"({"seed": null})"}},
      {"Orthogonal", {"orthogonal", R"({"gain": 1.0, "seed": null})"}},
      {"Identity", {"identity", R"({"gain": 1.0})"}},
      {"L1", {"l1", R"({"l1": 0.01})"}},
      {"L2", {"l2", R"({"l2": 0.01})"}},
      {"L1L2", {"l1_l2", R"({"l1": 0.0, "l2": 0.0})"}},
      {"MaxNorm", {"max_norm", R"({"max_value": 2.0, "axis": 0})"}},
  };
  return *components;
}

// `value` with every field moved off its Keras default to another valid
// value, so a round trip that dropped or defaulted a field shows.
template <typename T>
T Perturbed(T value) {
  VisitFields(value, [](const Field& field, auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<V, double>) {
      v = v * 2 + 0.5;
    } else if constexpr (std::is_enum_v<V>) {
      v = static_cast<V>(field.choices.size() - 1);
    } else if constexpr (std::is_same_v<V, init::Seed>) {
      v = 7;
    } else if constexpr (std::is_same_v<V, int>) {
      v = v == 0 ? 1 : 0;
    }
  });
  return value;
}

// Keras's class name and alias find `T`'s defaults, which are Keras 3's.
template <typename Variant, typename T>
void ExpectKerasNameAndDefaults(const T& value) {
  SCOPED_TRACE(T::kName);
  auto known = KerasComponents().find(T::kName);
  ASSERT_NE(known, KerasComponents().end()) << "state Keras's alias and defaults above";
  EXPECT_EQ(KerasAlias<T>(), known->second.alias);
  for (const std::string& name : {std::string(T::kName), KerasAlias<T>()}) {
    std::optional<Variant> found = VariantFromKerasName<Variant>(name);
    ASSERT_TRUE(found.has_value()) << name;
    EXPECT_TRUE(std::holds_alternative<T>(*found) && std::get<T>(*found) == T{}) << name;
  }
  EXPECT_EQ(nn::DescribedToJson(Variant(T{}))["config"], Json::parse(known->second.defaults));
  EXPECT_TRUE(ValidateFields(T{}).ok());
  EXPECT_TRUE(ValidateFields(Perturbed(value)).ok());
}

// A one-Dense model config with `options`, parsed back; the graph of the
// parsed model compiled.
absl::StatusOr<nn::Model> DenseThroughConfig(nn::DenseOptions options, Json* written) {
  options.input_shape = Shape{kFeatures};
  nn::ModelConfig config{.layers = {nn::Dense(kClasses, options)}};
  GF_ASSIGN_OR_RETURN(std::string text, nn::ModelConfigToJson(config));
  *written = Json::parse(text)["layers"][0]["config"];
  GF_ASSIGN_OR_RETURN(nn::ModelConfig parsed, nn::ParseModelConfig(text));
  if (nn::ModelConfigToJson(parsed).value() != text) return absl::InternalError("not the same config again");
  nn::Sequential model(parsed.layers);
  GF_RETURN_IF_ERROR(model.Compile({.loss = "mse"}));
  return model;
}

TEST(RegistryTest, EveryInitializerIsReachableByItsKerasNamesAndRoundTrips) {
  for (const Initializer::Variant& alternative : EveryAlternative<Initializer::Variant>()) {
    std::visit([](const auto& a) { ExpectKerasNameAndDefaults<Initializer::Variant>(a); }, alternative);
    const Initializer init = std::visit([](const auto& a) { return Initializer(Perturbed(a)); }, alternative);
    SCOPED_TRACE(init.class_name());
    EXPECT_EQ(*InitializerFromName(init.name()), Initializer(alternative));
    Json written;
    auto dense = DenseThroughConfig({.kernel_initializer = init, .bias_initializer = init}, &written);
    ASSERT_TRUE(dense.ok()) << dense.status();
    EXPECT_EQ(written["kernel_initializer"]["class_name"], init.class_name());
    EXPECT_EQ(dense->graph()->FindNode("dense/kernel")->attr<Initializer>("initializer"), init);
    EXPECT_EQ(dense->graph()->FindNode("dense/bias")->attr<Initializer>("initializer"), init);
    nn::BatchNormalizationOptions bn{.gamma_initializer = init, .moving_variance_initializer = init};
    auto bn_json = nn::LayerToJson(*nn::BatchNormalization(bn));
    ASSERT_TRUE(bn_json.ok());
    auto bn_copy = nn::LayerFromJson(*bn_json);
    ASSERT_TRUE(bn_copy.ok()) << bn_copy.status();
    EXPECT_EQ(nn::LayerToJson(**bn_copy)->dump(), bn_json->dump());
  }
}

TEST(RegistryTest, EveryRegularizerIsReachableByItsKerasNamesAndRoundTrips) {
  for (const auto& alternative : EveryAlternative<optimizers::DescribedRegularizer>()) {
    std::visit([](const auto& a) { ExpectKerasNameAndDefaults<optimizers::DescribedRegularizer>(a); }, alternative);
    const auto perturbed = std::visit([](const auto& a) { return optimizers::DescribedRegularizer(Perturbed(a)); },
                                      alternative);
    const optimizers::Regularizer penalty = optimizers::PenaltyOf(perturbed);
    SCOPED_TRACE(VariantName(perturbed));
    EXPECT_EQ(optimizers::DescribeRegularizer(penalty), perturbed) << "the writer keeps the class";
    Json written;
    auto dense = DenseThroughConfig({.kernel_regularizer = penalty}, &written);
    ASSERT_TRUE(dense.ok()) << dense.status();
    EXPECT_EQ(written["kernel_regularizer"]["class_name"], VariantName(perturbed));
    const Node* kernel = dense->graph()->FindNode("dense/kernel");
    EXPECT_EQ(kernel->attr_or<double>("l1", -1), penalty.l1);
    EXPECT_EQ(kernel->attr_or<double>("l2", -1), penalty.l2);
  }
}

TEST(RegistryTest, EveryConstraintIsReachableByItsKerasNamesAndRoundTrips) {
  for (const optimizers::Constraint& alternative : EveryAlternative<optimizers::Constraint>()) {
    std::visit([](const auto& a) { ExpectKerasNameAndDefaults<optimizers::Constraint>(a); }, alternative);
    const auto perturbed = std::visit([](const auto& a) { return optimizers::Constraint(Perturbed(a)); }, alternative);
    SCOPED_TRACE(VariantName(perturbed));
    Json written;
    auto dense = DenseThroughConfig({.kernel_constraint = perturbed}, &written);
    ASSERT_TRUE(dense.ok()) << dense.status();
    EXPECT_EQ(written["kernel_constraint"], nn::ConstraintToJson(perturbed));
    absl::Status status;
    nn::ConfigReader reader(written, "written", status);
    EXPECT_EQ(reader.Constraint("kernel_constraint"), perturbed);
    EXPECT_TRUE(status.ok()) << status;
  }
}

// What a Dense config with `field` set to `value` reads as.
absl::Status ReadDenseWith(const char* field, const Json& value) {
  Json layer = {{"class_name", "Dense"}, {"config", {{"units", 2}, {field, value}}}};
  return nn::LayerFromJson(layer).status();
}

TEST(RegistryTest, UnknownInitializerListsEveryValidName) {
  for (const Json& bad : {Json("magic"), Json{{"class_name", "magic"}, {"config", Json::object()}}}) {
    absl::Status status = ReadDenseWith("kernel_initializer", bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("'magic' is not known"));
    for (const std::string& name : VariantKerasNames<Initializer::Variant>()) {
      EXPECT_THAT(status.message(), HasSubstr(name));
    }
  }
  EXPECT_THAT(InitializerFromName("magic").status().message(), HasSubstr(InitializerNamesList()));
}

TEST(RegistryTest, OutOfRangeFieldsNameTheFieldAndTheValue) {
  const std::pair<const char*, const char*> cases[] = {
      {"kernel_initializer", R"({"class_name": "RandomNormal", "config": {"stddev": -1}})"},
      {"kernel_initializer", R"({"class_name": "VarianceScaling", "config": {"scale": 0}})"},
      {"kernel_regularizer", R"({"class_name": "L2", "config": {"l2": -0.5}})"},
      {"kernel_constraint", R"({"class_name": "MaxNorm", "config": {"max_value": -2}})"},
  };
  const char* expected[] = {"RandomNormal stddev must be > 0, got -1", "VarianceScaling scale must be > 0, got 0",
                            "L2 l2 must be >= 0, got -0.5", "MaxNorm max_value must be > 0, got -2"};
  for (size_t i = 0; i < std::size(cases); ++i) {
    absl::Status status = ReadDenseWith(cases[i].first, Json::parse(cases[i].second));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << cases[i].second;
    EXPECT_THAT(status.message(), HasSubstr(expected[i]));
    EXPECT_THAT(status.message(), HasSubstr(cases[i].first));
  }
  // The C++ API checks the same ranges when the layer is built.
  nn::Sequential model({nn::Dense(2, {.kernel_initializer = RandomNormal(0, -1), .input_shape = Shape{3}})});
  EXPECT_THAT(model.Compile({.loss = "mse"}).message(), HasSubstr("RandomNormal stddev must be > 0, got -1"));
}

TEST(RegistryTest, WrongJsonTypesAreErrorsNotExceptions) {
  const std::pair<const char*, const char*> cases[] = {
      {"kernel_initializer", "5"},
      {"kernel_initializer", "null"},
      {"kernel_initializer", R"({"class_name": 5})"},
      {"kernel_initializer", R"({"class_name": "Constant", "config": []})"},
      {"kernel_initializer", R"({"class_name": "RandomNormal", "config": {"stddev": "big"}})"},
      {"kernel_initializer", R"({"class_name": "RandomNormal", "config": {"seed": -1}})"},
      {"kernel_initializer", R"({"class_name": "RandomNormal", "config": {"seed": 1.5}})"},
      {"kernel_initializer", R"({"class_name": "VarianceScaling", "config": {"mode": "fan_sideways"}})"},
      {"kernel_initializer", R"({"class_name": "VarianceScaling", "config": {"mode": 1}})"},
      {"kernel_initializer", R"({"class_name": "Zeros", "config": {"value": 1}})"},
      {"kernel_regularizer", R"({"class_name": "L1", "config": {"l1": "x"}})"},
      {"kernel_regularizer", R"({"l1": [1]})"},
      {"kernel_regularizer", R"("l3")"},
      {"kernel_constraint", R"({"class_name": "MaxNorm", "config": {"axis": 1.5}})"},
      {"kernel_constraint", R"({"class_name": "MaxNorm", "config": {"axis": 9999999999}})"},
      {"kernel_constraint", "[]"},
  };
  for (const auto& [field, value] : cases) {
    SCOPED_TRACE(value);
    absl::Status status = ReadDenseWith(field, Json::parse(value));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(field));
  }
}

// Files written before these were described hold names and the bare
// regularizer and constraint fields; they read as the same components.
TEST(RegistryTest, OldConfigFormsStillRead) {
  const Json old = Json::parse(R"({"units": 2, "kernel_initializer": "he_normal", "bias_initializer": "ones",
      "kernel_regularizer": {"l1": 0.0, "l2": 0.01}, "kernel_constraint": {"max_value": 1.5, "axis": 1}})");
  auto layer = nn::LayerFromJson({{"class_name", "Dense"}, {"config", old}});
  ASSERT_TRUE(layer.ok()) << layer.status();
  const Json now = (*layer)->Config();
  EXPECT_EQ(now["kernel_initializer"], nn::InitializerToJson(HeNormal()));
  EXPECT_EQ(now["bias_initializer"], nn::InitializerToJson(Ones()));
  EXPECT_EQ(now["kernel_regularizer"], nn::RegularizerToJson(optimizers::L2(0.01)));
  EXPECT_EQ(now["kernel_constraint"], nn::ConstraintToJson(optimizers::MaxNorm{.max_value = 1.5, .axis = 1}));
}

// ---------------------------------------------------------------- optimizers, schedules

std::string CompileJson(const nn::CompileOptions& options) {
  return nn::ModelConfigToJson({.layers = {nn::Dense(2, {.input_shape = Shape{3}})}, .compile = options}).value();
}

// Keras 3's optimizers.get: the class name in any case, with its defaults.
TEST(RegistryTest, EveryOptimizerIsFoundByItsKerasNameWithKerasDefaults) {
  for (const optimizers::Optimizer& optimizer : EveryAlternative<optimizers::Optimizer>()) {
    const std::string name = optimizers::OptimizerName(optimizer);
    for (const std::string& spelling : {absl::AsciiStrToLower(name), name, absl::AsciiStrToUpper(name)}) {
      SCOPED_TRACE(spelling);
      absl::StatusOr<optimizers::Optimizer> found = optimizers::OptimizerFromName(spelling);
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(nn::DescribedToJson(*found), nn::DescribedToJson(optimizer));
      const nn::CompileOptions options{.optimizer = spelling.c_str()};
      EXPECT_TRUE(options.optimizer.status().ok());
      EXPECT_EQ(options.optimizer.index(), optimizer.index());
    }
  }
  // The names a Keras user types, with a few Keras 3 defaults spelled out.
  EXPECT_EQ(std::get<optimizers::RMSprop>(*optimizers::OptimizerFromName("rmsprop")).rho, 0.9);
  EXPECT_EQ(std::get<optimizers::AdamW>(*optimizers::OptimizerFromName("adamw")).weight_decay, 0.004);
  EXPECT_EQ(std::get<optimizers::Nadam>(*optimizers::OptimizerFromName("nadam")).schedule_decay, 1.0);
  EXPECT_EQ(std::get<optimizers::SGD>(*optimizers::OptimizerFromName("sgd")).learning_rate, 0.01);
  EXPECT_EQ(std::get<optimizers::Adam>(*optimizers::OptimizerFromName("adam")).epsilon, 1e-7);

  absl::StatusOr<optimizers::Optimizer> unknown = optimizers::OptimizerFromName("adadelta");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& name : VariantNames<optimizers::Optimizer>()) {
    EXPECT_THAT(unknown.status().message(), HasSubstr(absl::AsciiStrToLower(name)));
  }
  // Compile takes the name, and refuses a typo with the same message.
  nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
  ASSERT_TRUE(model.Compile({.optimizer = "adam"}).ok());
  EXPECT_TRUE(std::holds_alternative<optimizers::Adam>(model.compile_options()->optimizer));
  absl::Status typo = model.Compile({.optimizer = "adamm"});
  EXPECT_EQ(typo.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(typo.message(), HasSubstr("unknown optimizer 'adamm'; valid names"));
  EXPECT_THAT(typo.message(), HasSubstr("rmsprop"));
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
