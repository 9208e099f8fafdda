// nn/keras.h: the fixtures of every Keras layout load and predict what a
// NumPy forward pass over their weights gives; their optimizer state comes
// back; gradflow's own .keras / .h5 files round-trip bit for bit (weights,
// predictions, resumed training); hostile files give errors naming the problem.

#include "nn/keras.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/npy.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/layers.h"
#include "nn/model_config.h"
#include "nn/normalization.h"
#include "nn/preprocessing.h"
#include "nn/saving.h"
#include "optimizers/optimizers.h"
#include "tests/util/files.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

constexpr char kTestdata[] = "tests/nn/keras/testdata/";

std::string Fixture(const std::string& name) { return absl::StrCat(kTestdata, name); }

void ExpectNear(const Tensor& got, const Tensor& want, double rel) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    EXPECT_NEAR(g, w, rel * std::max(1.0, std::abs(w))) << "element " << i;
  }
}

void ExpectEqual(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.num_bytes()));
}

struct FixtureCase {
  const char* file;
  ModelFormat format;
  bool compiled;
};

class KerasFixtureTest : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(KerasFixtureTest, PredictsTheNumpyForwardPass) {
  KerasLoadReport report;
  absl::StatusOr<Model> model = LoadKerasModel(Fixture(GetParam().file), {}, &report);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(report.format, GetParam().format);
  EXPECT_EQ(model->compiled(), GetParam().compiled);
  if (!model->compiled()) ASSERT_TRUE(model->Compile({}).ok());
  absl::StatusOr<Tensor> x = ReadNpy(Fixture("mlp_x.npy"));
  absl::StatusOr<Tensor> y = ReadNpy(Fixture("mlp_y.npy"));
  ASSERT_TRUE(x.ok() && y.ok());
  absl::StatusOr<Tensor> predicted = model->Predict(*x);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  ExpectNear(*predicted, *y, 1e-5);
}

TEST_P(KerasFixtureTest, RestoresTheOptimizerState) {
  if (!GetParam().compiled) GTEST_SKIP() << "saved without an optimizer";
  KerasLoadReport report;
  absl::StatusOr<Model> model = LoadKerasModel(Fixture(GetParam().file), {}, &report);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(report.optimizer_state_loaded);
  absl::StatusOr<Tensor> step = model->session()->variables().Get(optimizers::kStepName);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(*step->data<int64_t>(), 7);
  // Keras's state is not gradflow's fresh one: slots hold the file's values.
  absl::StatusOr<Tensor> slot = model->session()->variables().Get("dense/kernel/m");
  if (slot.ok()) EXPECT_NE(slot->data<float>()[0], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, KerasFixtureTest,
    ::testing::Values(FixtureCase{"mlp_tf2.h5", ModelFormat::kKerasH5, true},
                      FixtureCase{"mlp_tf212.h5", ModelFormat::kKerasH5, true},
                      FixtureCase{"mlp_tf2_uncompiled.h5", ModelFormat::kKerasH5, false},
                      FixtureCase{"mlp_keras3.h5", ModelFormat::kKerasH5, true},
                      FixtureCase{"mlp.keras", ModelFormat::kKeras, true},
                      FixtureCase{"mlp_sgd.keras", ModelFormat::kKeras, true},
                      FixtureCase{"mlp_uncompiled.keras", ModelFormat::kKeras, false}),
    [](const auto& info) {
      std::string name = info.param.file;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(KerasFixtureTest, LoadModelRecognizesKerasFilesByContent) {
  const std::string copy = testing_util::TempDir("keras_content") + "/model.bin";
  testing_util::WriteBytes(copy, testing_util::ReadBytes(Fixture("mlp.keras")));
  absl::StatusOr<Model> model = LoadModel(copy);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->layers().size(), 8u);
}

TEST(KerasFixtureTest, KerasLayerSettingsArriveInTheLayers) {
  absl::StatusOr<Model> model = LoadKerasModel(Fixture("mlp_tf2.h5"));
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<std::string> types;
  for (const LayerPtr& layer : model->layers()) types.push_back(layer->type());
  // The InputLayer becomes the first layer's input shape.
  EXPECT_EQ(types, (std::vector<std::string>{"Flatten", "Dense", "BatchNormalization", "LeakyReLU", "Dropout",
                                              "Dense", "PReLU", "Dense"}));
  EXPECT_EQ(model->layers()[0]->input_shape(), Shape({4, 4}));
  EXPECT_EQ(model->compile_options()->loss, "sparse_categorical_crossentropy");
  EXPECT_EQ(model->compile_options()->metrics, std::vector<nn::Metric>{"accuracy"});
  EXPECT_TRUE(std::holds_alternative<optimizers::Adam>(model->compile_options()->optimizer));
}

// ------------------------------------------------------------ round trips

Sequential ChapterLikeModel() {
  return Sequential({Flatten(Shape{4, 4}), Dense(8, {.activation = "relu"}), BatchNormalization(), LeakyReLU(0.2),
                     Dropout(0.25), Dense(6, {.activation = "elu"}), PReLU(), Dense(3, {.activation = "softmax"})});
}

struct Data {
  Tensor x, y;
};

Data RandomData(int64_t n) {
  Rng rng(7);
  Data d{Tensor(DType::kF32, Shape{n, 4, 4}), Tensor(DType::kI32, Shape{n})};
  for (float& v : d.x.flat<float>()) v = static_cast<float>(rng.Normal());
  for (int32_t& v : d.y.flat<int32_t>()) v = static_cast<int32_t>(rng.Uniform() * 3) % 3;
  return d;
}

class KerasRoundTripTest : public ::testing::TestWithParam<const char*> {};

TEST_P(KerasRoundTripTest, PredictionsAndResumedTrainingAreBitIdentical) {
  const Data data = RandomData(64);
  Sequential model = ChapterLikeModel();
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{}, .metrics = {"accuracy"}}).ok());
  ASSERT_TRUE(model.Fit(data.x, data.y, {.epochs = 2, .batch_size = 16, .shuffle = false, .verbose = 0}).ok());
  const std::string path = testing_util::TempDir("keras_round_trip") + "/model" + GetParam();
  ASSERT_TRUE(model.Save(path).ok()) << model.Save(path);

  absl::StatusOr<Model> loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectEqual(*loaded->Predict(data.x), *model.Predict(data.x));
  for (Model* m : {static_cast<Model*>(&model), &*loaded}) {
    ASSERT_TRUE(m->Fit(data.x, data.y, {.epochs = 1, .batch_size = 16, .shuffle = false, .verbose = 0}).ok());
  }
  const auto original = *model.GetWeights();
  const auto resumed = *loaded->GetWeights();
  ASSERT_EQ(original.size(), resumed.size());
  for (const auto& [name, value] : original) ExpectEqual(resumed.at(name), value);
}

INSTANTIATE_TEST_SUITE_P(Formats, KerasRoundTripTest, ::testing::Values(".keras", ".h5"),
                         [](const auto& info) { return std::string(info.param + 1); });

// The independent reader (Python: h5py, json, zipfile) finds in gradflow's
// files exactly the layout Keras 3's loaders read.
TEST_P(KerasRoundTripTest, TheIndependentReaderAcceptsTheLayout) {
  const Data data = RandomData(32);
  Sequential model = ChapterLikeModel();
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{}, .metrics = {"accuracy"}}).ok());
  ASSERT_TRUE(model.Fit(data.x, data.y, {.epochs = 1, .batch_size = 16, .verbose = 0}).ok());
  const std::string dir = testing_util::TempDir("keras_layout");
  const std::string path = dir + "/model" + GetParam();
  ASSERT_TRUE(model.Save(path).ok());
  const testing_util::CommandRun checked =
      testing_util::RunCommand("/usr/bin/python3 tests/nn/keras/check_keras_layout.py " + path);
  const std::string& report = checked.output;
  ASSERT_EQ(checked.exit_code, 0) << report;
  // Keras's group names and the optimizer's 2 + 2 x 9 variables (Adam).
  EXPECT_THAT(report, HasSubstr(R"("p_re_lu": [[6]])"));
  EXPECT_THAT(report, HasSubstr(R"("batch_normalization": [[8], [8], [8], [8]])"));
  EXPECT_THAT(report, HasSubstr(R"("optimizer_vars": 20)"));
}

// An adapted Normalization keeps Keras 3's three weights (mean, variance,
// and the count as an integer dataset, as Keras writes it) in both formats,
// and the independent reader accepts the layout.
TEST_P(KerasRoundTripTest, AdaptedNormalizationKeepsItsStatistics) {
  const Tensor x = RandomData(32).x.Reshaped(Shape{32, 16}).value();
  auto norm = Normalization({.input_shape = Shape{16}});
  ASSERT_TRUE(norm->Adapt(x).ok());
  Sequential model({norm, Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  const std::string path = testing_util::TempDir("keras_normalization") + "/model" + GetParam();
  ASSERT_TRUE(model.Save(path).ok());
  auto loaded = LoadKerasModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::map<std::string, Tensor> want = norm->GetWeights(), got = loaded->layers()[0]->GetWeights();
  ASSERT_EQ(got.size(), 3u);
  for (const char* name : {"mean", "variance", "count"}) ExpectEqual(got.at(name), want.at(name));
  EXPECT_EQ(*got.at("count").data<int64_t>(), 32);
  ExpectEqual(*loaded->Predict(x), *model.Predict(x));
  const testing_util::CommandRun checked =
      testing_util::RunCommand("/usr/bin/python3 tests/nn/keras/check_keras_layout.py " + path);
  ASSERT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_THAT(checked.output, HasSubstr("[[16], [16], []]"));  // mean, variance, count
}

// Keras: Dense(4, activation=LeakyReLU(negative_slope=0.2)). The archive's
// config holds the activation as keras.activations.serialize writes a layer
// object; it loads back with the same function, in both formats.
TEST_P(KerasRoundTripTest, ActivationObjectInsideDenseRoundTrips) {
  const Data data = RandomData(16);
  Sequential model({Flatten(Shape{4, 4}), Dense(4, {.activation = LeakyReLU(0.2)}), Dense(3)});
  ASSERT_TRUE(model.Compile({}).ok());
  const std::string path = testing_util::TempDir("keras_activation_object") + "/model" + GetParam();
  ASSERT_TRUE(model.Save(path).ok()) << model.Save(path);
  absl::StatusOr<Model> loaded = LoadKerasModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto config = LayerToJson(*loaded->layers()[1]);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)["config"]["activation"]["class_name"], "LeakyReLU");
  EXPECT_EQ((*config)["config"]["activation"]["config"]["negative_slope"], 0.2);
  ExpectEqual(*loaded->Predict(data.x), *model.Predict(data.x));
  const testing_util::CommandRun checked =
      testing_util::RunCommand("/usr/bin/python3 tests/nn/keras/check_keras_layout.py " + path);
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

TEST(KerasExportTest, RefusesActivationObjectsKerasHasNot) {
  Sequential model({Flatten(Shape{4}), Dense(2, {.activation = RReLU()})});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  const std::string path = testing_util::TempDir("keras_refuse_activation") + "/model.keras";
  absl::Status saved = model.Save(path);
  EXPECT_THAT(std::string(saved.message()),
              HasSubstr("layer 'dense' (Dense): its 'activation' is a RReLU layer, which has no Keras class"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// Debian's libhdf5 is not thread-safe: gradflow's one lock makes loads and
// saves from several threads safe (and TSan-clean), each as if alone.
TEST(KerasThreadsTest, LoadsAndSavesFromTwoThreadsAtOnce) {
  const std::string dir = testing_util::TempDir("keras_threads");
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<Model> model = LoadKerasModel(Fixture(t % 2 ? "mlp.keras" : "mlp_tf2.h5"));
      results[t] = model.ok() ? model->Save(absl::StrCat(dir, "/copy", t, t % 2 ? ".h5" : ".keras")) : model.status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  for (int t = 0; t < 4; ++t) {
    EXPECT_TRUE(LoadModel(absl::StrCat(dir, "/copy", t, t % 2 ? ".h5" : ".keras")).ok());
  }
}

TEST(KerasExportTest, RefusesLayersKerasHasNot) {
  Sequential model({Flatten(Shape{4}), RReLU(), Dense(2)});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  const std::string path = testing_util::TempDir("keras_refuse") + "/model.keras";
  absl::Status saved = model.Save(path);
  EXPECT_THAT(std::string(saved.message()), HasSubstr("has no Keras class"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// ------------------------------------------------------------ hostile files

struct HostileCase {
  const char* file;
  const char* message;  // a part of the error
};

class KerasHostileTest : public ::testing::TestWithParam<HostileCase> {};

TEST_P(KerasHostileTest, IsAnErrorNamingTheProblem) {
  absl::StatusOr<Model> model = LoadKerasModel(Fixture(GetParam().file));
  ASSERT_FALSE(model.ok());
  const std::string message(model.status().message());
  EXPECT_THAT(message, HasSubstr(GetParam().file));
  EXPECT_THAT(message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Files, KerasHostileTest,
    ::testing::Values(HostileCase{"hostile_kernel_int32.h5", "is int32 [16, 8], expected float32 [16, 8]"},
                      HostileCase{"hostile_kernel_float16.h5", "is float16 [16, 8], expected float32"},
                      HostileCase{"hostile_kernel_string.h5", "is string"},
                      HostileCase{"hostile_kernel_shape.h5", "is float32 [16, 7], expected float32 [16, 8]"},
                      HostileCase{"hostile_kernel_shape.keras", "/layers/dense/vars/0 is float32 [16, 7]"},
                      HostileCase{"hostile_no_model_weights.h5", "/model_weights is missing"},
                      HostileCase{"hostile_missing_layer_group.h5", "/model_weights/dense_1 is missing"},
                      HostileCase{"hostile_missing_vars.keras", "has no /layers/batch_normalization/vars"},
                      HostileCase{"hostile_missing_dataset.h5", "dense/kernel:0 is missing"},
                      HostileCase{"hostile_unstored_kernel.h5", "not stored in the file"},
                      HostileCase{"hostile_huge_dataset.h5", "not stored in the file"},
                      HostileCase{"hostile_config_not_json.h5", "model_config"},
                      HostileCase{"hostile_config_deep.h5", "deeper"},
                      HostileCase{"hostile_unknown_layer.h5", "unknown layer type 'MysteryActivation'"},
                      HostileCase{"hostile_bn_renorm.h5", "gradflow has no batch renormalization"},
                      HostileCase{"hostile_zip_bomb.keras", "declares 1000000001 bytes"},
                      HostileCase{"hostile_traversal_dotdot.keras", "climbs out of the archive"},
                      HostileCase{"hostile_traversal_abs.keras", "is an absolute path"},
                      HostileCase{"hostile_duplicate_entry.keras", "two entries of the same name"},
                      HostileCase{"hostile_no_config.keras", "has no entry 'config.json'"},
                      HostileCase{"hostile_weights_not_hdf5.keras", "is not an HDF5 file"}),
    [](const auto& info) {
      std::string name = info.param.file;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

}  // namespace
}  // namespace gradflow::nn
