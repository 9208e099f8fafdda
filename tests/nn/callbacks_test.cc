#include "nn/callbacks.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/status.h"
#include "nn/model.h"
#include "tests/nn/callback_test_model.h"

namespace gradflow::nn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records every hook, checking each sees the logs Keras gives it.
class Recorder : public Callback {
 public:
  absl::Status OnTrainBegin(Model&) override { return Add("train_begin"); }
  absl::Status OnEpochBegin(Model&, int e) override { return Add("epoch_begin " + std::to_string(e)); }
  absl::Status OnTrainBatchBegin(Model&, int64_t b) override { return Add("train_batch_begin " + std::to_string(b)); }
  absl::Status OnTrainBatchEnd(Model&, int64_t b, Logs& logs) override {
    if (!logs.count("loss") || !logs.count("accuracy")) return absl::InternalError("batch logs");
    return Add("train_batch_end " + std::to_string(b));
  }
  absl::Status OnEpochEnd(Model&, int e, Logs& logs) override {
    if (!logs.count("val_loss")) return absl::InternalError("epoch logs lack val_loss");
    return Add("epoch_end " + std::to_string(e));
  }
  absl::Status OnTrainEnd(Model&) override { return Add("train_end"); }
  absl::Status OnTestBegin(Model&) override { return Add("test_begin"); }
  absl::Status OnTestBatchBegin(Model&, int64_t b) override { return Add("test_batch_begin " + std::to_string(b)); }
  absl::Status OnTestBatchEnd(Model&, int64_t b, Logs& logs) override {
    if (!logs.count("loss") || logs.count("val_loss")) return absl::InternalError("test logs are unprefixed");
    return Add("test_batch_end " + std::to_string(b));
  }
  absl::Status OnTestEnd(Model&, Logs& logs) override {
    if (!logs.count("accuracy")) return absl::InternalError("test logs");
    return Add("test_end");
  }
  absl::Status OnPredictBegin(Model&) override { return Add("predict_begin"); }
  absl::Status OnPredictBatchBegin(Model&, int64_t b) override {
    return Add("predict_batch_begin " + std::to_string(b));
  }
  absl::Status OnPredictBatchEnd(Model&, int64_t b, const std::vector<Tensor>& outputs) override {
    return Add(absl::StrCat("predict_batch_end ", b, " ", outputs.at(0).shape().ToString()));
  }
  absl::Status OnPredictEnd(Model&) override { return Add("predict_end"); }
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
  const std::vector<std::string> validation = {"test_begin", "test_batch_begin 0", "test_batch_end 0", "test_end"};
  std::vector<std::string> expected = {"train_begin"};
  for (int e = 0; e < 2; ++e) {
    std::vector<std::string> epoch = {absl::StrCat("epoch_begin ", e), "train_batch_begin 0", "train_batch_end 0"};
    epoch.insert(epoch.end(), validation.begin(), validation.end());
    epoch.push_back(absl::StrCat("epoch_end ", e));
    expected.insert(expected.end(), epoch.begin(), epoch.end());
  }
  expected.push_back("train_end");
  EXPECT_EQ(recorder->events, expected);
}

TEST(CallbacksTest, EvaluateAndPredictCallTheirHooks) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel();
  auto recorder = std::make_shared<Recorder>();
  ASSERT_TRUE(model.Evaluate(x, y, {.batch_size = 40, .callbacks = {recorder}}).ok());
  ASSERT_TRUE(model.Predict(x, {.batch_size = 40, .callbacks = {recorder}}).ok());
  EXPECT_THAT(recorder->events,
              ElementsAre("test_begin", "test_batch_begin 0", "test_batch_end 0", "test_batch_begin 1",
                          "test_batch_end 1", "test_end", "predict_begin", "predict_batch_begin 0",
                          "predict_batch_end 0 [40, 2]", "predict_batch_begin 1", "predict_batch_end 1 [24, 2]",
                          "predict_end"));
}

// The chapter's exponential decay as a callback: the rate shrinks before
// every batch (on_batch_begin) and each epoch logs it (logs["lr"] = ...).
class ExponentialDecay : public nn::Callback {
 public:
  explicit ExponentialDecay(double s) : s_(s) {}
  absl::Status OnTrainBatchBegin(nn::Model& model, int64_t) override {
    GF_ASSIGN_OR_RETURN(const double lr, model.learning_rate());
    return model.SetLearningRate(lr * std::pow(0.1, 1 / s_));
  }
  absl::Status OnEpochEnd(nn::Model& model, int, nn::Logs& logs) override {
    GF_ASSIGN_OR_RETURN(logs["lr"], model.learning_rate());  // history.history["lr"]
    return absl::OkStatus();
  }

 private:
  double s_;
};

// Sees what the callbacks before it added.
class LogReader : public Callback {
 public:
  absl::Status OnEpochEnd(Model&, int, Logs& logs) override {
    seen.push_back(logs.count("lr") ? logs.at("lr") : -1);
    return absl::OkStatus();
  }
  absl::Status OnTestEnd(Model&, Logs& logs) override {
    logs["loss"] = 123;  // Evaluate returns what OnTestEnd leaves
    return absl::OkStatus();
  }
  std::vector<double> seen;
};

TEST(CallbacksTest, LogsAreMutableAndTheHistoryRecordsWhatCallbacksAdd) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto reader = std::make_shared<LogReader>();
  auto history = model.Fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 0,
                                  .callbacks = {std::make_shared<ExponentialDecay>(8), reader}});
  ASSERT_TRUE(history.ok()) << history.status();
  const std::vector<double>& lr = history->history.at("lr");
  ASSERT_EQ(lr.size(), 3u);
  for (int e = 0; e < 3; ++e) {  // 4 batches an epoch, each decays by 0.1^(1/8)
    EXPECT_NEAR(lr[e], 0.1 * std::pow(0.1, 4.0 * (e + 1) / 8), 1e-7) << e;
    EXPECT_EQ(reader->seen[e], lr[e]);
  }
  EXPECT_EQ(history->history.at("loss").size(), 3u);
  auto evaluated = model.Evaluate(x, y, {.callbacks = {reader}});
  ASSERT_TRUE(evaluated.ok());
  EXPECT_EQ(evaluated->at("loss"), 123);
}

class StopAfter : public Callback {
 public:
  explicit StopAfter(int epoch) : epoch_(epoch) {}
  absl::Status OnEpochEnd(Model& model, int e, Logs&) override {
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

// Stops training at the first batch and counts the validation's batches.
class StopAtFirstBatch : public Callback {
 public:
  absl::Status OnTrainBatchEnd(Model& model, int64_t, Logs&) override {
    model.stop_training = true;
    return absl::OkStatus();
  }
  absl::Status OnTestBatchEnd(Model&, int64_t, Logs&) override {
    ++test_batches;
    return absl::OkStatus();
  }
  int test_batches = 0;
};

TEST(CallbacksTest, StopTrainingInABatchStillValidatesOnEveryValidationBatch) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel();
  auto stop = std::make_shared<StopAtFirstBatch>();
  auto history = model.Fit(x, y, {.epochs = 3, .batch_size = 16, .validation_data = ValidationData{x, y},
                                  .verbose = 0, .callbacks = {stop}});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->history.at("val_loss").size(), 1u);
  EXPECT_EQ(stop->test_batches, 4);  // all 64 validation samples, not only the first batch
  auto evaluated = model.Evaluate(x, y, 64);
  ASSERT_TRUE(evaluated.ok());
  EXPECT_NEAR(history->history.at("val_loss")[0], evaluated->at("loss"), 1e-6);
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
