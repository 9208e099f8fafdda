// Runs examples/inspect_model (a data dependency) on model files written
// here: summary, evaluate and predict on a saved Fashion-MNIST classifier, a
// file without compile options, damaged files and bad usage.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/fashion_mnist.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"

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

TEST(InspectModelTest, FileWithoutCompileOptions) {
  const std::string path = TempDir() + "/uncompiled.safetensors";
  auto file = LoadCheckpoint(SavedClassifier());
  ASSERT_TRUE(file.ok());
  nlohmann::json config = nlohmann::json::parse(file->metadata.at("gradflow.model"));
  config.erase("compile");
  file->metadata["gradflow.model"] = config.dump();
  file->tensors.erase("global_step");
  file->tensors.erase("optimizer/learning_rate");
  ASSERT_TRUE(SaveCheckpoint(path, file->tensors, file->metadata).ok());

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

}  // namespace
}  // namespace gradflow
