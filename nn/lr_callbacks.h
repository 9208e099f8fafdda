#ifndef GRADFLOW_NN_LR_CALLBACKS_H_
#define GRADFLOW_NN_LR_CALLBACKS_H_

// Keras's learning-rate callbacks: performance
// scheduling (ReduceLROnPlateau) and an epoch-based scheduler
// (LearningRateScheduler). Both write the optimizer's learning-rate variable
// ("optimizer/learning_rate") between epochs, so they need a constant-rate
// optimizer: with CompileOptions.learning_rate_schedule the rate is computed
// from the step counter and there is no variable to change, and both fail at
// the start of Fit with FailedPrecondition (Keras raises a TypeError there).
//
// At every epoch end both write the rate into the logs under
// kLearningRateLog (Keras 3's "learning_rate"; tf.keras 2.x wrote "lr":
// their log_key option), so the History records it.
//
//   auto plateau = nn::ReduceLROnPlateau::Create({.factor = 0.5, .patience = 5});
//   model.Fit(x, y, {.epochs = 50, .validation_data = ..., .callbacks = {*plateau}});

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/callbacks.h"

namespace gradflow::nn {

inline constexpr const char* kLearningRateLog = "learning_rate";

// Keras's ReduceLROnPlateau defaults.
struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;  // new rate = rate * factor, in (0, 1)
  int patience = 10;    // epochs without improvement before a reduction
  // "min", "max", or "auto", decided at OnTrainBegin by the rule
  // EarlyStopping's mode uses (nn/metrics.h MonitorDirection: the loss down,
  // a metric the way it improves, anything else an error asking for "min" or
  // "max"). Keras 3's MonitorCallback rule; tf.keras 2.x's maximized names
  // containing "acc", which got precision, recall and AUC wrong.
  std::string mode = "auto";
  double min_delta = 1e-4;  // an improvement beats the best by more than this
  int cooldown = 0;         // epochs after a reduction during which waiting is suspended
  double min_lr = 0;        // the rate never goes below this
  int verbose = 0;          // 1: print a line at each reduction
  std::string log_key = kLearningRateLog;  // "lr": tf.keras 2.x's logs
};

// At each epoch end (Keras's on_epoch_end, in this order):
//   logs[log_key] = the rate the epoch trained with
//   in cooldown: cooldown_counter -= 1, wait = 0
//   improved (min: current < best - min_delta; max: current > best + min_delta):
//     best = current, wait = 0
//   else, if not in cooldown: wait += 1, and once wait >= patience and
//     rate > min_lr (compared in f32): rate = max(rate * factor, min_lr),
//     cooldown_counter = cooldown, wait = 0.
// A missing monitored metric is an error (Keras only warns): it usually means
// no validation data was given.
class ReduceLROnPlateau : public Callback {
 public:
  // factor outside (0, 1), an unknown mode, or negative patience, cooldown,
  // min_delta or min_lr are InvalidArgument errors (mode "auto" with an
  // unknown monitor: at OnTrainBegin).
  static absl::StatusOr<std::shared_ptr<ReduceLROnPlateau>> Create(ReduceLROnPlateauOptions options = {});

  absl::Status OnTrainBegin(Model& model) override;
  absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) override;

  double best() const { return best_; }
  int wait() const { return wait_; }
  int cooldown_counter() const { return cooldown_counter_; }
  // The epochs (0-based) at whose end the rate was reduced.
  const std::vector<int>& reductions() const { return reductions_; }

 private:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options);

  ReduceLROnPlateauOptions options_;
  bool maximize_ = false;  // set at OnTrainBegin
  double best_ = 0;
  int wait_ = 0;
  int cooldown_counter_ = 0;
  std::vector<int> reductions_;
};

// The rate for an epoch (0-based) given the current rate, as Keras's
// schedule(epoch, lr); e.g. the chapter's exponential_decay_fn:
//   [](int epoch, double) { return 0.01 * std::pow(0.1, epoch / 20.0); }
using EpochSchedule = std::function<double(int epoch, double learning_rate)>;

// Keras LearningRateScheduler: at the beginning of every epoch sets the rate
// to schedule(epoch, current rate), and at its end writes the rate into
// logs[log_key]. A rate that is not > 0 is an error.
class LearningRateScheduler : public Callback {
 public:
  static absl::StatusOr<std::shared_ptr<LearningRateScheduler>> Create(EpochSchedule schedule, int verbose = 0,
                                                                       std::string log_key = kLearningRateLog);

  absl::Status OnTrainBegin(Model& model) override;
  absl::Status OnEpochBegin(Model& model, int epoch) override;
  absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) override;

 private:
  LearningRateScheduler(EpochSchedule schedule, int verbose, std::string log_key)
      : schedule_(std::move(schedule)), verbose_(verbose), log_key_(std::move(log_key)) {}

  EpochSchedule schedule_;
  int verbose_;
  std::string log_key_;
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_LR_CALLBACKS_H_
