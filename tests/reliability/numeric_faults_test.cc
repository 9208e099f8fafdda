// Numeric faults in training: a diverging run (learning rate 1e3) stops Fit
// with an error that says where and what to do, CompileOptions::check_numerics
// names the node, and the checkpoint saved before the divergence survives.

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"
#include "nn/checkpoint_callbacks.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow {
namespace {

using testing_util::TempDir;

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

constexpr int64_t kSamples = 256;
constexpr int64_t kBatch = 32;  // 8 batches per epoch
constexpr double kDivergingRate = 1e3;
constexpr double kSaneRate = 0.01;

struct Data {
  Tensor x, y;
};

Data MakeData() {
  Data d{Tensor(DType::kF32, {kSamples, 8}), Tensor(DType::kI32, {kSamples})};
  Rng rng(11);
  for (int64_t i = 0; i < kSamples; ++i) {
    const int label = static_cast<int>(i % 3);
    d.y.data<int32_t>()[i] = label;
    for (int k = 0; k < 8; ++k) d.x.data<float>()[8 * i + k] = static_cast<float>(label + rng.Normal());
  }
  return d;
}

nn::Sequential Model(double rate, bool check_numerics = false) {
  nn::Sequential model({nn::Dense(32, {.activation = "relu", .input_shape = Shape{8}}),
                        nn::Dense(32, {.activation = "relu"}), nn::Dense(3, {.activation = "softmax"})});
  absl::Status s = model.Compile({.optimizer = optimizers::SGD{.learning_rate = rate},
                                  .check_numerics = check_numerics});
  EXPECT_TRUE(s.ok()) << s;
  return model;
}

bool AllFinite(const std::map<std::string, Tensor>& weights) {
  for (const auto& [name, value] : weights) {
    for (float w : value.flat<float>()) {
      if (!std::isfinite(w)) return false;
    }
  }
  return true;
}

TEST(NumericFaultsTest, TooLargeLearningRateStopsFitWithWhereAndWhatToDo) {
  Data d = MakeData();
  nn::Sequential model = Model(kDivergingRate);
  auto history = model.Fit(d.x, d.y, {.epochs = 20, .batch_size = kBatch, .verbose = 0});
  ASSERT_FALSE(history.ok()) << "lr 1e3 must diverge";
  EXPECT_EQ(history.status().code(), absl::StatusCode::kAborted);
  const std::string msg(history.status().message());
  EXPECT_THAT(msg, ContainsRegex("Fit: the loss became (NaN|Inf) at epoch [0-9]+, batch [1-8] of 8: "
                                 "training diverged and was stopped"));
  EXPECT_THAT(msg, AllOf(HasSubstr("Lower the learning rate (now 1000)"),
                         HasSubstr("optimizers::ClipByGlobalNorm(1.0)"), HasSubstr("check_numerics")));
  std::printf("lr 1e3: %s\n", msg.c_str());

  // The same model with a sane rate trains through: no false alarm.
  nn::Sequential sane = Model(kSaneRate);
  EXPECT_TRUE(sane.Fit(d.x, d.y, {.epochs = 3, .batch_size = kBatch, .verbose = 0}).ok());
}

TEST(NumericFaultsTest, CheckNumericsNamesTheFirstNodeThatOverflowed) {
  Data d = MakeData();
  nn::Sequential model = Model(kDivergingRate, /*check_numerics=*/true);
  auto history = model.Fit(d.x, d.y, {.epochs = 20, .batch_size = kBatch, .verbose = 0});
  ASSERT_FALSE(history.ok());
  const std::string msg(history.status().message());
  // It stops earlier than the loss check, at the node, with its op and shape.
  EXPECT_THAT(msg, ContainsRegex("CheckNumerics: node '[^']+' \\(op [A-Za-z]+\\) produced "
                                 "(NaN|[+-]Inf) at element [0-9]+"));
  EXPECT_THAT(msg, ContainsRegex("f32\\[[0-9, ]+\\]"));
  std::printf("check_numerics: %s\n", msg.c_str());
}

TEST(NumericFaultsTest, KeepTrainingThroughNanIsAnExplicitOption) {
  Data d = MakeData();
  nn::Sequential model = Model(kDivergingRate);
  auto history = model.Fit(d.x, d.y, {.epochs = 3, .batch_size = kBatch, .verbose = 0,
                                      .keep_training_through_nan = true});
  ASSERT_TRUE(history.ok()) << history.status();  // as Keras without TerminateOnNaN
  const std::vector<double>& loss = history->history.at("loss");
  ASSERT_EQ(loss.size(), 3u);  // every epoch ran, and History shows the NaN
  EXPECT_FALSE(std::isfinite(loss.back()));
}

TEST(NumericFaultsTest, TerminateOnNaNCallbackReportsFirstWhenGiven) {
  Data d = MakeData();
  nn::Sequential model = Model(kDivergingRate);
  auto history = model.Fit(d.x, d.y, {.epochs = 20, .batch_size = kBatch, .verbose = 0,
                                      .callbacks = {nn::TerminateOnNaN::Create()}});
  EXPECT_EQ(history.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(history.status().message()), HasSubstr("TerminateOnNaN: epoch "));
}

// A run checkpointed every epoch, then diverging: the error comes before the
// epoch ends, so the file still holds the last good epoch.
TEST(NumericFaultsTest, DivergenceLeavesTheLastGoodCheckpointIntact) {
  const std::string path = TempDir("last_good") + "/model.safetensors";
  Data d = MakeData();
  nn::Sequential model = Model(kSaneRate);
  auto checkpoint = nn::ModelCheckpoint::Create(path);  // every epoch, with the optimizer
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ASSERT_TRUE(model.Fit(d.x, d.y, {.epochs = 2, .batch_size = kBatch, .verbose = 0,
                                   .callbacks = {*checkpoint}}).ok());
  auto good = model.GetWeights();
  ASSERT_TRUE(good.ok());

  ASSERT_TRUE(model.SetLearningRate(kDivergingRate).ok());
  auto diverged = model.Fit(d.x, d.y, {.epochs = 20, .batch_size = kBatch, .verbose = 0,
                                       .callbacks = {*checkpoint}});
  ASSERT_FALSE(diverged.ok());
  // It diverges within its first epoch, before that epoch's save.
  ASSERT_THAT(std::string(diverged.status().message()), HasSubstr("the loss became NaN at epoch 1,"));
  EXPECT_FALSE(AllFinite(*model.GetWeights()));

  auto restored = nn::LoadModel(path);
  ASSERT_TRUE(restored.ok()) << restored.status();
  auto weights = restored->GetWeights();
  ASSERT_TRUE(weights.ok());
  ASSERT_EQ(weights->size(), good->size());
  for (const auto& [name, value] : *good) {
    EXPECT_EQ(value.ToVector<float>(), weights->at(name).ToVector<float>()) << name;
  }
}

}  // namespace
}  // namespace gradflow
