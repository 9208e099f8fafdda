// Tests of nn/lr_callbacks.cc: ReduceLROnPlateau driven with a scripted
// sequence of validation losses reduces the rate at exactly the epochs Keras's
// algorithm does (derived by hand below); the same through Fit with real
// metrics; LearningRateScheduler sets each epoch's rate before it trains; both
// refuse a model whose rate follows a step schedule; option errors.

#include "nn/lr_callbacks.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/status.h"
#include "nn/model.h"
#include "tests/nn/callback_test_model.h"

namespace gradflow::nn {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The learning-rate variable is f32: compare rates to f32 precision.
constexpr double kRateTolerance = 1e-7;

TEST(ReduceLROnPlateauTest, ScriptedValidationLossesReduceAtTheRightEpochs) {
  // patience 2, factor 0.5, min_delta 0.01, cooldown 1, min_lr 0.1, rate 1.0.
  // Keras's on_epoch_end, epoch by epoch (best starts at +inf, mode min):
  //  e0 1.000  improves (best 1.0)                                   wait 0
  //  e1 0.995  not < 0.99                                             wait 1
  //  e2 0.990  not < 0.99                   wait 2 -> rate 0.5, cooldown 1, wait 0
  //  e3 0.980  cooldown 1 -> 0, wait 0; 0.98 < 0.99 improves (best 0.98)
  //  e4 0.985  not < 0.97                                             wait 1
  //  e5 0.975  not < 0.97                   wait 2 -> rate 0.25, cooldown 1
  //  e6 1.200  cooldown -> 0, wait 0; no improvement, not in cooldown wait 1
  //  e7 1.300                               wait 2 -> rate max(0.125, 0.1) = 0.125
  //  e8 1.300  cooldown -> 0; wait 1
  //  e9 1.300                               wait 2 -> rate max(0.0625, 0.1) = 0.1
  //  e10 1.300 cooldown -> 0; wait 1
  //  e11 1.300 wait 2, but the rate is already min_lr: no change (wait stays)
  //  e12 0.500 improves (best 0.5)                                    wait 0
  const std::vector<double> val_loss = {1.0, 0.995, 0.99, 0.98, 0.985, 0.975, 1.2, 1.3, 1.3, 1.3, 1.3, 1.3, 0.5};
  const std::vector<double> expected_rate = {1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1};
  Sequential model = CompiledModel(1.0);
  auto plateau = ReduceLROnPlateau::Create(
      {.factor = 0.5, .patience = 2, .min_delta = 0.01, .cooldown = 1, .min_lr = 0.1});
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  ASSERT_TRUE((*plateau)->OnTrainBegin(model).ok());
  for (size_t e = 0; e < val_loss.size(); ++e) {
    ASSERT_TRUE((*plateau)->OnEpochEnd(model, static_cast<int>(e), Fresh({{"loss", 9.0}, {"val_loss", val_loss[e]}})).ok());
    EXPECT_NEAR(*model.learning_rate(), expected_rate[e], kRateTolerance) << "after epoch " << e;
  }
  EXPECT_THAT((*plateau)->reductions(), ElementsAre(2, 5, 7, 9));
  EXPECT_EQ((*plateau)->best(), 0.5);
  EXPECT_EQ((*plateau)->wait(), 0);
}

TEST(ReduceLROnPlateauTest, AccuracyIsMaximizedAndPatienceZeroReducesAtOnce) {
  // mode auto + "val_accuracy" -> max. patience 0: every epoch that does not
  // improve reduces (wait becomes 1 >= 0).
  Sequential model = CompiledModel(0.8);
  auto plateau = ReduceLROnPlateau::Create({.monitor = "val_accuracy", .factor = 0.5, .patience = 0});
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  ASSERT_TRUE((*plateau)->OnTrainBegin(model).ok());
  const std::vector<double> accuracy = {0.5, 0.6, 0.6, 0.55, 0.7};
  for (size_t e = 0; e < accuracy.size(); ++e) {
    ASSERT_TRUE((*plateau)->OnEpochEnd(model, static_cast<int>(e), Fresh({{"val_accuracy", accuracy[e]}})).ok());
  }
  EXPECT_THAT((*plateau)->reductions(), ElementsAre(2, 3));
  EXPECT_NEAR(*model.learning_rate(), 0.2, kRateTolerance);
}

// Issue 15: "val_recall" has no "acc" in it, so the name rule minimized it.
// Mode "auto" asks the compiled metric, which goes up.
TEST(ReduceLROnPlateauTest, AutoModeMaximizesRecall) {
  Sequential model({Dense(4, {.activation = "relu", .input_shape = Shape{2}}), Dense(1, {.activation = "sigmoid"})});
  ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .optimizer = optimizers::SGD{.learning_rate = 0.8},
                             .metrics = {"recall"}})
                  .ok());
  auto plateau = ReduceLROnPlateau::Create({.monitor = "val_recall", .factor = 0.5, .patience = 0});
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  ASSERT_TRUE((*plateau)->OnTrainBegin(model).ok());
  const std::vector<double> recall = {0.5, 0.6, 0.6, 0.55, 0.7};
  for (size_t e = 0; e < recall.size(); ++e) {
    ASSERT_TRUE((*plateau)->OnEpochEnd(model, static_cast<int>(e), Fresh({{"val_recall", recall[e]}})).ok());
  }
  EXPECT_THAT((*plateau)->reductions(), ElementsAre(2, 3));  // minimizing: 1, 2, 3, 4
  EXPECT_EQ((*plateau)->best(), 0.7);
  EXPECT_NEAR(*model.learning_rate(), 0.2, kRateTolerance);
}

TEST(ReduceLROnPlateauTest, AutoModeWithAnUnknownMonitorFailsFitBeforeTraining) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto plateau = ReduceLROnPlateau::Create({.monitor = "val_f1"});
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  auto history = model.Fit(x, y, {.epochs = 2, .verbose = 0, .callbacks = {*plateau}});
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(history.status().message(), HasSubstr("ReduceLROnPlateau: mode \"auto\" cannot tell whether monitor 'val_f1'"));
  EXPECT_THAT(history.status().message(), HasSubstr("(accuracy)"));
  EXPECT_THAT(history.status().message(), HasSubstr("mode \"min\""));
}

TEST(ReduceLROnPlateauTest, ThroughFitWithRealMetrics) {
  // min_delta so large that only the first epoch counts as an improvement:
  // with patience 0 every later epoch reduces the rate.
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto plateau = ReduceLROnPlateau::Create({.monitor = "loss", .factor = 0.5, .patience = 0, .min_delta = 1e9});
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  auto history = model.Fit(x, y, {.epochs = 4, .verbose = 0, .callbacks = {*plateau}});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_THAT((*plateau)->reductions(), ElementsAre(1, 2, 3));
  EXPECT_NEAR(*model.learning_rate(), 0.1 * 0.125, kRateTolerance);
}

TEST(ReduceLROnPlateauTest, MissingMonitorIsAnErrorThatNamesTheLogs) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto plateau = ReduceLROnPlateau::Create();
  ASSERT_TRUE(plateau.ok());
  auto history = model.Fit(x, y, {.epochs = 2, .verbose = 0, .callbacks = {*plateau}});
  ASSERT_FALSE(history.ok());
  EXPECT_THAT(history.status().message(), HasSubstr("no 'val_loss' (available: accuracy, learning_rate, loss)"));
  EXPECT_THAT(history.status().message(), HasSubstr("validation_data"));
}

TEST(ReduceLROnPlateauTest, BadOptionsAreErrors) {
  EXPECT_THAT(ReduceLROnPlateau::Create({.factor = 1.0}).status().message(), HasSubstr("factor must be in (0, 1)"));
  EXPECT_THAT(ReduceLROnPlateau::Create({.mode = "down"}).status().message(), HasSubstr("mode must be"));
  EXPECT_THAT(ReduceLROnPlateau::Create({.patience = -1}).status().message(), HasSubstr("patience and cooldown"));
  EXPECT_THAT(ReduceLROnPlateau::Create({.min_lr = -1}).status().message(), HasSubstr("min_delta and min_lr"));
}

// A recorder placed after the scheduler sees the rate each epoch trains with.
class RateRecorder : public Callback {
 public:
  absl::Status OnEpochBegin(Model& model, int) override {
    auto rate = model.learning_rate();
    if (!rate.ok()) return rate.status();
    rates.push_back(*rate);
    return absl::OkStatus();
  }
  std::vector<double> rates;
};

TEST(LearningRateSchedulerTest, SetsEachEpochsRateBeforeItTrains) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  // The chapter's exponential_decay_fn(epoch) = lr0 * 0.1^(epoch / s), s = 2.
  auto scheduler = LearningRateScheduler::Create([](int epoch, double) { return 0.01 * std::pow(0.1, epoch / 2.0); });
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto recorder = std::make_shared<RateRecorder>();
  auto history = model.Fit(x, y, {.epochs = 3, .verbose = 0, .callbacks = {*scheduler, recorder}});
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(recorder->rates.size(), 3u);
  const double expected[] = {0.01, 0.01 * std::pow(0.1, 0.5), 0.001};
  for (int e = 0; e < 3; ++e) EXPECT_NEAR(recorder->rates[e], expected[e], kRateTolerance) << e;
  // Keras 3 logs the rate as "learning_rate", so the History has it.
  const std::vector<double>& logged = history->history.at("learning_rate");
  ASSERT_EQ(logged.size(), 3u);
  for (int e = 0; e < 3; ++e) EXPECT_NEAR(logged[e], expected[e], kRateTolerance) << e;
}

TEST(LearningRateSchedulerTest, Tfkeras2sLogKeyIsAnOption) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto scheduler = LearningRateScheduler::Create([](int, double) { return 0.05; }, 0, "lr");
  auto plateau = ReduceLROnPlateau::Create({.monitor = "loss", .log_key = "lr"});
  ASSERT_TRUE(scheduler.ok() && plateau.ok());
  auto history = model.Fit(x, y, {.epochs = 2, .verbose = 0, .callbacks = {*scheduler, *plateau}});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->history.count("learning_rate"), 0u);
  EXPECT_THAT(history->history.at("lr"), ElementsAre(DoubleNear(0.05, kRateTolerance), DoubleNear(0.05, kRateTolerance)));
}

TEST(LearningRateSchedulerTest, ScheduleSeesTheCurrentRate) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.4);
  auto halve = LearningRateScheduler::Create([](int, double lr) { return lr / 2; });
  ASSERT_TRUE(halve.ok());
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 3, .verbose = 0, .callbacks = {*halve}}).ok());
  EXPECT_NEAR(*model.learning_rate(), 0.05, kRateTolerance);
}

TEST(LearningRateSchedulerTest, NonPositiveRateIsAnError) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1);
  auto zero = LearningRateScheduler::Create([](int epoch, double) { return epoch == 1 ? 0.0 : 0.1; });
  ASSERT_TRUE(zero.ok());
  auto history = model.Fit(x, y, {.epochs = 3, .verbose = 0, .callbacks = {*zero}});
  ASSERT_FALSE(history.ok());
  EXPECT_THAT(history.status().message(), HasSubstr("the schedule returned 0 for epoch 1"));
  EXPECT_FALSE(LearningRateScheduler::Create(nullptr).ok());
}

TEST(LrCallbacksTest, StepScheduleAndRateCallbacksDoNotMix) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(0.1, optimizers::ExponentialDecay{.initial_learning_rate = 0.1, .decay_steps = 10});
  ASSERT_TRUE(model.graph()->FindNode(optimizers::kScheduledLearningRateName) != nullptr);
  auto plateau = ReduceLROnPlateau::Create({.monitor = "loss"});
  auto scheduler = LearningRateScheduler::Create([](int, double lr) { return lr; });
  for (CallbackPtr callback : {CallbackPtr(*plateau), CallbackPtr(*scheduler)}) {
    auto history = model.Fit(x, y, {.epochs = 1, .verbose = 0, .callbacks = {callback}});
    ASSERT_FALSE(history.ok());
    EXPECT_EQ(history.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(history.status().message(), HasSubstr("follows a step schedule"));
  }
  // The model's own accessors say why too, and setting creates nothing.
  EXPECT_THAT(model.learning_rate().status().message(), HasSubstr("'exponential' schedule"));
  EXPECT_FALSE(model.SetLearningRate(0.5).ok());
  EXPECT_FALSE(model.session()->variables().Has(optimizers::kLearningRateName));
  // Training with the schedule alone works.
  EXPECT_TRUE(model.Fit(x, y, {.epochs = 1, .verbose = 0}).ok());
  // The scheduled rate is readable: the schedule at the step counter.
  const int64_t steps = *model.session()->variables().Get(optimizers::kStepName)->data<int64_t>();
  ASSERT_GT(steps, 0);
  auto want = optimizers::ScheduleValues(optimizers::ExponentialDecay{.initial_learning_rate = 0.1, .decay_steps = 10},
                                         steps + 1);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<double> current = model.CurrentLearningRate();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(*current, want->back());
  EXPECT_LT(*current, 0.1);
}

// nn/README.md's learning-rate finder (Géron's ExponentialLearningRate),
// word for word: the rate grows by `factor` after every batch; each batch's
// loss and rate are recorded; training stops once the loss explodes.
class ExponentialLearningRate : public nn::Callback {
 public:
  explicit ExponentialLearningRate(double factor) : factor_(factor) {}
  absl::Status OnEpochBegin(nn::Model&, int) override {
    sum_of_epoch_losses_ = 0;
    return absl::OkStatus();
  }
  absl::Status OnTrainBatchEnd(nn::Model& model, int64_t batch, nn::Logs& logs) override {
    const double sum = logs.at("loss") * (batch + 1);  // logs hold the epoch's mean so far
    const double batch_loss = sum - sum_of_epoch_losses_;
    sum_of_epoch_losses_ = sum;
    GF_ASSIGN_OR_RETURN(const double rate, model.learning_rate());
    rates.push_back(rate);
    losses.push_back(batch_loss);
    if (!std::isfinite(batch_loss) || batch_loss > 4 * *std::min_element(losses.begin(), losses.end())) {
      model.stop_training = true;  // the loss exploded: Fit ends after this batch
      return absl::OkStatus();
    }
    return model.SetLearningRate(rate * factor_);
  }
  std::vector<double> rates, losses;

 private:
  double factor_;
  double sum_of_epoch_losses_ = 0;
};

TEST(LrFinderTest, TheReadmesFinderGrowsTheRateStopsOnExplosionAndReturnsTheHistory) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model = CompiledModel(1e-4);
  // From 1e-4 to 1e4 over about 64 batches of 1 (at most 3 epochs).
  auto finder = std::make_shared<ExponentialLearningRate>(std::exp(std::log(1e8) / 64));
  absl::StatusOr<History> history = model.Fit(x, y, {.epochs = 3, .batch_size = 1, .verbose = 0, .callbacks = {finder}});
  ASSERT_TRUE(history.ok()) << history.status();  // no Aborted, even if the last loss was NaN
  ASSERT_FALSE(finder->rates.empty());
  EXPECT_EQ(finder->rates.size(), finder->losses.size());
  for (size_t i = 1; i < finder->rates.size(); ++i) EXPECT_GT(finder->rates[i], finder->rates[i - 1]);
  // It stopped because the loss exploded, before the rate reached its end.
  const double last = finder->losses.back();
  EXPECT_TRUE(!std::isfinite(last) || last > 4 * *std::min_element(finder->losses.begin(), finder->losses.end()));
  EXPECT_LT(finder->rates.size(), 3u * 64u);
  EXPECT_GE(history->history.at("loss").size(), 1u);
}

}  // namespace
}  // namespace gradflow::nn
