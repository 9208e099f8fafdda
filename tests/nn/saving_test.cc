// Tests of nn/saving.cc: Save -> LoadModel round trips (bit for bit), the
// optimizer state, weights-only files and loading by name, a file written by
// an independent Python writer, numpy reading a gradflow model, damaged and
// hostile files, and a save killed mid-write at the model level.

#include "nn/saving.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"
#include "tests/util/numpy_reader.h"
#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "nn/normalization.h"

namespace gradflow {
namespace {

using testing_util::TempDir;
using testing_util::ReadBytes;
using testing_util::WriteBytes;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;

bool SameBits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.num_bytes()) == 0;
}

// Three 6-feature Gaussian blobs shaped [N, 2, 3] (for a Flatten input).
struct Data {
  Tensor x, y;
};

Data MakeData(int64_t n = 240, uint64_t seed = 3) {
  Data d{Tensor(DType::kF32, {n, 2, 3}), Tensor(DType::kI32, {n})};
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 3);
    d.y.data<int32_t>()[i] = label;
    for (int k = 0; k < 6; ++k) {
      d.x.data<float>()[6 * i + k] = static_cast<float>((k % 3 == label ? 2.0 : 0.0) + 0.5 * rng.Normal());
    }
  }
  return d;
}

// Every kind of layer with saved state: batch norm statistics, a PReLU slope,
// regularized and constrained kernels, dropout layers.
nn::Sequential MixedModel() {
  return nn::Sequential({nn::Flatten(Shape{2, 3}),
                         nn::BatchNormalization(),
                         nn::Dense(8, {.activation = "elu",
                                       .kernel_initializer = "he_normal",
                                       .kernel_regularizer = nn::L2(0.001),
                                       .kernel_constraint = nn::MaxNorm{.max_value = 2.0}}),
                         nn::Dropout(0.1),
                         nn::PReLU(),
                         nn::Dense(4, {.activation = "selu", .kernel_initializer = "lecun_normal"}),
                         nn::AlphaDropout(0.05),
                         nn::LeakyReLU(),
                         nn::Dense(3, {.activation = "softmax"})},
                        "mixed");
}

nn::CompileOptions MixedCompileOptions() {
  return {.optimizer = optimizers::Nadam{.learning_rate = 0.01},
          .metrics = {"accuracy"},
          .seed = 11,
          .clip = optimizers::ClipByGlobalNorm(5.0)};
}

// A trained MixedModel saved to `path`.
nn::Sequential TrainedMixedModel(const std::string& path, bool include_optimizer = true) {
  Data data = MakeData();
  nn::Sequential model = MixedModel();
  EXPECT_TRUE(model.Compile(MixedCompileOptions()).ok());
  EXPECT_TRUE(model.Fit(data.x, data.y, {.epochs = 2, .verbose = 0}).ok());
  absl::Status saved = model.Save(path, {.include_optimizer = include_optimizer});
  EXPECT_TRUE(saved.ok()) << saved;
  return model;
}

// ---------------------------------------------------------------- round trips

TEST(SavingTest, SaveThenLoadGivesBitIdenticalPredictionsAndWeights) {
  const std::string path = TempDir("round_trip") + "/model.safetensors";
  nn::Sequential model = TrainedMixedModel(path);
  Data data = MakeData(50, 99);
  auto loaded = nn::LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->compiled()) << "the file carries compile options";
  EXPECT_EQ(loaded->name(), "mixed");

  auto expected = model.Predict(data.x);
  auto actual = loaded->Predict(data.x);
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_TRUE(SameBits(*expected, *actual)) << "predictions differ after a round trip";

  auto a = model.GetWeights(), b = loaded->GetWeights();
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (const auto& [name, value] : *a) {
    ASSERT_TRUE(b->count(name)) << name;
    EXPECT_TRUE(SameBits(value, b->at(name))) << name;
  }
  EXPECT_TRUE(a->count("batch_normalization/moving_variance"));
  EXPECT_TRUE(a->count("p_re_lu/alpha"));
  EXPECT_EQ(model.Summary(), loaded->Summary());

  // The optimizer state came back too: slots, step counter and rate.
  for (const std::string& name : model.session()->variables().Names()) {
    auto original = model.session()->variables().Get(name);
    auto restored = loaded->session()->variables().Get(name);
    ASSERT_TRUE(restored.ok()) << name;
    EXPECT_TRUE(SameBits(*original, *restored)) << name;
  }
  // The compile options and layer settings came back.
  const nn::CompileOptions* options = loaded->compile_options();
  ASSERT_NE(options, nullptr);
  EXPECT_TRUE(std::holds_alternative<optimizers::Nadam>(options->optimizer));
  EXPECT_EQ(options->seed, 11u);
  ASSERT_TRUE(options->clip.has_value());
  EXPECT_EQ(options->clip->threshold, 5.0);
  EXPECT_EQ(options->metrics, std::vector<nn::Metric>{"accuracy"});
  auto scores = loaded->Evaluate(data.x, data.y);
  auto original_scores = model.Evaluate(data.x, data.y);
  ASSERT_TRUE(scores.ok() && original_scores.ok());
  EXPECT_EQ(scores->at("loss"), original_scores->at("loss")) << "the l2 penalty must be restored too";
}

// With the optimizer state, training continues exactly as if uninterrupted.
TEST(SavingTest, OptimizerStateMakesTrainingContinueBitIdentically) {
  const std::string dir = TempDir("continue");
  Data data = MakeData();
  auto make = [] {
    return nn::Sequential({nn::Flatten(Shape{2, 3}), nn::Dense(8, {.activation = "relu"}),
                           nn::Dense(3, {.activation = "softmax"})});
  };
  nn::Sequential model = make();
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{.learning_rate = 0.01}}).ok());
  nn::FitOptions fit{.epochs = 1, .shuffle = false, .verbose = 0};
  ASSERT_TRUE(model.Fit(data.x, data.y, fit).ok());
  ASSERT_TRUE(model.Save(dir + "/with.safetensors").ok());
  ASSERT_TRUE(model.Save(dir + "/without.safetensors", {.include_optimizer = false}).ok());
  auto with = nn::LoadModel(dir + "/with.safetensors");
  auto without = nn::LoadModel(dir + "/without.safetensors");
  ASSERT_TRUE(with.ok() && without.ok()) << with.status() << without.status();
  EXPECT_FALSE(LoadCheckpoint(dir + "/without.safetensors")->tensors.count("dense/kernel/m"));

  ASSERT_TRUE(model.Fit(data.x, data.y, fit).ok());
  ASSERT_TRUE(with->Fit(data.x, data.y, fit).ok());
  ASSERT_TRUE(without->Fit(data.x, data.y, fit).ok());
  auto a = model.GetWeights(), b = with->GetWeights(), c = without->GetWeights();
  for (const auto& [name, value] : *a) {
    EXPECT_TRUE(SameBits(value, b->at(name))) << name << " differs after resuming with the optimizer state";
  }
  EXPECT_FALSE(SameBits(a->at("dense/kernel"), c->at("dense/kernel")))
      << "a fresh Adam (step 0, empty moments) must take a different step";
}

// With shuffling and dropout, a model saved after some epochs and loaded in
// a fresh process continues exactly: the shuffle count travels in the file
// ("gradflow.fit") and the dropout stream follows global_step.
TEST(SavingTest, ResumedFitWithShuffleAndDropoutMatchesUninterrupted) {
  const std::string dir = TempDir("resume_shuffle");
  Data data = MakeData();
  auto make = [] {
    return nn::Sequential({nn::Flatten(Shape{2, 3}), nn::Dense(16, {.activation = "relu"}), nn::Dropout(0.3),
                           nn::Dense(3, {.activation = "softmax"})});
  };
  const nn::CompileOptions compile{.optimizer = optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9}};
  nn::FitOptions fit{.epochs = 2, .batch_size = 16, .verbose = 0};  // shuffle on (default)
  nn::Sequential uninterrupted = make();
  ASSERT_TRUE(uninterrupted.Compile(compile).ok());
  ASSERT_TRUE(uninterrupted.Fit(data.x, data.y, {.epochs = 4, .batch_size = 16, .verbose = 0}).ok());

  nn::Sequential first = make();
  ASSERT_TRUE(first.Compile(compile).ok());
  ASSERT_TRUE(first.Fit(data.x, data.y, fit).ok());
  ASSERT_TRUE(first.Save(dir + "/epoch2.safetensors").ok());
  auto file = LoadCheckpoint(dir + "/epoch2.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->metadata.at(nn::kFitStateMetadataKey), "{\"epochs_shuffled\":2}");
  auto resumed = nn::LoadModel(dir + "/epoch2.safetensors");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(resumed->Fit(data.x, data.y, fit).ok());
  auto a = uninterrupted.GetWeights(), b = resumed->GetWeights();
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& [name, value] : *a) {
    EXPECT_TRUE(SameBits(value, b->at(name))) << name << " differs after resuming";
  }
}

TEST(SavingTest, MalformedFitStateIsAnErrorNamingTheKey) {
  const std::string dir = TempDir("bad_fit_state");
  TrainedMixedModel(dir + "/good.safetensors");
  auto file = LoadCheckpoint(dir + "/good.safetensors");
  ASSERT_TRUE(file.ok());
  for (const char* bad : {"[1]", "{\"epochs_shuffled\": -3}", "not json"}) {
    file->metadata[nn::kFitStateMetadataKey] = bad;
    ASSERT_TRUE(SaveCheckpoint(dir + "/bad.safetensors", file->tensors, file->metadata).ok());
    auto loaded = nn::LoadModel(dir + "/bad.safetensors");
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(loaded.status().message(), HasSubstr("metadata 'gradflow.fit' must be")) << bad;
  }
}

TEST(SavingTest, LoadWithoutCompileThenCompileByHand) {
  const std::string path = TempDir("no_compile") + "/model.safetensors";
  nn::Sequential model = TrainedMixedModel(path);
  auto loaded = nn::LoadModel(path, {.compile = false});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->compiled());
  Data data = MakeData(20, 5);
  EXPECT_EQ(loaded->Predict(data.x).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(loaded->Compile({.optimizer = optimizers::SGD{}}).ok());
  auto expected = model.Predict(data.x);
  auto actual = loaded->Predict(data.x);
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_TRUE(SameBits(*expected, *actual));
}

TEST(SavingTest, SaveNeedsACompiledModel) {
  nn::Sequential model = MixedModel();
  absl::Status s = model.Save(TempDir("uncompiled") + "/m.safetensors");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("compile the model first"));
}

TEST(SavingTest, FileHoldsTheDocumentedNamesAndMetadata) {
  const std::string path = TempDir("layout") + "/model.safetensors";
  TrainedMixedModel(path);
  auto file = LoadCheckpoint(path);
  ASSERT_TRUE(file.ok());
  for (const char* name : {"dense/kernel", "dense/bias", "dense_2/kernel", "batch_normalization/gamma",
                           "batch_normalization/moving_mean", "p_re_lu/alpha", "dense/kernel/m",
                           "global_step", "optimizer/learning_rate"}) {
    EXPECT_TRUE(file->tensors.count(name)) << name;
  }
  ASSERT_TRUE(file->metadata.count("gradflow.model"));
  Json config = Json::parse(file->metadata.at("gradflow.model"));
  EXPECT_EQ(config["format"], "gradflow.model");
  EXPECT_EQ(config["layers"][2]["class_name"], "Dense");
  EXPECT_EQ(config["layers"][2]["config"]["kernel_regularizer"]["class_name"], "L2");
  EXPECT_EQ(config["layers"][2]["config"]["kernel_regularizer"]["config"]["l2"], 0.001);
  EXPECT_EQ(config["compile"]["optimizer"]["class_name"], "Nadam");
  Json layers = Json::parse(file->metadata.at("gradflow.layers"));
  EXPECT_EQ(layers[0]["name"], "batch_normalization");
  EXPECT_EQ(layers[0]["weights"].size(), 4u);
}

// ---------------------------------------------------------------- weights only

nn::Sequential SmallModel(int64_t last_units = 3, const std::string& last_name = "") {
  return nn::Sequential({nn::Flatten(Shape{2, 3}), nn::Dense(5, {.activation = "relu"}),
                         nn::Dense(last_units, {.activation = "softmax", .name = last_name})});
}

TEST(SavingTest, SaveWeightsThenLoadWeightsInOrder) {
  const std::string path = TempDir("weights") + "/weights.safetensors";
  Data data = MakeData();
  nn::Sequential a = SmallModel();
  ASSERT_TRUE(a.Compile({.seed = 1}).ok());
  ASSERT_TRUE(a.Fit(data.x, data.y, {.epochs = 1, .verbose = 0}).ok());
  ASSERT_TRUE(a.SaveWeights(path).ok());
  EXPECT_FALSE(LoadCheckpoint(path)->metadata.count("gradflow.model"));
  auto no_config = nn::LoadModel(path);
  EXPECT_THAT(no_config.status().message(), HasSubstr("has no model configuration"));

  // Other layer names (different seeds, explicit names): matched by order.
  nn::Sequential b({nn::Flatten(Shape{2, 3}), nn::Dense(5, {.activation = "relu", .name = "first"}),
                    nn::Dense(3, {.activation = "softmax", .name = "second"})});
  ASSERT_TRUE(b.Compile({.seed = 2}).ok());
  auto report = b.LoadWeights(path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded.size(), 4u);
  EXPECT_TRUE(report->unused.empty());
  auto pa = a.Predict(data.x), pb = b.Predict(data.x);
  EXPECT_TRUE(SameBits(*pa, *pb));

  // A different architecture cannot be loaded by order.
  nn::Sequential c = SmallModel(4);
  ASSERT_TRUE(c.Compile({}).ok());
  auto before = c.GetWeights();
  auto failed = c.LoadWeights(path);
  EXPECT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("dense_1/kernel"));
  auto after = c.GetWeights();
  for (const auto& [name, value] : *before) EXPECT_TRUE(SameBits(value, after->at(name))) << "a failed load changed " << name;
}

TEST(SavingTest, LoadWeightsByNameReportsLoadedMissingAndMismatched) {
  const std::string path = TempDir("by_name") + "/weights.safetensors";
  nn::Sequential a = SmallModel();
  ASSERT_TRUE(a.Compile({.seed = 1}).ok());
  ASSERT_TRUE(a.SaveWeights(path).ok());

  // Same first layer, an output layer of another shape, one more layer.
  nn::Sequential b({nn::Flatten(Shape{2, 3}), nn::Dense(5, {.activation = "relu"}),
                    nn::Dense(7, {.activation = "relu"}), nn::Dense(2, {.name = "head"})});
  ASSERT_TRUE(b.Compile({.loss = "mse"}).ok());
  auto strict = b.LoadWeights(path, {.by_name = true});
  EXPECT_FALSE(strict.ok());
  EXPECT_THAT(strict.status().message(), HasSubstr("'dense_1/kernel' is f32[5, 3] in the file but f32[5, 7]"));

  auto report = b.LoadWeights(path, {.by_name = true, .skip_mismatch = true});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, (std::vector<std::string>{"dense/kernel", "dense/bias"}));
  EXPECT_EQ(report->missing, (std::vector<std::string>{"head/kernel", "head/bias"}));
  ASSERT_EQ(report->mismatched.size(), 2u);
  EXPECT_EQ(report->mismatched[0].name, "dense_1/kernel");
  EXPECT_EQ(report->mismatched[0].file_shape, Shape({5, 3}));
  EXPECT_EQ(report->mismatched[0].model_shape, Shape({5, 7}));
  EXPECT_TRUE(report->unused.empty()) << "mismatched weights matched a name";
  EXPECT_THAT(report->ToString(), HasSubstr("loaded 2 weights; missing from the file: head/kernel"));
  EXPECT_TRUE(SameBits(a.GetWeights()->at("dense/kernel"), b.GetWeights()->at("dense/kernel")));
}

// ---------------------------------------------------------------- other writers and readers

// A model file written by tests/nn/testdata/make_model_fixture.py (Python
// standard library only); its weights are repeated here.
TEST(SavingTest, LoadsAModelWrittenByAnIndependentPythonWriter) {
  auto model = nn::LoadModel("tests/nn/testdata/python_model.safetensors");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->name(), "python_model");
  ASSERT_TRUE(model->compiled());
  EXPECT_TRUE(std::holds_alternative<optimizers::SGD>(model->compile_options()->optimizer));
  EXPECT_EQ(model->compile_options()->seed, 7u);

  const double hidden_kernel[2][3] = {{0.5, -1.0, 0.25}, {1.5, 0.75, -0.5}};
  const double hidden_bias[3] = {0.1, -0.2, 0.3};
  const double output_kernel[3][2] = {{1.0, -1.0}, {-0.5, 2.0}, {0.25, 0.125}};
  const double output_bias[2] = {0.05, -0.05};
  const std::vector<std::vector<double>> inputs = {{1.0, 2.0}, {-1.0, 0.5}, {0.0, 0.0}};
  Tensor x(DType::kF32, {3, 2});
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 2; ++k) x.data<float>()[2 * i + k] = static_cast<float>(inputs[i][k]);
  }
  auto predicted = model->Predict(x);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  constexpr double kTolerance = 1e-6;
  for (int i = 0; i < 3; ++i) {
    double h[3], logits[2];
    for (int j = 0; j < 3; ++j) {
      h[j] = std::max(0.0, hidden_bias[j] + inputs[i][0] * hidden_kernel[0][j] + inputs[i][1] * hidden_kernel[1][j]);
    }
    for (int j = 0; j < 2; ++j) {
      logits[j] = output_bias[j];
      for (int k = 0; k < 3; ++k) logits[j] += h[k] * output_kernel[k][j];
    }
    const double norm = std::exp(logits[0]) + std::exp(logits[1]);
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(predicted->data<float>()[2 * i + j], std::exp(logits[j]) / norm, kTolerance)
          << "sample " << i << " class " << j;
    }
  }
  // Its layer list also serves LoadWeights by order.
  nn::Sequential twin({nn::Dense(3, {.activation = "relu", .input_shape = Shape{2}}),
                       nn::Dense(2, {.activation = "softmax"})});
  ASSERT_TRUE(twin.Compile({}).ok());
  auto report = twin.LoadWeights("tests/nn/testdata/python_model.safetensors");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(SameBits(*twin.Predict(x), *predicted));
}

// README: reading a gradflow model with Python and numpy alone.
const std::string kNumpyModelReader = absl::StrCat("import json, struct, sys\nimport numpy as np\n",
                                                 testing_util::kLoadSafetensorsPy, R"(
tensors, metadata = load_safetensors(sys.argv[1])
config = json.loads(metadata["gradflow.model"])
x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype=np.float32)
for layer in config["layers"]:
    c = layer["config"]
    if layer["class_name"] == "Dense":
        x = x @ tensors[c["name"] + "/kernel"] + tensors[c["name"] + "/bias"]
        if c["activation"] == "relu":
            x = np.maximum(x, 0)
        elif c["activation"] == "softmax":
            x = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
print(" ".join("%.6f" % v for v in x[0]))
)");

TEST(SavingTest, NumpyRunsAGradflowModelFromTheFile) {
  const std::string dir = TempDir("numpy");
  nn::Sequential model = SmallModel();
  ASSERT_TRUE(model.Compile({.seed = 5}).ok());
  ASSERT_TRUE(model.Save(dir + "/model.safetensors").ok());
  std::string output;
  ASSERT_NO_FATAL_FAILURE(
      testing_util::RunPythonOn(dir, kNumpyModelReader, dir + "/model.safetensors", &output));
  Tensor x = Tensor::FromVector<float>({1, 2, 3}, {1, 2, 3, 4, 5, 6}).value();
  auto predicted = model.Predict(x);
  ASSERT_TRUE(predicted.ok());
  std::istringstream in(output);
  for (int j = 0; j < 3; ++j) {
    double value = -1;
    in >> value;
    EXPECT_NEAR(value, predicted->data<float>()[j], 1e-5) << output;
  }
}

// ---------------------------------------------------------------- damaged and hostile files

// The parts of a safetensors file, for editing.
struct RawFile {
  Json header;
  std::string data;
};

RawFile ReadRaw(const std::string& path) {
  std::string bytes = ReadBytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {Json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

std::string RawBytes(const RawFile& raw, std::optional<uint64_t> claimed_length = std::nullopt) {
  std::string header = raw.header.dump();
  header += std::string((8 - header.size() % 8) % 8, ' ');
  uint64_t n = claimed_length.value_or(header.size());
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + raw.data;
}

struct BadModelFile {
  std::string what;
  std::function<std::string(const std::string& good_bytes, RawFile raw)> make;
  std::string expected;  // part of the message naming the problem
};

// Edits the configuration in the header's metadata.
std::function<std::string(const std::string&, RawFile)> EditConfig(std::function<void(Json&)> edit) {
  return [edit](const std::string&, RawFile raw) {
    Json config = Json::parse(raw.header["__metadata__"]["gradflow.model"].get<std::string>());
    edit(config);
    raw.header["__metadata__"]["gradflow.model"] = config.dump();
    return RawBytes(raw);
  };
}

// Rewrites the file with its tensors edited (through the checkpoint writer).
std::function<std::string(const std::string&, RawFile)> EditTensors(
    std::function<void(std::map<std::string, Tensor>&)> edit) {
  return [edit](const std::string& good, RawFile) {
    const std::string dir = TempDir("edit_tensors");
    WriteBytes(dir + "/in.safetensors", good);
    Checkpoint c = *LoadCheckpoint(dir + "/in.safetensors");
    edit(c.tensors);
    EXPECT_TRUE(SaveCheckpoint(dir + "/out.safetensors", c.tensors, c.metadata).ok());
    return ReadBytes(dir + "/out.safetensors");
  };
}

std::vector<BadModelFile> BadModelFiles() {
  auto truncate_to = [](std::function<size_t(size_t)> size) {
    return [size](const std::string& good, RawFile) { return good.substr(0, size(good.size())); };
  };
  return {
      {"empty file", truncate_to([](size_t) { return 0; }), "8-byte header length"},
      {"truncated in the length", truncate_to([](size_t) { return 5; }), "8-byte header length"},
      {"truncated in the header", truncate_to([](size_t) { return 100; }), "runs past the end"},
      {"truncated in the data", truncate_to([](size_t n) { return n - 100; }), ""},
      {"one byte short", truncate_to([](size_t n) { return n - 1; }), ""},
      {"header length beyond the file",
       [](const std::string&, RawFile raw) { return RawBytes(raw, uint64_t{1} << 40); }, "runs past the end"},
      {"overlapping offsets",
       [](const std::string&, RawFile raw) {
         Json& offsets = raw.header["dense/kernel"]["data_offsets"];
         offsets = {offsets[0].get<uint64_t>() - 4, offsets[1].get<uint64_t>() - 4};
         return RawBytes(raw);
       },
       "overlap"},
      {"out-of-range offsets",
       [](const std::string&, RawFile raw) {
         Json& offsets = raw.header["dense/bias"]["data_offsets"];
         offsets = {offsets[0].get<uint64_t>() + (1 << 20), offsets[1].get<uint64_t>() + (1 << 20)};
         return RawBytes(raw);
       },
       "data_offsets"},
      {"unknown dtype",
       [](const std::string&, RawFile raw) {
         raw.header["dense/bias"]["dtype"] = "Q8";
         return RawBytes(raw);
       },
       "Q8"},
      {"a dtype gradflow lacks",
       [](const std::string&, RawFile raw) {
         raw.header["dense/bias"]["dtype"] = "F16";
         raw.header["dense/bias"]["shape"] = {raw.header["dense/bias"]["shape"][0].get<int>() * 2};
         return RawBytes(raw);
       },
       "F16"},
      {"kernel of another shape (same bytes)",
       [](const std::string&, RawFile raw) {
         raw.header["dense/kernel"]["shape"] = {8, 6};
         return RawBytes(raw);
       },
       "the saved model's 'dense/kernel' is f32[8, 6] but its configuration builds f32[6, 8]"},
      {"config with other units than the weights",
       EditConfig([](Json& c) { c["layers"][2]["config"]["units"] = 9; }), "configuration builds f32[6, 9]"},
      {"units = 10^12 in the config",
       EditConfig([](Json& c) { c["layers"][2]["config"]["units"] = int64_t{1000000000000}; }),
       "'units' must be an integer in [1, 1048576]"},
      {"unknown layer type", EditConfig([](Json& c) { c["layers"][3]["class_name"] = "SpatialDropout"; }),
       "unknown layer type 'SpatialDropout'"},
      {"unknown activation", EditConfig([](Json& c) { c["layers"][2]["config"]["activation"] = "relu7"; }),
       "unknown activation 'relu7'"},
      {"unknown initializer",
       EditConfig([](Json& c) { c["layers"][5]["config"]["kernel_initializer"] = "kaiming"; }), "kaiming"},
      {"malformed config JSON",
       [](const std::string&, RawFile raw) {
         raw.header["__metadata__"]["gradflow.model"] = "{\"format\": \"gradflow.model\", ";
         return RawBytes(raw);
       },
       "not valid JSON"},
      {"config of the wrong type",
       [](const std::string&, RawFile raw) {
         raw.header["__metadata__"]["gradflow.model"] = "[]";
         return RawBytes(raw);
       },
       "must be a JSON object"},
      {"metadata that is not a string",
       [](const std::string&, RawFile raw) {
         raw.header["__metadata__"]["gradflow.model"] = {{"format", "gradflow.model"}};
         return RawBytes(raw);
       },
       "metadata"},
      {"a missing weight", EditTensors([](auto& t) { t.erase("dense/bias"); }),
       "the saved model has no weight 'dense/bias' f32[8]"},
      {"a tensor that belongs nowhere",
       EditTensors([](auto& t) { t["stray"] = Tensor::FromVector<float>({1}, {1}).value(); }),
       "tensor 'stray' is neither a layer weight nor a variable"},
      {"a weight the layer does not have",
       EditTensors([](auto& t) { t["dense/gamma"] = Tensor::FromVector<float>({1}, {1}).value(); }),
       "was given a weight 'gamma' that it does not have"},
      {"an optimizer slot of the wrong shape",
       EditTensors([](auto& t) { t["dense/kernel/m"] = Tensor(DType::kF32, {2}); }), "dense/kernel/m"},
      {"an i32 kernel",
       EditTensors([](auto& t) { t["dense/kernel"] = Tensor(DType::kI32, t["dense/kernel"].shape()); }),
       "'dense/kernel' is i32[6, 8]"},
  };
}

TEST(SavingTest, DamagedOrHostileFilesGiveClearErrorsNeverCrashes) {
  const std::string dir = TempDir("hostile");
  const std::string good_path = dir + "/good.safetensors";
  TrainedMixedModel(good_path);
  const std::string good = ReadBytes(good_path);
  ASSERT_TRUE(nn::LoadModel(good_path).ok());
  for (const BadModelFile& bad : BadModelFiles()) {
    const std::string path = dir + "/model.safetensors";
    WriteBytes(path, bad.make(good, ReadRaw(good_path)));
    absl::StatusOr<nn::Model> loaded = nn::LoadModel(path);
    ASSERT_FALSE(loaded.ok()) << bad.what << ": loaded a damaged file";
    EXPECT_THAT(loaded.status().message(), HasSubstr(path)) << bad.what << ": the error must name the file";
    EXPECT_THAT(loaded.status().message(), HasSubstr(bad.expected)) << bad.what;
  }
}

// ---------------------------------------------------------------- killed saves

// A child saves a 1024x2048 model (8 MiB) over one path in a loop, each
// version with all weights set to the version number; the parent kills it
// with SIGKILL at random moments. The path must always hold nothing (before
// the first save) or one complete version that LoadModel reads.
TEST(SavingTest, KilledSaveNeverLeavesAHalfWrittenModel) {
  const std::string dir = TempDir("sigkill");
  const std::string path = dir + "/model.safetensors";
  nn::Sequential model({nn::Dense(2048, {.input_shape = Shape{1024}})});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  constexpr int kIterations = 10;
  constexpr int kMaxDelayMs = 150;
  std::mt19937 rng(20240612);
  std::uniform_int_distribution<int> delay_ms(0, kMaxDelayMs);
  int kills_mid_write = 0, complete = 0;
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto weights = *model.GetWeights();
      for (int64_t v = (iteration + 1) * 1000;; ++v) {
        for (auto& [name, value] : weights) {
          std::fill(value.data<float>(), value.data<float>() + value.num_elements(), static_cast<float>(v));
        }
        if (!model.SetWeights(weights).ok() || !model.Save(path, {.include_optimizer = false}).ok()) _exit(2);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int wait_status = 0;
    ASSERT_EQ(waitpid(child, &wait_status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wait_status)) << "the saving child failed on its own";
    bool temporary = false;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().filename().string().rfind(".model.safetensors.tmp-", 0) == 0) {
        temporary = true;
        fs::remove(entry.path());
      }
    }
    kills_mid_write += temporary;
    if (!fs::exists(path)) continue;
    auto loaded = nn::LoadModel(path);
    ASSERT_TRUE(loaded.ok()) << "iteration " << iteration << ": " << loaded.status();
    auto weights = loaded->GetWeights();
    const float version = weights->at("dense/kernel").data<float>()[0];
    for (const auto& [name, value] : *weights) {
      for (float w : value.flat<float>()) ASSERT_EQ(w, version) << name << ": a mix of two versions";
    }
    ++complete;
  }
  std::printf("model SIGKILL test: %d kills, %d mid-save, %d complete files read back\n", kIterations,
              kills_mid_write, complete);
  EXPECT_GT(complete, 0);
  // Without kills landing mid-save the test would prove nothing.
  EXPECT_GT(kills_mid_write, 0);
}

// ---------------------------------------------------------------- DOT

TEST(SavingTest, ToDotShowsLayersAndTheTrainingStep) {
  nn::Sequential model = SmallModel();
  EXPECT_FALSE(model.ToDot().ok());
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{}}).ok());
  auto dot = model.ToDot();
  ASSERT_TRUE(dot.ok());
  EXPECT_THAT(*dot, HasSubstr("digraph"));
  EXPECT_THAT(*dot, HasSubstr("dense_1/kernel"));
  EXPECT_THAT(*dot, HasSubstr("ApplyAdam"));
}

}  // namespace
}  // namespace gradflow
