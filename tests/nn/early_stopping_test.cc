// Tests of nn/early_stopping.cc: Keras 3's EarlyStopping rules on scripted
// metric sequences (patience, min_delta, mode, baseline, restoring the best
// epoch's weights), called directly and once through Sequential::Fit.

#include "nn/early_stopping.h"

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"
#include "tests/nn/callback_test_model.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

Sequential CompiledModel() {
  Sequential model({Dense(3, {.activation = "relu", .input_shape = Shape{2}}),
                    Dense(2, {.activation = "softmax"})});
  EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.1}}).ok());
  return model;
}

// Weights whose every element is `marker`: they identify the epoch that set them.
std::map<std::string, Tensor> Marked(Model& model, float marker) {
  std::map<std::string, Tensor> weights = *model.GetWeights();
  for (auto& [name, t] : weights) {
    for (float& v : t.flat<float>()) v = marker;
  }
  return weights;
}

// One sigmoid output trained with binary cross-entropy: a model every
// metric fits, compiled with `metrics` for mode "auto" to read.
Sequential BinaryModel(std::vector<Metric> metrics) {
  Sequential model({Dense(3, {.activation = "relu", .input_shape = Shape{2}}),
                    Dense(1, {.activation = "sigmoid"})});
  EXPECT_TRUE(model.Compile({.loss = "binary_crossentropy", .optimizer = optimizers::SGD{.learning_rate = 0.1},
                             .metrics = std::move(metrics)})
                  .ok());
  return model;
}

float MarkerOf(Model& model) { return model.GetWeights()->at("dense/kernel").data<float>()[0]; }

struct Outcome {
  int epochs_run = 0;  // epochs whose end was reported before stopping
  int stopped_epoch = 0;
  int best_epoch = 0;
  float weights_marker = 0;  // which epoch's weights the model holds at the end
  double best = 0;
};

// Plays `values` of `monitor` as successive epochs; "training" sets the
// weights to the epoch number before each epoch end. With `metrics`, the
// model is a BinaryModel compiled with them.
Outcome Play(EarlyStoppingOptions options, const std::vector<double>& values, std::vector<Metric> metrics = {}) {
  Sequential model = metrics.empty() ? CompiledModel() : BinaryModel(std::move(metrics));
  auto es = EarlyStopping::Create(options);
  EXPECT_TRUE(es.ok()) << es.status();
  Outcome out;
  EXPECT_TRUE((*es)->OnTrainBegin(model).ok());
  model.stop_training = false;
  for (int epoch = 0; epoch < static_cast<int>(values.size()) && !model.stop_training; ++epoch) {
    EXPECT_TRUE(model.SetWeights(Marked(model, static_cast<float>(epoch))).ok());
    EXPECT_TRUE((*es)->OnEpochEnd(model, epoch, Fresh({{options.monitor, values[epoch]}, {"loss", 1.0}})).ok());
    out.epochs_run = epoch + 1;
  }
  EXPECT_TRUE((*es)->OnTrainEnd(model).ok());
  out.stopped_epoch = (*es)->stopped_epoch();
  out.best_epoch = (*es)->best_epoch();
  out.best = (*es)->best();
  out.weights_marker = MarkerOf(model);
  return out;
}

TEST(EarlyStoppingTest, StopsAfterPatienceEpochsAndRestoresTheBestEpoch) {
  Outcome o = Play({.patience = 2, .restore_best_weights = true},
                   {1.0, 0.8, 0.85, 0.9, 0.79, 0.7});
  EXPECT_EQ(o.epochs_run, 4);     // epochs 2 and 3 did not improve on 0.8
  EXPECT_EQ(o.stopped_epoch, 3);
  EXPECT_EQ(o.best_epoch, 1);
  EXPECT_EQ(o.weights_marker, 1.0f);  // epoch 1's weights are back
}

// Keras 3 restores the best epoch's weights at the end of training even when
// the run used all its epochs (on_train_end); tf.keras 2.x only when it
// stopped early (keras2_restore_only_on_stop).
TEST(EarlyStoppingTest, RestoresTheBestEpochAtTheEndOfAFullRun) {
  Outcome keras3 = Play({.patience = 3, .restore_best_weights = true}, {1.0, 0.8, 0.85, 0.9});
  EXPECT_EQ(keras3.stopped_epoch, 0);  // never stopped
  EXPECT_EQ(keras3.epochs_run, 4);
  EXPECT_EQ(keras3.weights_marker, 1.0f);  // epoch 1's weights (fails with the 2.x rule: 3)
  Outcome keras2 = Play({.patience = 3, .restore_best_weights = true, .keras2_restore_only_on_stop = true},
                        {1.0, 0.8, 0.85, 0.9});
  EXPECT_EQ(keras2.weights_marker, 3.0f);  // the last epoch's
  // Stopping early restores under both rules.
  Outcome stopped = Play({.patience = 2, .restore_best_weights = true, .keras2_restore_only_on_stop = true},
                         {1.0, 0.8, 0.85, 0.9, 0.79});
  EXPECT_EQ(stopped.stopped_epoch, 3);
  EXPECT_EQ(stopped.weights_marker, 1.0f);
}

TEST(EarlyStoppingTest, WithoutRestoreKeepsTheLastWeights) {
  Outcome o = Play({.patience = 2}, {1.0, 0.8, 0.85, 0.9, 0.79});
  EXPECT_EQ(o.stopped_epoch, 3);
  EXPECT_EQ(o.weights_marker, 3.0f);
}

TEST(EarlyStoppingTest, PatienceZeroStopsAtTheFirstNonImprovement) {
  Outcome o = Play({}, {1.0, 0.9, 0.95, 0.5});
  EXPECT_EQ(o.stopped_epoch, 2);
}

TEST(EarlyStoppingTest, MinDeltaIgnoresSmallImprovements) {
  // 0.95 is within 0.1 of 1.0: no improvement; 0.85 is one; 0.84, 0.83 are not.
  Outcome o = Play({.min_delta = 0.1, .patience = 2, .restore_best_weights = true},
                   {1.0, 0.95, 0.85, 0.84, 0.83, 0.5});
  EXPECT_EQ(o.stopped_epoch, 4);
  EXPECT_EQ(o.best_epoch, 2);
  EXPECT_EQ(o.weights_marker, 2.0f);
}

TEST(EarlyStoppingTest, AutoModeMaximizesAccuracy) {
  Outcome o = Play({.monitor = "val_accuracy", .patience = 1}, {0.5, 0.6, 0.6, 0.7}, {"accuracy"});
  EXPECT_EQ(o.stopped_epoch, 2);  // equal is no improvement
  EXPECT_EQ(o.best_epoch, 1);
  Outcome min = Play({.monitor = "val_accuracy", .patience = 1, .mode = "min"}, {0.5, 0.6, 0.7});
  EXPECT_EQ(min.stopped_epoch, 1);
}

// Issue 15: auto mode decided by the name ("acc" or "auc" in it: max)
// minimized precision and recall. Keras 3 asks the metric its direction.
TEST(EarlyStoppingTest, AutoModeMaximizesPrecisionAndAucAndRestoresTheHighest) {
  const std::vector<double> values = {0.5, 0.8, 0.7, 0.6, 0.9};
  // Max: 0.8 at epoch 1 is the best; 0.7 and 0.6 exhaust the patience of 2.
  Outcome precision = Play({.monitor = "val_precision", .patience = 2, .restore_best_weights = true}, values,
                           {"precision"});
  EXPECT_EQ(precision.stopped_epoch, 3);
  EXPECT_EQ(precision.best_epoch, 1);
  EXPECT_EQ(precision.best, 0.8);
  EXPECT_EQ(precision.weights_marker, 1.0f);  // epoch 1's weights are back
  Outcome auc = Play({.monitor = "auc", .patience = 2, .restore_best_weights = true}, values, {metrics::AUC{}});
  EXPECT_EQ(auc.best_epoch, 1);
  EXPECT_EQ(auc.best, 0.8);
  EXPECT_EQ(auc.weights_marker, 1.0f);
  Outcome recall = Play({.monitor = "val_recall", .patience = 5}, values, {"accuracy", "recall"});
  EXPECT_EQ(recall.best_epoch, 4);
  EXPECT_EQ(recall.best, 0.9);
}

TEST(EarlyStoppingTest, AutoModeMinimizesErrors) {
  Outcome o = Play({.monitor = "mae", .patience = 1, .restore_best_weights = true}, {0.5, 0.3, 0.4, 0.2}, {"mae"});
  EXPECT_EQ(o.stopped_epoch, 2);
  EXPECT_EQ(o.best_epoch, 1);
  EXPECT_EQ(o.best, 0.3);
  EXPECT_EQ(o.weights_marker, 1.0f);
}

TEST(EarlyStoppingTest, AutoModeWithAnUnknownMonitorIsAnErrorAtTrainBegin) {
  Sequential model = BinaryModel({"accuracy", "auc"});
  auto es = EarlyStopping::Create({.monitor = "val_f1"});
  ASSERT_TRUE(es.ok()) << es.status();  // the metrics are known once the model is compiled
  absl::Status s = (*es)->OnTrainBegin(model);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("EarlyStopping: mode \"auto\" cannot tell whether monitor 'val_f1'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("(accuracy, auc)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("pass mode \"max\""));
  // The fix it names works.
  auto max = EarlyStopping::Create({.monitor = "val_f1", .mode = "max"});
  EXPECT_TRUE((*max)->OnTrainBegin(model).ok());
}

TEST(EarlyStoppingTest, BaselineKeepsThePatienceRunningUntilBeaten) {
  // Keras: improvements that do not beat the baseline do not reset the wait.
  Outcome with = Play({.patience = 2, .baseline = 0.5}, {0.9, 0.8, 0.85, 0.4});
  EXPECT_EQ(with.stopped_epoch, 2);
  Outcome without = Play({.patience = 2}, {0.9, 0.8, 0.85, 0.4});
  EXPECT_EQ(without.stopped_epoch, 0);
  EXPECT_EQ(without.epochs_run, 4);
}

TEST(EarlyStoppingTest, NothingEverImprovesRestoresTheFirstEpoch) {
  Outcome o = Play({.patience = 1, .restore_best_weights = true},
                   {std::nan(""), std::nan(""), std::nan("")});
  EXPECT_EQ(o.stopped_epoch, 1);
  EXPECT_EQ(o.weights_marker, 0.0f);
}

TEST(EarlyStoppingTest, Errors) {
  EXPECT_THAT(std::string(EarlyStopping::Create({.mode = "maximum"}).status().message()),
              HasSubstr("mode must be"));
  EXPECT_FALSE(EarlyStopping::Create({.patience = -1}).ok());
  Sequential model = CompiledModel();
  auto es = EarlyStopping::Create({});
  ASSERT_TRUE((*es)->OnTrainBegin(model).ok());
  absl::Status s = (*es)->OnEpochEnd(model, 0, Fresh({{"loss", 1.0}}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("no 'val_loss' (available: loss)"));
}

// Through Fit: the model trains for real while a wrapper feeds EarlyStopping
// a scripted val_loss; a recorder before it keeps every epoch's weights.
class ScriptedMonitor : public Callback {
 public:
  ScriptedMonitor(std::shared_ptr<EarlyStopping> es, std::vector<double> values)
      : es_(std::move(es)), values_(std::move(values)) {}
  absl::Status OnTrainBegin(Model& m) override { return es_->OnTrainBegin(m); }
  absl::Status OnEpochEnd(Model& m, int epoch, Logs& logs) override {
    Logs scripted = logs;
    scripted["val_loss"] = values_[epoch];
    return es_->OnEpochEnd(m, epoch, scripted);
  }
  absl::Status OnTrainEnd(Model& m) override { return es_->OnTrainEnd(m); }

 private:
  std::shared_ptr<EarlyStopping> es_;
  std::vector<double> values_;
};

class WeightRecorder : public Callback {
 public:
  absl::Status OnEpochEnd(Model& m, int, Logs&) override {
    weights.push_back(*m.GetWeights());
    return absl::OkStatus();
  }
  std::vector<std::map<std::string, Tensor>> weights;
};

TEST(EarlyStoppingTest, StopsFitAndRestoresTheBestEpochsWeights) {
  Tensor x(DType::kF32, {64, 2}), y(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) {
    x.data<float>()[2 * i] = (i % 2 ? 1.0f : -1.0f) * (0.5f + 0.01f * i);
    x.data<float>()[2 * i + 1] = 0.1f * (i % 7);
    y.data<int32_t>()[i] = i % 2;
  }
  Sequential model = CompiledModel();
  auto es = EarlyStopping::Create({.patience = 2, .restore_best_weights = true});
  ASSERT_TRUE(es.ok());
  auto recorder = std::make_shared<WeightRecorder>();
  auto history = model.Fit(
      x, y,
      {.epochs = 10, .batch_size = 16, .verbose = 0,
       .callbacks = {recorder, std::make_shared<ScriptedMonitor>(
                                   *es, std::vector<double>{0.9, 0.7, 0.6, 0.65, 0.61, 0.5, 0.4})}});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->history.at("loss").size(), 5u);  // epochs 0..4; stopped at 4
  EXPECT_EQ((*es)->stopped_epoch(), 4);
  EXPECT_EQ((*es)->best_epoch(), 2);
  ASSERT_EQ(recorder->weights.size(), 5u);
  std::map<std::string, Tensor> now = *model.GetWeights();
  for (const auto& [name, value] : recorder->weights[2]) {
    EXPECT_EQ(now.at(name).ToVector<float>(), value.ToVector<float>()) << name;
  }
  EXPECT_NE(now.at("dense/kernel").ToVector<float>(),
            recorder->weights[4].at("dense/kernel").ToVector<float>());  // training moved them
}

}  // namespace
}  // namespace gradflow::nn
