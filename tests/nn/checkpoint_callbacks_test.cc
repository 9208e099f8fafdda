// Tests of nn/checkpoint_callbacks.cc: ModelCheckpoint (best only, path
// fields, weights only), CSVLogger (columns, exact values, append, NA) and
// TerminateOnNaN, called directly with scripted logs and through Fit.

#include "nn/checkpoint_callbacks.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/nn/callback_test_model.h"
#include "tests/util/files.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow {
namespace {

using nn::Fresh;
using testing_util::TempDir;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Data {
  Tensor x, y;
};

Data MakeData(int64_t n = 120) {
  Data d{Tensor(DType::kF32, {n, 4}), Tensor(DType::kI32, {n})};
  Rng rng(9);
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 2);
    d.y.data<int32_t>()[i] = label;
    for (int k = 0; k < 4; ++k) d.x.data<float>()[4 * i + k] = static_cast<float>(label * 1.5 + rng.Normal());
  }
  return d;
}

nn::Sequential CompiledModel() {
  nn::Sequential model({nn::Dense(8, {.activation = "relu", .input_shape = Shape{4}}),
                        nn::Dense(2, {.activation = "softmax"})});
  EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.05}, .metrics = {"accuracy"}}).ok());
  return model;
}

// Sets every weight of the model to `value`, so a saved file tells which
// epoch it came from.
void MarkWeights(nn::Model& model, float value) {
  auto weights = *model.GetWeights();
  for (auto& [name, tensor] : weights) {
    for (float& w : tensor.flat<float>()) w = value;
  }
  ASSERT_TRUE(model.SetWeights(weights).ok());
}

float SavedMark(const std::string& path) {
  auto loaded = nn::LoadModel(path);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->GetWeights()->at("dense/kernel").data<float>()[0] : NAN;
}

// ---------------------------------------------------------------- ModelCheckpoint

TEST(ModelCheckpointTest, SaveBestOnlyKeepsTheBestEpoch) {
  const std::string path = TempDir("best") + "/best.safetensors";
  nn::Sequential model = CompiledModel();
  auto checkpoint = nn::ModelCheckpoint::Create(path, {.save_best_only = true});
  ASSERT_TRUE(checkpoint.ok());
  ASSERT_TRUE((*checkpoint)->OnTrainBegin(model).ok());
  const std::vector<double> val_losses = {0.9, 0.7, 0.8, 0.5, 0.5, 0.6};
  for (int epoch = 0; epoch < static_cast<int>(val_losses.size()); ++epoch) {
    MarkWeights(model, static_cast<float>(epoch));
    ASSERT_TRUE((*checkpoint)->OnEpochEnd(model, epoch, Fresh({{"loss", 1.0}, {"val_loss", val_losses[epoch]}})).ok());
  }
  EXPECT_EQ((*checkpoint)->saved().size(), 3u) << "epochs 0, 1 and 3 improve (0.5 again does not)";
  EXPECT_EQ((*checkpoint)->best(), 0.5);
  EXPECT_EQ(SavedMark(path), 3.0f);
  // No temporary files are left behind.
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
    EXPECT_EQ(entry.path().filename(), "best.safetensors");
  }
}

TEST(ModelCheckpointTest, AccuracyIsMaximizedAndPathFieldsAreFilledIn) {
  const std::string dir = TempDir("fields");
  nn::Sequential model = CompiledModel();
  auto checkpoint = nn::ModelCheckpoint::Create(dir + "/model-{epoch:02d}-{val_accuracy:.3f}.safetensors",
                                                {.monitor = "val_accuracy", .save_best_only = true});
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<double> accuracies = {0.5, 0.75, 0.625, 0.875};
  for (int epoch = 0; epoch < 4; ++epoch) {
    ASSERT_TRUE((*checkpoint)->OnEpochEnd(model, epoch, Fresh({{"val_accuracy", accuracies[epoch]}})).ok());
  }
  EXPECT_EQ((*checkpoint)->saved(),
            (std::vector<std::string>{dir + "/model-01-0.500.safetensors", dir + "/model-02-0.750.safetensors",
                                      dir + "/model-04-0.875.safetensors"}));
  for (const std::string& path : (*checkpoint)->saved()) EXPECT_TRUE(fs::exists(path)) << path;
}

// Issue 15: auto mode followed the name ("acc" or "auc" in it: max), so
// "val_precision" kept the lowest. It follows the compiled metric's
// direction: precision and AUC go up.
TEST(ModelCheckpointTest, AutoModeMaximizesPrecisionAndAuc) {
  for (const char* metric : {"precision", "auc"}) {
    SCOPED_TRACE(metric);
    const std::string path = TempDir(metric) + "/best.safetensors";
    nn::Sequential model({nn::Dense(8, {.activation = "relu", .input_shape = Shape{4}}),
                          nn::Dense(1, {.activation = "sigmoid"})});
    ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .optimizer = optimizers::SGD{.learning_rate = 0.05},
                               .metrics = {metric}})
                    .ok());
    const std::string monitor = absl::StrCat("val_", metric);
    auto checkpoint = nn::ModelCheckpoint::Create(path, {.monitor = monitor, .save_best_only = true});
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    ASSERT_TRUE((*checkpoint)->OnTrainBegin(model).ok());
    const std::vector<double> values = {0.6, 0.8, 0.7, 0.9, 0.85};
    for (int epoch = 0; epoch < static_cast<int>(values.size()); ++epoch) {
      MarkWeights(model, static_cast<float>(epoch));
      ASSERT_TRUE((*checkpoint)->OnEpochEnd(model, epoch, Fresh({{"loss", 1.0}, {monitor, values[epoch]}})).ok());
    }
    EXPECT_EQ((*checkpoint)->saved().size(), 3u) << "epochs 0, 1 and 3 improve";
    EXPECT_EQ((*checkpoint)->best(), 0.9);
    EXPECT_EQ(SavedMark(path), 3.0f);
  }
}

TEST(ModelCheckpointTest, AutoModeWithAnUnknownMonitorIsAnErrorOnlyForSaveBestOnly) {
  const std::string dir = TempDir("unknown");
  nn::Sequential model = CompiledModel();
  auto best = nn::ModelCheckpoint::Create(dir + "/best.safetensors", {.monitor = "val_f1", .save_best_only = true});
  ASSERT_TRUE(best.ok()) << best.status();
  absl::Status s = (*best)->OnTrainBegin(model);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("ModelCheckpoint: mode \"auto\" cannot tell whether monitor 'val_f1'"));
  EXPECT_THAT(s.message(), HasSubstr("(accuracy)"));
  // Saving every epoch compares nothing, so it needs no direction.
  auto every = nn::ModelCheckpoint::Create(dir + "/every.safetensors", {.monitor = "val_f1"});
  ASSERT_TRUE(every.ok());
  EXPECT_TRUE((*every)->OnTrainBegin(model).ok());
}

TEST(ModelCheckpointTest, EveryEpochThroughFitAndWeightsOnly) {
  const std::string dir = TempDir("fit");
  Data data = MakeData();
  nn::Sequential model = CompiledModel();
  auto every = nn::ModelCheckpoint::Create(dir + "/epoch{epoch}.safetensors");
  auto weights_only = nn::ModelCheckpoint::Create(dir + "/weights.safetensors", {.save_weights_only = true});
  ASSERT_TRUE(every.ok() && weights_only.ok());
  auto history = model.Fit(data.x, data.y, {.epochs = 3, .validation_split = 0.25, .verbose = 0,
                                            .callbacks = {*every, *weights_only}});
  ASSERT_TRUE(history.ok()) << history.status();
  for (int e = 1; e <= 3; ++e) EXPECT_TRUE(fs::exists(absl::StrCat(dir, "/epoch", e, ".safetensors")));
  auto last = nn::LoadModel(dir + "/epoch3.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  auto predicted = model.Predict(data.x), restored = last->Predict(data.x);
  EXPECT_EQ(predicted->ToVector<float>(), restored->ToVector<float>());
  EXPECT_THAT(nn::LoadModel(dir + "/weights.safetensors").status().message(),
              HasSubstr("has no model configuration"));
  nn::Sequential fresh = CompiledModel();
  ASSERT_TRUE(fresh.LoadWeights(dir + "/weights.safetensors").ok());
  EXPECT_EQ(fresh.Predict(data.x)->ToVector<float>(), predicted->ToVector<float>());
}

TEST(ModelCheckpointTest, Errors) {
  EXPECT_THAT(nn::ModelCheckpoint::Create("m.safetensors", {.mode = "best"}).status().message(),
              HasSubstr("mode must be"));
  EXPECT_THAT(nn::ModelCheckpoint::Create("m{epoch.safetensors").status().message(), HasSubstr("unmatched '{'"));
  EXPECT_THAT(nn::ModelCheckpoint::Create("m}.safetensors").status().message(), HasSubstr("unmatched '}'"));
  EXPECT_THAT(nn::ModelCheckpoint::Create("m{epoch:%n}.safetensors").status().message(),
              HasSubstr("is not {name} or {name:spec}"));
  EXPECT_THAT(nn::ModelCheckpoint::Create("m{epoch:.2f}.safetensors").status().message(),
              HasSubstr("{epoch} takes an integer format"));
  EXPECT_FALSE(nn::ModelCheckpoint::Create("").ok());

  nn::Sequential model = CompiledModel();
  const std::string dir = TempDir("errors");
  auto best = nn::ModelCheckpoint::Create(dir + "/m.safetensors", {.save_best_only = true});
  absl::Status missing = (*best)->OnEpochEnd(model, 0, Fresh({{"loss", 1.0}}));
  EXPECT_THAT(missing.message(), HasSubstr("the logs have no 'val_loss' (available: loss)"));
  auto field = nn::ModelCheckpoint::Create(dir + "/m{val_auc}.safetensors");
  EXPECT_THAT((*field)->OnEpochEnd(model, 0, Fresh({{"loss", 1.0}})).message(), HasSubstr("'{val_auc}' is not in the logs"));
  auto nowhere = nn::ModelCheckpoint::Create(dir + "/no/such/dir/m.safetensors");
  EXPECT_FALSE((*nowhere)->OnEpochEnd(model, 0, Fresh({{"loss", 1.0}})).ok());
  nn::Sequential uncompiled({nn::Dense(2, {.input_shape = Shape{4}})});
  auto any = nn::ModelCheckpoint::Create(dir + "/u.safetensors");
  EXPECT_THAT((*any)->OnEpochEnd(uncompiled, 0, Fresh({})).message(), HasSubstr("compile the model first"));
}

// Issue 13 item 25: "{epoch:0200d}" was cut to 127 characters by a fixed
// buffer, so every epoch overwrote one file; a name no file system can hold
// was accepted.
TEST(ModelCheckpointTest, WideFieldsAreNotCutAndImpossibleNamesAreRefused) {
  const std::string dir = TempDir("wide_fields");
  absl::StatusOr<std::shared_ptr<nn::ModelCheckpoint>> too_wide = nn::ModelCheckpoint::Create(dir + "/{epoch:0999d}");
  ASSERT_FALSE(too_wide.ok());
  EXPECT_THAT(too_wide.status().message(), HasSubstr("999-byte component"));
  EXPECT_FALSE(nn::ModelCheckpoint::Create(dir + "/m{loss:0300.1f}").ok());
  EXPECT_FALSE(nn::ModelCheckpoint::Create(dir + "/").ok());
  auto checkpoint = nn::ModelCheckpoint::Create(dir + "/m{epoch:0200d}.safetensors", {.save_weights_only = true});
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  nn::Sequential model = CompiledModel();
  for (int epoch = 0; epoch < 2; ++epoch) {
    ASSERT_TRUE((*checkpoint)->OnEpochEnd(model, epoch, Fresh({{"loss", 0.5}})).ok());
  }
  const std::vector<std::string>& saved = (*checkpoint)->saved();
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_NE(saved[0], saved[1]);
  EXPECT_EQ(fs::path(saved[1]).filename().string(), "m" + std::string(199, '0') + "2.safetensors");
  EXPECT_TRUE(fs::exists(saved[0]));
  EXPECT_TRUE(fs::exists(saved[1]));
}

// ---------------------------------------------------------------- CSVLogger

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Issue 13 item 2: CSVLogger wrote 0600 files while models got 0644. Both
// now follow the umask for a new file and keep an existing file's mode.
TEST(CSVLoggerTest, FileModeFollowsTheUmaskAndKeepsAnExistingMode) {
  const std::string path = TempDir("csv_mode") + "/history.csv";
  nn::Sequential model = CompiledModel();
  auto logger = nn::CSVLogger::Create(path);
  ASSERT_TRUE(logger.ok());
  const mode_t old_mask = ::umask(022);
  ASSERT_TRUE((*logger)->OnTrainBegin(model).ok());
  absl::Status first = (*logger)->OnEpochEnd(model, 0, Fresh({{"loss", 1.0}}));
  ::umask(old_mask);
  ASSERT_TRUE(first.ok()) << first;
  EXPECT_EQ(ModeOf(path), 0644u);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  ASSERT_TRUE((*logger)->OnEpochEnd(model, 1, Fresh({{"loss", 0.5}})).ok());
  EXPECT_EQ(ModeOf(path), 0640u);
}

TEST(CSVLoggerTest, WritesOneRowPerEpochWithExactValues) {
  const std::string path = TempDir("csv") + "/history.csv";
  Data data = MakeData();
  nn::Sequential model = CompiledModel();
  auto logger = nn::CSVLogger::Create(path);
  ASSERT_TRUE(logger.ok());
  auto history = model.Fit(data.x, data.y, {.epochs = 3, .validation_split = 0.25, .verbose = 0,
                                            .callbacks = {*logger}});
  ASSERT_TRUE(history.ok());
  std::vector<std::string> lines = absl::StrSplit(ReadText(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "epoch,accuracy,loss,val_accuracy,val_loss");
  const std::vector<std::string> columns = {"accuracy", "loss", "val_accuracy", "val_loss"};
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::string> cells = absl::StrSplit(lines[epoch + 1], ',');
    ASSERT_EQ(cells.size(), 5u);
    EXPECT_EQ(cells[0], std::to_string(epoch));
    for (size_t c = 0; c < columns.size(); ++c) {
      EXPECT_EQ(std::strtod(cells[c + 1].c_str(), nullptr), history->history.at(columns[c])[epoch])
          << "the shortest repr must read back to the same double: " << cells[c + 1];
    }
  }
}

TEST(CSVLoggerTest, AppendSeparatorAndMissingValues) {
  const std::string path = TempDir("append") + "/history.csv";
  nn::Sequential model = CompiledModel();
  auto logger = nn::CSVLogger::Create(path, {.separator = ';'});
  ASSERT_TRUE((*logger)->OnTrainBegin(model).ok());
  ASSERT_TRUE((*logger)->OnEpochEnd(model, 0, Fresh({{"loss", 0.5}, {"lr", 0.01}})).ok());
  ASSERT_TRUE((*logger)->OnEpochEnd(model, 1, Fresh({{"loss", 0.25}})).ok());
  EXPECT_EQ(ReadText(path), "epoch;loss;lr\n0;0.5;0.01\n1;0.25;NA\n");

  auto appender = nn::CSVLogger::Create(path, {.separator = ';', .append = true});
  ASSERT_TRUE((*appender)->OnTrainBegin(model).ok());
  ASSERT_TRUE((*appender)->OnEpochEnd(model, 0, Fresh({{"loss", 0.125}, {"lr", 1e-05}})).ok());
  EXPECT_EQ(ReadText(path), "epoch;loss;lr\n0;0.5;0.01\n1;0.25;NA\n0;0.125;1e-05\n");

  auto overwriter = nn::CSVLogger::Create(path);
  ASSERT_TRUE((*overwriter)->OnTrainBegin(model).ok());
  ASSERT_TRUE((*overwriter)->OnEpochEnd(model, 0, Fresh({{"loss", std::numeric_limits<double>::quiet_NaN()}})).ok());
  EXPECT_EQ(ReadText(path), "epoch,loss\n0,nan\n");
  EXPECT_FALSE(nn::CSVLogger::Create(path, {.separator = '\n'}).ok());
}

// ---------------------------------------------------------------- TerminateOnNaN

TEST(TerminateOnNaNTest, StopsFitAtTheFirstNonFiniteBatchLoss) {
  Data data = MakeData(96);
  data.x.data<float>()[4 * 40] = std::numeric_limits<float>::quiet_NaN();  // sample 40: batch 2
  // Linear hidden units: a ReLU could map NaN to 0 and hide it.
  nn::Sequential model({nn::Dense(8, {.input_shape = Shape{4}}), nn::Dense(2, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  auto history = model.Fit(data.x, data.y, {.epochs = 3, .batch_size = 32, .shuffle = false, .verbose = 0,
                                            .callbacks = {nn::TerminateOnNaN::Create()}});
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(history.status().message(), HasSubstr("TerminateOnNaN: epoch 1, batch 2: invalid loss nan"));
  EXPECT_TRUE(model.stop_training);

  // Finite losses pass untouched.
  nn::Sequential healthy = CompiledModel();
  Data clean = MakeData(96);
  EXPECT_TRUE(healthy.Fit(clean.x, clean.y, {.epochs = 2, .verbose = 0, .callbacks = {nn::TerminateOnNaN::Create()}}).ok());
  auto terminate = nn::TerminateOnNaN::Create();
  ASSERT_TRUE(terminate->OnEpochBegin(healthy, 4).ok());
  EXPECT_THAT(terminate->OnTrainBatchEnd(healthy, 0, Fresh({{"loss", INFINITY}})).message(),
              HasSubstr("epoch 5, batch 1: invalid loss inf"));
}

// ---------------------------------------------------------------- atomic writes

TEST(WriteFileAtomicallyTest, ReplacesTheFileAndLeavesNoTemporaryFile) {
  const std::string dir = TempDir("atomic");
  ASSERT_TRUE(nn::WriteFileAtomically(dir + "/a.txt", "first").ok());
  ASSERT_TRUE(nn::WriteFileAtomically(dir + "/a.txt", "second").ok());
  EXPECT_EQ(ReadText(dir + "/a.txt"), "second");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
  absl::Status missing_dir = nn::WriteFileAtomically(dir + "/missing/a.txt", "x");
  EXPECT_FALSE(missing_dir.ok());
  EXPECT_THAT(missing_dir.message(), HasSubstr("missing/a.txt"));
  fs::create_directories(dir + "/target_is_a_dir");
  EXPECT_FALSE(nn::WriteFileAtomically(dir + "/target_is_a_dir", "x").ok());
  files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1) << "a failed rename must remove its temporary file";
}

}  // namespace
}  // namespace gradflow
