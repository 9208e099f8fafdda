// Functional models in Keras files (nn/keras.h, nn/keras_config.h): the
// per-output compile forms (loss, loss_weights and metrics as lists in
// output order or dicts keyed by output name) written, read back and
// trained on identically; the forms Keras 3 and tf.keras 2 write, and the
// errors for a wrong count, an unknown output name or a wrong type. Then
// what real Keras-saved functional files hold, in files gradflow writes
// (or, for tf.keras 2's layout, builds here with libhdf5): InputLayer weight
// groups, Keras's layer order, recorded call kwargs, tf.keras 2.13's
// optimizer weight names, a wholly frozen model.

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "core/hdf5.h"
#include "core/status.h"
#include "core/zip_archive.h"
#include "nn/dropout_layers.h"
#include "nn/functional.h"
#include "nn/keras.h"
#include "nn/keras_config.h"
#include "nn/layer_graph_json.h"
#include "nn/layers.h"
#include "nn/model_config.h"
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

// x -> a (an output); x -> b -> c (an output). Keras 3 lists the layers by
// depth: b before a, so b's weights are the file's "dense" group.
absl::StatusOr<nn::Model> BranchesOfTwoDepths() {
  nn::KerasTensor x = nn::Input({4}, {.name = "x"});
  nn::KerasTensor a = nn::Dense(2, {.name = "a"})(x);
  nn::KerasTensor c = nn::Dense(1, {.name = "c"})(nn::Dense(3, {.name = "b"})(x));
  return nn::Model::Create({x}, {a, c}, "branches");
}

absl::StatusOr<std::string> ZipEntryOf(const std::string& path, const std::string& entry) {
  absl::StatusOr<ZipReader> zip = ZipReader::Open(path);
  if (!zip.ok()) return zip.status();
  return zip->Read(entry, 1 << 24);
}

TEST(KerasFunctionalTest, LayersAndWeightGroupsAreWrittenInKerasOrder) {
  absl::StatusOr<nn::Model> model = BranchesOfTwoDepths();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile({.loss = "mse", .optimizer = "adam"}).ok());
  const Tensor x = Filled({kRows, 4}, 0.5);
  const std::vector<Tensor> want = *model->PredictOutputs({x});
  const std::string dir = testing_util::TempDir("keras_functional");
  ASSERT_TRUE(model->Save(dir + "/branches.keras").ok());
  absl::StatusOr<std::string> config = ZipEntryOf(dir + "/branches.keras", "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> order;
  const Json written = Json::parse(*config);
  for (const Json& layer : written["config"]["layers"]) order.push_back(layer["name"]);
  EXPECT_EQ(order, (std::vector<std::string>{"x", "b", "a", "c"}));
  absl::StatusOr<std::string> image = ZipEntryOf(dir + "/branches.keras", "model.weights.h5");
  ASSERT_TRUE(image.ok()) << image.status();
  absl::StatusOr<h5::File> weights = h5::File::OpenImage(*image, "model.weights.h5");
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<h5::Group> dense = weights->Root().OpenGroup("layers/dense/vars");
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_EQ(dense->ReadStringAttribute("name").value_or(""), "b");
  EXPECT_TRUE(dense->ReadFloat("0", Shape{4, 3}).ok());
  // Keras 3 saves the InputLayer too, as a group without weights; the loader takes it.
  EXPECT_TRUE(weights->Root().Has("layers/input_layer/vars"));
  for (const char* file : {"branches.keras", "branches.h5"}) {
    ASSERT_TRUE(model->Save(dir + "/" + file).ok()) << file;
    absl::StatusOr<nn::Model> loaded = nn::LoadKerasModel(dir + "/" + file);
    ASSERT_TRUE(loaded.ok()) << file << ": " << loaded.status();
    const std::vector<Tensor> got = *loaded->PredictOutputs({x});
    for (size_t k = 0; k < want.size(); ++k) {
      for (int64_t i = 0; i < want[k].num_elements(); ++i) {
        ASSERT_EQ(got[k].data<float>()[i], want[k].data<float>()[i]) << file << " output " << k;
      }
    }
  }
  absl::StatusOr<h5::File> h5 = h5::File::Open(dir + "/branches.h5");
  ASSERT_TRUE(h5.ok()) << h5.status();
  absl::StatusOr<h5::Group> model_weights = h5->Root().OpenGroup("model_weights");
  ASSERT_TRUE(model_weights.ok());
  EXPECT_EQ(model_weights->ReadStringListAttribute("layer_names").value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"x", "b", "a", "c"}));
}

// Keras 3 records Dropout's training (false, its default) and
// BatchNormalization's mask (null) in each call of a functional config.
TEST(KerasFunctionalTest, RecordedCallKwargsOfKeras3AreRead) {
  nn::KerasTensor x = nn::Input({4}, {.name = "x"});
  nn::LayerPtr drop = nn::Dropout(0.5);
  drop->set_name("drop");
  nn::KerasTensor y = nn::Dense(1, {.name = "out"})(drop(nn::Dense(3, {.name = "d"})(x)));
  absl::StatusOr<nn::Model> model = nn::Model::Create({x}, {y});
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile({.loss = "mse"}).ok());
  absl::StatusOr<Json> written = nn::keras_config::WriteModel(*model, /*legacy_h5=*/false);
  ASSERT_TRUE(written.ok()) << written.status();
  Json& layers = (*written)["config"]["layers"];
  auto node_of = [&](const std::string& name) -> Json& {
    for (Json& layer : layers) {
      if (layer["name"] == name) return layer["inbound_nodes"][0];
    }
    ADD_FAILURE() << name;
    return layers;
  };
  node_of("drop")["kwargs"] = {{"training", false}};
  node_of("d")["kwargs"] = {{"mask", nullptr}};
  absl::StatusOr<nn::ModelConfig> read = nn::keras_config::ReadModel(*written, "model config", nullptr);
  EXPECT_TRUE(read.ok()) << read.status();
  node_of("d")["kwargs"] = {{"scale", 2}};
  read = nn::keras_config::ReadModel(*written, "model config", nullptr);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("inbound_nodes[0].kwargs"));
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("'scale'"));
  // tf.keras 2 keeps a training the code passed (it pins the layer's mode): refused.
  node_of("d") = Json::parse(R"([["drop", 0, 0, {"training": true}]])");
  read = nn::keras_config::ReadModel(*written, "model config", nullptr);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("'training'"));
}

Tensor Values(Shape shape, float start) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = start + 0.01f * static_cast<float>(i);
  return t;
}

// A tf.keras 2.13 functional .h5, as that version lays it out (InputLayer in
// layer_names with no weights, tf.keras 2's inbound nodes, the optimizer's
// weights under its name scope: "Adam/m/dense/kernel:0").
absl::Status WriteTfKeras213File(const std::string& path) {
  GF_ASSIGN_OR_RETURN(h5::File file, h5::File::CreateInMemory("tf213.h5"));
  h5::Group root = file.Root();
  const Json model = Json::parse(R"({"class_name": "Functional", "config": {"name": "model", "trainable": true,
      "layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32",
                  "sparse": false, "ragged": false, "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
                 {"class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": "float32",
                  "units": 2, "activation": "linear", "use_bias": true}, "name": "dense",
                  "inbound_nodes": [[["input_1", 0, 0, {}]]]}],
      "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}})");
  const Json training = Json::parse(R"({"loss": "mse", "metrics": null, "weighted_metrics": null, "loss_weights": null,
      "optimizer_config": {"class_name": "Custom>Adam", "config": {"name": "Adam", "is_legacy_optimizer": false,
                           "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07}}})");
  for (auto [key, value] : {std::pair{"keras_version", "2.13.1"}, std::pair{"backend", "tensorflow"}}) {
    GF_RETURN_IF_ERROR(root.WriteStringAttribute(key, value));
  }
  GF_RETURN_IF_ERROR(root.WriteStringAttribute("model_config", model.dump()));
  GF_RETURN_IF_ERROR(root.WriteStringAttribute("training_config", training.dump()));
  GF_ASSIGN_OR_RETURN(h5::Group weights, root.CreateGroup("model_weights"));
  GF_RETURN_IF_ERROR(weights.WriteStringListAttribute("layer_names", {"input_1", "dense"}));
  GF_ASSIGN_OR_RETURN(h5::Group input, weights.CreateGroup("input_1"));
  GF_RETURN_IF_ERROR(input.WriteStringListAttribute("weight_names", {}));
  GF_ASSIGN_OR_RETURN(h5::Group dense, weights.CreateGroup("dense"));
  GF_RETURN_IF_ERROR(dense.WriteStringListAttribute("weight_names", {"dense/kernel:0", "dense/bias:0"}));
  GF_ASSIGN_OR_RETURN(h5::Group vars, dense.CreateGroup("dense"));
  GF_RETURN_IF_ERROR(vars.WriteFloat("kernel:0", Values({3, 2}, 0.1f)));
  GF_RETURN_IF_ERROR(vars.WriteFloat("bias:0", Values({2}, 0.2f)));
  GF_ASSIGN_OR_RETURN(h5::Group optimizer, root.CreateGroup("optimizer_weights"));
  GF_RETURN_IF_ERROR(optimizer.WriteStringListAttribute(
      "weight_names", {"iteration:0", "Adam/m/dense/kernel:0", "Adam/v/dense/kernel:0", "Adam/m/dense/bias:0",
                       "Adam/v/dense/bias:0"}));
  GF_RETURN_IF_ERROR(optimizer.WriteIntegerScalar("iteration:0", 5));
  GF_ASSIGN_OR_RETURN(h5::Group adam, optimizer.CreateGroup("Adam"));
  for (const char* slot : {"m", "v"}) {
    GF_ASSIGN_OR_RETURN(h5::Group s, adam.CreateGroup(slot));
    GF_ASSIGN_OR_RETURN(h5::Group d, s.CreateGroup("dense"));
    GF_RETURN_IF_ERROR(d.WriteFloat("kernel:0", Values({3, 2}, slot[0] == 'm' ? 0.3f : 0.4f)));
    GF_RETURN_IF_ERROR(d.WriteFloat("bias:0", Values({2}, 0.5f)));
  }
  GF_ASSIGN_OR_RETURN(std::string bytes, file.Image());
  testing_util::WriteBytes(path, bytes);
  return absl::OkStatus();
}

TEST(KerasFunctionalTest, ReadsTfKeras213OptimizerWeightNames) {
  const std::string path = testing_util::TempDir("keras_functional") + "/tf213.h5";
  ASSERT_TRUE(WriteTfKeras213File(path).ok());
  nn::KerasLoadReport report;
  absl::StatusOr<nn::Model> model = nn::LoadKerasModel(path, {}, &report);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(report.optimizer_state_loaded);
  absl::StatusOr<Tensor> m = model->session()->variables().Get("dense/kernel/m");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FLOAT_EQ(m->data<float>()[1], 0.31f);
}

TEST(KerasFunctionalTest, AWhollyFrozenCompiledModelSaysHowToLoadIt) {
  absl::StatusOr<nn::Model> model = BranchesOfTwoDepths();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile({.loss = "mse", .optimizer = "adam"}).ok());
  const std::string path = testing_util::TempDir("keras_functional") + "/frozen.keras";
  ASSERT_TRUE(model->Save(path).ok());
  // As Keras saves a model after `model.trainable = False`.
  std::vector<ZipEntry> entries;
  for (const char* name : {"metadata.json", "config.json", "model.weights.h5"}) {
    absl::StatusOr<std::string> data = ZipEntryOf(path, name);
    ASSERT_TRUE(data.ok()) << data.status();
    entries.push_back({name, *data});
  }
  Json config = Json::parse(entries[1].data);
  config["config"]["trainable"] = false;
  entries[1].data = config.dump();
  absl::StatusOr<std::string> bytes = ZipBytes(entries);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  testing_util::WriteBytes(path, *bytes);
  absl::StatusOr<nn::Model> loaded = nn::LoadKerasModel(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("every layer is frozen"));
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(".compile = false"));
  loaded = nn::LoadKerasModel(path, {.compile = false});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const nn::LayerPtr& layer : loaded->layers()) layer->trainable = true;
  EXPECT_TRUE(loaded->Compile({.loss = "mse"}).ok());
}

// ------------------------------------------------------------ small gaps

TEST(KerasFunctionalTest, AnIntegerInputKeepsItsDtype) {
  nn::KerasTensor ids = nn::Input({3}, {.name = "ids", .dtype = DType::kI32});
  nn::KerasTensor x = nn::Input({2}, {.name = "x"});
  nn::KerasTensor y = nn::Dense(1, {.name = "out"})(x);
  absl::StatusOr<nn::Model> model = nn::Model::Create({x}, {y});
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile({.loss = "mse"}).ok());
  // The dtype travels in each writer's InputLayer entry and back.
  for (const TensorType& type : {TensorType{DType::kI32, Shape{-1, 3}}, TensorType{DType::kF32, Shape{-1, 2}}}) {
    const Json entry = nn::InputLayerJson("ids", type, true);
    EXPECT_EQ(entry["config"]["dtype"], type.dtype == DType::kI32 ? "int32" : "float32");
    absl::Status status;
    nn::ConfigReader r(entry, "entry", status);
    DType read = DType::kF32;
    EXPECT_EQ(nn::ReadInputLayer(r, &read), std::optional<Shape>(Shape{type.shape[1]}));
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_EQ(read, type.dtype);
  }
  absl::StatusOr<Json> written = nn::keras_config::WriteModel(*model, false);
  ASSERT_TRUE(written.ok()) << written.status();
  (*written)["config"]["layers"][0]["config"]["dtype"] = "int32";  // x as Keras writes an int32 Input
  absl::StatusOr<nn::ModelConfig> read = nn::keras_config::ReadModel(*written, "model config", nullptr);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->graph->input_types[0].dtype, DType::kI32);
  static_cast<void>(ids);
}

absl::StatusOr<nn::LayerPtr> DenseWithActivation(const Json& activation) {
  return nn::LayerFromJson({{"class_name", "Dense"}, {"config", {{"units", 2}, {"activation", activation}}}}, "layer");
}

TEST(KerasFunctionalTest, ANullActivationIsLinear) {
  absl::StatusOr<nn::LayerPtr> dense = DenseWithActivation(nullptr);
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_EQ((*dense)->Config()["activation"], "linear");
}

// A user layer that describes no settings.
class Opaque : public nn::Layer {
 public:
  std::string type() const override { return "Opaque"; }
};

TEST(KerasFunctionalTest, ALayerWithoutConfigSaysWhatToDo) {
  absl::StatusOr<Json> json = nn::LayerToJson(Opaque());
  ASSERT_FALSE(json.ok());
  for (const char* part : {"Config() returns null", "override Layer::Config()", "nn::RegisterLayerType", "SaveWeights"}) {
    EXPECT_THAT(std::string(json.status().message()), HasSubstr(part));
  }
}

}  // namespace
}  // namespace gradflow
