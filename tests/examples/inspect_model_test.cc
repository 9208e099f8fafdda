// Runs examples/inspect_model (a data dependency) on model files written
// here: summary, evaluate and predict on a saved Fashion-MNIST classifier, a
// file without compile options, damaged files and bad usage; predict with
// .npy inputs and outputs, and convert.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/fashion_mnist.h"
#include "core/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(base != nullptr ? base : "/tmp") / "inspect_model_test";
  fs::create_directories(dir);
  return dir.string();
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct ToolRun {
  int exit_code;
  std::string out, err;
};

ToolRun InspectModel(const std::string& args, const std::string& env = "") {
  const std::string dir = TempDir();
  const std::string command = absl::StrCat(env, env.empty() ? "" : " ", "examples/inspect_model ", args, " > ", dir, "/out.txt 2> ", dir, "/err.txt");
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadText(dir + "/out.txt"), ReadText(dir + "/err.txt")};
}

// A softmax classifier trained briefly on the first 2,000 test images (the
// tool evaluates on all 10,000), saved with its compile options.
std::string SavedClassifier() {
  static const std::string path = [] {
    const std::string p = TempDir() + "/classifier.safetensors";
    auto data = LoadFashionMnist("test");
    EXPECT_TRUE(data.ok()) << data.status();
    nn::Sequential model({nn::Flatten(Shape{28, 28}), nn::Dense(10, {.activation = "softmax"})}, "tiny");
    EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.1}, .metrics = {"accuracy"}}).ok());
    EXPECT_TRUE(model.Fit(data->images.Slice(0, 2000).value(), data->labels.Slice(0, 2000).value(), {.epochs = 2, .verbose = 0}).ok());
    EXPECT_TRUE(model.Save(p).ok());
    return p;
  }();
  return path;
}

TEST(InspectModelTest, SummaryListsLayersShapesAndParameters) {
  ToolRun run = InspectModel("summary " + SavedClassifier());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("Model: \"tiny\""));
  EXPECT_THAT(run.out, HasSubstr("dense (Dense)               (None, 10)                7,850"));
  EXPECT_THAT(run.out, HasSubstr("Total params: 7,850"));
  EXPECT_THAT(run.out, HasSubstr("compile options: loss sparse_categorical_crossentropy, optimizer SGD, metrics accuracy"));
  EXPECT_THAT(run.out, HasSubstr("2 layer weights, 2 optimizer state"));
}

TEST(InspectModelTest, EvaluateAndPredictOnTheTestSet) {
  ToolRun evaluate = InspectModel("evaluate " + SavedClassifier());
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_THAT(evaluate.out, HasSubstr("Fashion-MNIST test set (10000 images): accuracy 0."));
  ToolRun predict = InspectModel("predict " + SavedClassifier() + " 3");
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_THAT(predict.out, HasSubstr("image 0 (label: Ankle boot): "));
  EXPECT_THAT(predict.out, HasSubstr("image 2 (label: Trouser): "));
  EXPECT_EQ(std::count(predict.out.begin(), predict.out.end(), '\n'), 3);
}

// The classifier's file without its compile options and optimizer state.
std::string UncompiledClassifier() {
  const std::string path = TempDir() + "/uncompiled.safetensors";
  auto file = LoadCheckpoint(SavedClassifier());
  EXPECT_TRUE(file.ok());
  nlohmann::json config = nlohmann::json::parse(file->metadata.at("gradflow.model"));
  config.erase("compile");
  file->metadata["gradflow.model"] = config.dump();
  file->tensors.erase("global_step");
  file->tensors.erase("optimizer/learning_rate");
  EXPECT_TRUE(SaveCheckpoint(path, file->tensors, file->metadata).ok());
  return path;
}

TEST(InspectModelTest, FileWithoutCompileOptions) {
  const std::string path = UncompiledClassifier();

  ToolRun summary = InspectModel("summary " + path);
  EXPECT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_THAT(summary.out, HasSubstr("compile options: none in the file"));
  ToolRun evaluate = InspectModel("evaluate " + path);
  EXPECT_EQ(evaluate.exit_code, 1);
  EXPECT_THAT(evaluate.err, HasSubstr("has no compile options"));
  EXPECT_EQ(std::count(evaluate.err.begin(), evaluate.err.end(), '\n'), 1) << evaluate.err;
  EXPECT_EQ(InspectModel("predict " + path + " 1").exit_code, 0);
}

TEST(InspectModelTest, BadFilesAndUsageExitNonZeroWithOneLine) {
  const std::string dir = TempDir();
  std::ofstream(dir + "/garbage.safetensors") << "this is not a model";
  const std::string good = ReadText(SavedClassifier());
  std::ofstream(dir + "/truncated.safetensors") << good.substr(0, good.size() / 2);
  for (const std::string& args : {"summary " + dir + "/missing.safetensors", "evaluate " + dir + "/garbage.safetensors",
                                  "predict " + dir + "/truncated.safetensors", "predict " + SavedClassifier() + " 0",
                                  "predict " + SavedClassifier() + " 3x"}) {
    ToolRun run = InspectModel(args);
    EXPECT_EQ(run.exit_code, 1) << args;
    EXPECT_THAT(run.err, ::testing::StartsWith("inspect_model: error: ")) << args;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << args << ": " << run.err;
    EXPECT_TRUE(run.out.empty()) << args;
  }
  EXPECT_EQ(InspectModel("").exit_code, 2);
  EXPECT_EQ(InspectModel("explain " + SavedClassifier()).exit_code, 2);
  EXPECT_EQ(InspectModel("predict a 1 2").exit_code, 2);
}

// A folder holding a Fashion-MNIST test split of `n` images (plain IDX).
std::string TinyDataset(uint32_t n) {
  const std::string dir = absl::StrCat(TempDir(), "/dataset_", n);
  fs::create_directories(dir);
  auto write = [](const std::string& path, uint32_t magic, std::vector<uint32_t> dims, size_t data_bytes) {
    std::string bytes;
    for (uint32_t v : std::vector<uint32_t>{magic} ) for (int s = 24; s >= 0; s -= 8) bytes += char(v >> s);
    for (uint32_t v : dims) for (int s = 24; s >= 0; s -= 8) bytes += char(v >> s);
    bytes += std::string(data_bytes, '\1');
    std::ofstream(path, std::ios::binary) << bytes;
  };
  write(dir + "/t10k-images-idx3-ubyte", 0x803, {n, 28, 28}, size_t{n} * 784);
  write(dir + "/t10k-labels-idx1-ubyte", 0x801, {n}, n);
  return dir;
}

// Issue 13 item 4: N larger than the dataset segfaulted (3 images, N=10000);
// an empty dataset printed predictions from uninitialised memory, exit 0.
TEST(InspectModelTest, PredictMoreImagesThanTheDatasetHasIsAnError) {
  for (auto [images, n] : {std::pair{3u, 10000}, std::pair{0u, 5}, std::pair{3u, 4}}) {
    const std::string env = "GRADFLOW_FASHION_MNIST_DIR=" + TinyDataset(images);
    ToolRun run = InspectModel(absl::StrCat("predict ", SavedClassifier(), " ", n), env);
    EXPECT_EQ(run.exit_code, 1) << images << " images, N=" << n << ": " << run.out;
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat("N is ", n, " but the test set has only ", images, " images")));
    EXPECT_TRUE(run.out.empty());
  }
  const std::string env = "GRADFLOW_FASHION_MNIST_DIR=" + TinyDataset(3);
  ToolRun all = InspectModel("predict " + SavedClassifier() + " 3", env);
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(std::count(all.out.begin(), all.out.end(), '\n'), 3);
}

// Issue 13 item 28: " 5" was accepted and "5 " refused; both are refused now,
// and a long argument is not repeated whole in the message.
TEST(InspectModelTest, CountParsingIsStrictAndQuotesAreCapped) {
  for (const std::string count : {"' 5'", "'5 '", "+5", "-5", "5.0", "0x5", "99999999999999999999"}) {
    ToolRun run = InspectModel("predict " + SavedClassifier() + " " + count);
    EXPECT_EQ(run.exit_code, 1) << count;
    EXPECT_THAT(run.err, HasSubstr("N must be a positive integer (digits only)")) << count;
  }
  // Long names from a file (a layer type, a loss) are cut in the message too.
  for (const std::string field : {"class_name", "loss"}) {
    auto file = LoadCheckpoint(SavedClassifier());
    ASSERT_TRUE(file.ok());
    nlohmann::json config = nlohmann::json::parse(file->metadata.at("gradflow.model"));
    (field == "loss" ? config["compile"]["loss"] : config["layers"][1]["class_name"]) = std::string(100000, 'Z');
    file->metadata["gradflow.model"] = config.dump();
    const std::string path = TempDir() + "/long_" + field + ".safetensors";
    ASSERT_TRUE(SaveCheckpoint(path, file->tensors, file->metadata).ok());
    ToolRun run = InspectModel("summary " + path);
    EXPECT_EQ(run.exit_code, 1) << field;
    EXPECT_LT(run.err.size(), 1000u) << field;
    EXPECT_THAT(run.err, HasSubstr("... (100000 bytes)")) << field;
  }
  ToolRun long_arg = InspectModel("predict " + SavedClassifier() + " " + std::string(100000, '7') + "x");
  EXPECT_EQ(long_arg.exit_code, 1);
  EXPECT_LT(long_arg.err.size(), 400u);
  EXPECT_THAT(long_arg.err, HasSubstr("... (100001 bytes)"));
}

// Four samples for the classifier ([-1, 28, 28]), values k/255 like pixels.
Tensor Samples(Shape shape = {4, 28, 28}) {
  Tensor x(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = static_cast<float>(i % 256) / 255.0f;
  return x;
}

// The same samples as a float64 .npy file, written byte by byte as np.save
// would (the tool converts float64 to float32 on reading).
std::string Float64Npy(const Tensor& x) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 28, 28), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) + char(header.size() >> 8) + header;
  for (float v : x.flat<const float>()) {
    const double d = v;
    bytes.append(reinterpret_cast<const char*>(&d), sizeof(d));
  }
  return bytes;
}

float MaxAbsDifference(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float worst = 0;
  for (int64_t i = 0; i < std::min(a.num_elements(), b.num_elements()); ++i) {
    worst = std::max(worst, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  }
  return worst;
}

TEST(InspectModelTest, PredictNpyInputWritesWhatPredictReturns) {
  const std::string dir = TempDir();
  const Tensor x = Samples();
  ASSERT_TRUE(WriteNpy(dir + "/x.npy", x).ok());
  ToolRun run = InspectModel(absl::StrCat("predict ", SavedClassifier(), " --input=", dir, "/x.npy --output=", dir, "/y.npy"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("/y.npy: float32 [4, 10]"));
  absl::StatusOr<Tensor> y = ReadNpy(dir + "/y.npy");
  ASSERT_TRUE(y.ok()) << y.status();
  absl::StatusOr<nn::Model> model = nn::LoadModel(SavedClassifier());
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Tensor> expected = model->Predict(x);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_LE(MaxAbsDifference(*y, *expected), 1e-6f);

  // float64 samples give the same outputs; without --output they are printed.
  std::ofstream(dir + "/x64.npy", std::ios::binary) << Float64Npy(x);
  ToolRun run64 = InspectModel(absl::StrCat("predict ", SavedClassifier(), " --output=", dir, "/y64.npy --input=", dir, "/x64.npy"));
  ASSERT_EQ(run64.exit_code, 0) << run64.err;
  EXPECT_EQ(ReadText(dir + "/y64.npy"), ReadText(dir + "/y.npy"));
  ToolRun printed = InspectModel(absl::StrCat("predict ", SavedClassifier(), " --input=", dir, "/x.npy"));
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(std::count(printed.out.begin(), printed.out.end(), '\n'), 4);
  EXPECT_EQ(std::count(printed.out.begin(), printed.out.end(), ' '), 4 * 9);
  EXPECT_FLOAT_EQ(std::stof(printed.out), y->data<float>()[0]);
}

TEST(InspectModelTest, ConvertRoundTripGivesIdenticalPredictions) {
  const std::string dir = TempDir();
  ASSERT_TRUE(WriteNpy(dir + "/x.npy", Samples()).ok());
  ToolRun convert = InspectModel(absl::StrCat("convert ", SavedClassifier(), " ", dir, "/converted.safetensors"));
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  EXPECT_THAT(convert.out, HasSubstr("converted.safetensors from "));
  for (const std::string model : {SavedClassifier(), dir + "/converted.safetensors"}) {
    const std::string y = model == SavedClassifier() ? "/y_original.npy" : "/y_converted.npy";
    ToolRun run = InspectModel(absl::StrCat("predict ", model, " --input=", dir, "/x.npy --output=", dir, y));
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
  EXPECT_EQ(ReadText(dir + "/y_original.npy"), ReadText(dir + "/y_converted.npy"));
  // The compile options and the optimizer state come along.
  ToolRun summary = InspectModel("summary " + dir + "/converted.safetensors");
  EXPECT_THAT(summary.out, HasSubstr("compile options: loss sparse_categorical_crossentropy, optimizer SGD"));
  EXPECT_THAT(summary.out, HasSubstr("2 layer weights, 2 optimizer state"));
}

TEST(InspectModelTest, BadNpyInputsAndConvertsAreOneLineErrors) {
  const std::string dir = TempDir();
  ASSERT_TRUE(WriteNpy(dir + "/flat.npy", Samples({4, 784})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/none.npy", Samples({0, 28, 28})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/labels.npy", Tensor(DType::kI32, {4, 28, 28})).ok());
  std::ofstream(dir + "/garbage.npy") << "not a numpy file";
  const std::string model = SavedClassifier();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"predict " + model + " --input=" + dir + "/flat.npy", "flat.npy' has shape [4, 784]; the model needs [N, 28, 28] with N >= 1"},
      {"predict " + model + " --input=" + dir + "/none.npy", "none.npy' has shape [0, 28, 28]"},
      {"predict " + model + " --input=" + dir + "/labels.npy", "labels.npy' holds i32 values; the model's inputs are float32"},
      {"predict " + model + " --input=" + dir + "/garbage.npy", "garbage.npy': it does not start with"},
      {"predict " + model + " --input=" + dir + "/missing.npy", "cannot read .npy file"},
      {"predict " + model + " --input=" + dir + "/flat.npy --output=" + dir + "/no/dir/y.npy", "has shape [4, 784]"},
      {"convert " + dir + "/missing.safetensors " + dir + "/out.safetensors", "missing.safetensors"},
      {"convert " + UncompiledClassifier() + " " + dir + "/out.safetensors", "has no compile options"},
      {"convert " + model + " " + dir + "/no/such/dir/out.safetensors", "cannot save '" + dir + "/no/such/dir/out.safetensors'"},
  };
  for (const auto& [args, message] : cases) {
    ToolRun run = InspectModel(args);
    EXPECT_EQ(run.exit_code, 1) << args;
    EXPECT_THAT(run.err, ::testing::StartsWith("inspect_model: error: ")) << args;
    EXPECT_THAT(run.err, HasSubstr(message)) << args;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << args << ": " << run.err;
    EXPECT_TRUE(run.out.empty()) << args;
  }
  for (const std::string args : {"--output=y.npy", "--input=", "--input=a.npy 3", "3 --input=a.npy", "--bogus=1",
                                 "--input=a.npy --input=b.npy", "--input=a.npy --output=b.npy 3"}) {
    EXPECT_EQ(InspectModel("predict " + model + " " + args).exit_code, 2) << args;
  }
  EXPECT_EQ(InspectModel("convert " + model).exit_code, 2);
  EXPECT_EQ(InspectModel("convert " + model + " a b").exit_code, 2);
}

}  // namespace
}  // namespace gradflow
