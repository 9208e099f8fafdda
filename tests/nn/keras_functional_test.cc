// Functional models in Keras files (nn/keras.h, nn/keras_config.h): the
// per-output compile forms (loss, loss_weights and metrics as lists in
// output order or dicts keyed by output name) written, read back and
// trained on identically; the forms Keras 3 and tf.keras 2 write, and the
// errors for a wrong count, an unknown output name or a wrong type.

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "nn/functional.h"
#include "nn/keras.h"
#include "nn/keras_config.h"
#include "nn/layers.h"
#include "nn/merge_layers.h"
#include "nn/model.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

Tensor Filled(Shape shape, double phase) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(std::sin(0.7 * i + phase));
  return t;
}

// wide [3] ---------------------------------------------.
// deep [4] -> shared -> h1 -> shared -> h2 -> add(h1, h2) -> concat -> main [1]
//                                        `-> aux [1]
absl::StatusOr<nn::Model> WideAndDeep() {
  nn::KerasTensor wide = nn::Input({3}, {.name = "wide"});
  nn::KerasTensor deep = nn::Input({4}, {.name = "deep"});
  nn::LayerPtr shared = nn::Dense(4, {.activation = "tanh", .name = "shared"});
  nn::KerasTensor h1 = shared(deep);
  nn::KerasTensor h2 = shared(h1);
  nn::KerasTensor main = nn::Dense(1, {.name = "main"})(nn::Concatenate()({wide, nn::Add()({h1, h2})}));
  nn::KerasTensor aux = nn::Dense(1, {.name = "aux"})(h2);
  return nn::Model::Create({wide, deep}, {main, aux}, "wide_and_deep");
}

// Each output its own loss, weight and metrics.
nn::CompileOptions PerOutputOptions() {
  return {.optimizer = optimizers::Adam{.learning_rate = 0.01},
          .outputs = {{.loss = "mse", .loss_weight = 0.9, .metrics = std::vector<nn::Metric>{"mae"}},
                      {.loss_config = losses::Huber{.delta = 0.5}, .loss_weight = 0.1,
                       .metrics = std::vector<nn::Metric>{"mse", "mae"}}}};
}

constexpr int64_t kRows = 16;

struct Data {
  nn::TensorList x = {Filled({kRows, 3}, 0.1), Filled({kRows, 4}, 0.2)};
  nn::TensorList y = {Filled({kRows, 1}, 0.3), Filled({kRows, 1}, 0.4)};
};

nn::History Train(nn::Model& model, int epochs) {
  Data d;
  absl::StatusOr<nn::History> h = model.Fit(d.x, d.y, {.epochs = epochs, .batch_size = 4, .shuffle = false, .verbose = 0});
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *h : nn::History{};
}

TEST(KerasFunctionalTest, PerOutputOptionsSavedAsKerasTrainOnIdentically) {
  for (const char* file : {"model.keras", "model.h5"}) {
    absl::StatusOr<nn::Model> model = WideAndDeep();
    ASSERT_TRUE(model.ok()) << model.status();
    ASSERT_TRUE(model->Compile(PerOutputOptions()).ok());
    Train(*model, 2);
    const std::string path = testing_util::TempDir("keras_functional") + "/" + file;
    absl::Status saved = model->Save(path);
    ASSERT_TRUE(saved.ok()) << file << ": " << saved;
    absl::StatusOr<nn::Model> loaded = nn::LoadKerasModel(path);
    ASSERT_TRUE(loaded.ok()) << file << ": " << loaded.status();
    const nn::CompileOptions& read = *loaded->compile_options();
    ASSERT_EQ(read.outputs.size(), 2u) << file;
    EXPECT_EQ(read.outputs[0].loss_weight, 0.9) << file;
    EXPECT_EQ(std::get<losses::Huber>(*read.outputs[1].loss_config).delta, 0.5) << file;
    const nn::History want = Train(*model, 3), got = Train(*loaded, 3);
    for (const char* name : {"loss", "main_loss", "aux_loss", "main_mae", "aux_mse", "aux_mae"}) {
      ASSERT_EQ(got.history.count(name), 1u) << file << " " << name;
      EXPECT_EQ(got.history.at(name), want.history.at(name)) << file << " " << name;
    }
    EXPECT_EQ(got.history.count("main_mse"), 0u) << file;
  }
}

TEST(KerasFunctionalTest, WritesLossesWeightsAndMetricsAsListsInOutputOrder) {
  absl::StatusOr<nn::Model> model = WideAndDeep();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(PerOutputOptions()).ok());
  for (bool legacy_h5 : {false, true}) {
    absl::StatusOr<Json> compile = nn::keras_config::WriteCompile(*model, legacy_h5);
    ASSERT_TRUE(compile.ok()) << compile.status();
    EXPECT_EQ((*compile)["loss"][0], "mean_squared_error");
    EXPECT_EQ((*compile)["loss"][1]["class_name"], "Huber");
    EXPECT_EQ((*compile)["loss_weights"], Json::parse("[0.9, 0.1]"));
    EXPECT_EQ((*compile)["metrics"], Json::parse(R"([["mae"], ["mse", "mae"]])"));
  }
}

// Keras 3 reads a flat metrics list of a model with several outputs as one
// entry per output, so the metrics every output shares are written per output.
TEST(KerasFunctionalTest, SharedMetricsOfSeveralOutputsAreWrittenPerOutput) {
  absl::StatusOr<nn::Model> model = WideAndDeep();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile({.loss = "mse", .optimizer = "sgd", .metrics = {"mae", "mse"}}).ok());
  absl::StatusOr<Json> compile = nn::keras_config::WriteCompile(*model, false);
  ASSERT_TRUE(compile.ok()) << compile.status();
  EXPECT_EQ((*compile)["loss"], "mean_squared_error");
  EXPECT_TRUE((*compile)["loss_weights"].is_null());
  EXPECT_EQ((*compile)["metrics"], Json::parse(R"([["mae", "mse"], ["mae", "mse"]])"));
  const std::string path = testing_util::TempDir("keras_functional") + "/shared.keras";
  ASSERT_TRUE(model->Save(path).ok());
  absl::StatusOr<nn::Model> loaded = nn::LoadKerasModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const nn::History got = Train(*loaded, 1);
  for (const char* name : {"main_mae", "main_mse", "aux_mae", "aux_mse"}) EXPECT_EQ(got.history.count(name), 1u) << name;
}

absl::StatusOr<nn::CompileOptions> Read(const std::string& text, const std::string& version = "3.10.0") {
  return nn::keras_config::ReadCompile(Json::parse(text), version, {"main", "aux"}, "compile config", nullptr);
}

constexpr char kSgd[] = R"("optimizer": {"class_name": "SGD", "config": {}})";

TEST(KerasFunctionalTest, ReadsDictsKeyedByOutputName) {
  absl::StatusOr<nn::CompileOptions> o = Read(absl::StrCat(R"({"loss": {"aux": "huber", "main": "mse"},
      "loss_weights": {"main": 2.0}, "metrics": {"aux": ["mse"]}, )", kSgd, "}"));
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->outputs.size(), 2u);
  EXPECT_EQ(*o->outputs[0].loss, "mse");
  EXPECT_EQ(*o->outputs[1].loss, "huber");
  EXPECT_EQ(o->outputs[0].loss_weight, 2.0);
  EXPECT_EQ(o->outputs[1].loss_weight, 1.0);  // not in the dict
  EXPECT_TRUE(o->outputs[0].metrics->empty());  // a metrics dict gives an output it leaves out none
  ASSERT_EQ(o->outputs[1].metrics->size(), 1u);
  EXPECT_EQ((*o->outputs[1].metrics)[0].name, "mse");
}

TEST(KerasFunctionalTest, AFlatMetricsListIsPerOutputInKeras3AndForEveryOutputInTfKeras2) {
  const std::string text = absl::StrCat(R"({"loss": "mse", "metrics": ["mae", "mse"], )", kSgd, "}");
  absl::StatusOr<nn::CompileOptions> keras3 = Read(text, "3.10.0");
  ASSERT_TRUE(keras3.ok()) << keras3.status();
  ASSERT_EQ(keras3->outputs.size(), 2u);
  EXPECT_EQ((*keras3->outputs[0].metrics)[0].name, "mae");
  EXPECT_EQ((*keras3->outputs[1].metrics)[0].name, "mse");
  absl::StatusOr<nn::CompileOptions> tf2 = Read(text, "2.12.0");
  ASSERT_TRUE(tf2.ok()) << tf2.status();
  EXPECT_TRUE(tf2->outputs.empty());
  EXPECT_EQ(tf2->metrics.size(), 2u);
  // tf.keras 2's per-output form: a list holding lists.
  absl::StatusOr<nn::CompileOptions> nested =
      Read(absl::StrCat(R"({"loss": ["mse", "huber"], "loss_weights": [1.0, 0.5], "metrics": [["mae"], []], )", kSgd,
                        "}"),
           "2.12.0");
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(nested->outputs[1].loss_weight, 0.5);
  EXPECT_TRUE(nested->outputs[1].metrics->empty());
}

TEST(KerasFunctionalTest, WrongPerOutputFormsAreErrorsNamingTheKey) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {R"("loss": ["mse"])", {"'loss' lists 1 entries", "2 outputs (main, aux)"}},
      {R"("loss": {"main": "mse", "side": "mse"})", {"'loss' names output 'side'", "(main, aux)"}},
      {R"("loss": {"main": "mse"})", {"'loss' has no entry for output 'aux'"}},
      {R"("loss": ["mse", null])", {"'loss[1]' is null", "loss weight of 0"}},
      {R"("loss": ["mse", "msee"])", {"'loss[1]'", "msee"}},
      {R"("loss": "mse", "loss_weights": 0.5)", {"'loss_weights' is number 0.5", "a dict keyed by output name"}},
      {R"("loss": "mse", "loss_weights": {"aux": "heavy"})", {"'loss_weights.aux'"}},
      {R"("loss": "mse", "loss_weights": [1, -1])", {"'loss_weights[1]' is -1", ">= 0"}},
      {R"("loss": "mse", "metrics": ["mae", "mse", "mae"])", {"'metrics' lists 3 entries"}},
      {R"("loss": "mse", "metrics": {"aux": ["top_secret"]})", {"compile config.metrics.aux", "top_secret"}},
  };
  for (const auto& [keys, wanted] : cases) {
    absl::StatusOr<nn::CompileOptions> o = Read(absl::StrCat("{", keys, ", ", kSgd, "}"));
    ASSERT_FALSE(o.ok()) << keys;
    for (const std::string& part : wanted) EXPECT_THAT(std::string(o.status().message()), HasSubstr(part)) << keys;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("compile config")) << keys;
  }
}

}  // namespace
}  // namespace gradflow
