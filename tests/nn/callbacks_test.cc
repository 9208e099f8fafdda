#include "nn/callbacks.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "tests/nn/callback_test_model.h"

namespace gradflow::nn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class Recorder : public Callback {
 public:
  absl::Status OnTrainBegin(Model&) override { return Add("train_begin"); }
  absl::Status OnEpochBegin(Model&, int e) override { return Add("epoch_begin " + std::to_string(e)); }
  absl::Status OnTrainBatchEnd(Model&, int64_t b, const Logs& logs) override {
    if (!logs.count("loss") || !logs.count("accuracy")) return absl::InternalError("batch logs");
    return Add("batch " + std::to_string(b));
  }
  absl::Status OnEpochEnd(Model&, int e, const Logs& logs) override {
    if (!logs.count("val_loss")) return absl::InternalError("epoch logs lack val_loss");
    return Add("epoch_end " + std::to_string(e));
  }
  absl::Status OnTrainEnd(Model&) override { return Add("train_end"); }
  std::vector<std::string> events;

 private:
  absl::Status Add(std::string e) {
    events.push_back(std::move(e));
    return absl::OkStatus();
  }
};

TEST(CallbacksTest, HooksRunInKerasOrder) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel();
  auto recorder = std::make_shared<Recorder>();
  auto history = model.Fit(x, y, {.epochs = 2, .batch_size = 32, .validation_split = 0.5,
                                  .verbose = 0, .callbacks = {recorder}});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_THAT(recorder->events,
              ElementsAre("train_begin", "epoch_begin 0", "batch 0", "epoch_end 0", "epoch_begin 1",
                          "batch 0", "epoch_end 1", "train_end"));
}

class StopAfter : public Callback {
 public:
  explicit StopAfter(int epoch) : epoch_(epoch) {}
  absl::Status OnEpochEnd(Model& model, int e, const Logs&) override {
    if (e == epoch_) model.stop_training = true;
    return absl::OkStatus();
  }

 private:
  int epoch_;
};

TEST(CallbacksTest, StopTrainingEndsFitAfterTheEpoch) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel();
  auto history = model.Fit(x, y, {.epochs = 10, .verbose = 0,
                                  .callbacks = {std::make_shared<StopAfter>(2)}});
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->history.at("loss").size(), 3u);
}

class Failing : public Callback {
 public:
  absl::Status OnEpochBegin(Model&, int) override {
    return absl::UnavailableError("disk full");
  }
};

TEST(CallbacksTest, ACallbackErrorStopsFit) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel();
  auto history = model.Fit(x, y, {.epochs = 3, .verbose = 0,
                                  .callbacks = {std::make_shared<Failing>()}});
  EXPECT_EQ(history.status().code(), absl::StatusCode::kUnavailable);
}

TEST(CallbacksTest, LearningRateAndWeightsCanBeReadAndChanged) {
  Sequential model = CompiledModel();
  ASSERT_NEAR(*model.learning_rate(), 0.1, 1e-7);
  ASSERT_TRUE(model.SetLearningRate(0.025).ok());
  EXPECT_NEAR(*model.learning_rate(), 0.025, 1e-7);
  EXPECT_FALSE(model.SetLearningRate(0).ok());

  auto weights = model.GetWeights();
  ASSERT_TRUE(weights.ok());
  EXPECT_EQ(weights->size(), 4u);  // two kernels, two biases
  Tensor x, y;
  MakeData(x, y);
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 1, .verbose = 0}).ok());
  auto trained = model.GetWeights();
  EXPECT_NE(trained->at("dense/kernel").ToVector<float>(), weights->at("dense/kernel").ToVector<float>());
  ASSERT_TRUE(model.SetWeights(*weights).ok());
  EXPECT_EQ(model.GetWeights()->at("dense/kernel").ToVector<float>(),
            weights->at("dense/kernel").ToVector<float>());
  auto bad = model.SetWeights({{"nope/kernel", Tensor(DType::kF32, {1})}});
  EXPECT_THAT(bad.message(), HasSubstr("nope/kernel"));
}

}  // namespace
}  // namespace gradflow::nn
