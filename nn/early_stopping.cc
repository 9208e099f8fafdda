#include "nn/early_stopping.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "nn/model.h"
#include "nn/monitor.h"

namespace gradflow::nn {

absl::StatusOr<std::shared_ptr<EarlyStopping>> EarlyStopping::Create(EarlyStoppingOptions options) {
  GF_RETURN_IF_ERROR(CheckMonitorMode("EarlyStopping", options.mode));
  if (options.patience < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("EarlyStopping: patience must be >= 0, got ", options.patience));
  }
  return std::shared_ptr<EarlyStopping>(new EarlyStopping(std::move(options)));
}

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {}

// Keras: monitor_op(value - min_delta, reference) with min_delta's sign set by
// the mode, i.e. an improvement beats the reference by more than |min_delta|.
bool EarlyStopping::IsImprovement(double value, double reference) const {
  const double delta = std::abs(options_.min_delta);
  return maximize_ ? value - delta > reference : value + delta < reference;
}

absl::Status EarlyStopping::OnTrainBegin(Model& model) {
  // Mode "auto" asks the compiled model's metrics, known from here on.
  GF_ASSIGN_OR_RETURN(maximize_, MonitorMaximizes("EarlyStopping", options_.mode, options_.monitor,
                                                  model.compile_options()));
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  best_weights_.reset();
  return absl::OkStatus();
}

absl::Status EarlyStopping::OnEpochEnd(Model& model, int epoch, Logs& logs) {
  GF_ASSIGN_OR_RETURN(const double current, MonitoredValue("EarlyStopping", options_.monitor, logs));
  // Keras keeps the first epoch's weights, so there is something to restore
  // even if nothing ever improves.
  if (options_.restore_best_weights && !best_weights_) {
    GF_ASSIGN_OR_RETURN(best_weights_, model.GetWeights());
  }
  ++wait_;
  if (IsImprovement(current, best_)) {
    best_ = current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) {
      GF_ASSIGN_OR_RETURN(best_weights_, model.GetWeights());
    }
    // The wait restarts only once the metric also beats the baseline.
    if (!options_.baseline || IsImprovement(current, *options_.baseline)) wait_ = 0;
    return absl::OkStatus();
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model.stop_training = true;
    if (options_.keras2_restore_only_on_stop) return RestoreBestWeights(model);
  }
  return absl::OkStatus();
}

absl::Status EarlyStopping::RestoreBestWeights(Model& model) const {
  if (!options_.restore_best_weights || !best_weights_) return absl::OkStatus();
  if (options_.verbose > 0) {
    std::printf("Restoring model weights from the end of the best epoch: %d.\n", best_epoch_ + 1);
  }
  return model.SetWeights(*best_weights_);
}

// Keras 3 restores here, whether or not training stopped early; tf.keras 2.x
// restored when it stopped (keras2_restore_only_on_stop, in OnEpochEnd).
absl::Status EarlyStopping::OnTrainEnd(Model& model) {
  if (stopped_epoch_ > 0 && options_.verbose > 0) {
    std::printf("Epoch %d: early stopping\n", stopped_epoch_ + 1);
  }
  if (options_.keras2_restore_only_on_stop) return absl::OkStatus();
  return RestoreBestWeights(model);
}

}  // namespace gradflow::nn
