#include "nn/lr_callbacks.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "nn/model.h"
#include "nn/monitor.h"
#include "optimizers/optimizers.h"

namespace gradflow::nn {
namespace {

// OK when the compiled model has a learning-rate variable to change.
absl::Status RequireConstantLearningRate(Model& model, const char* callback) {
  const Graph* graph = model.graph();
  if (graph != nullptr && graph->FindNode(optimizers::kLearningRateName) == nullptr &&
      graph->FindNode(optimizers::kScheduledLearningRateName) != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        callback, " sets the optimizer's learning-rate variable between epochs, but this model's rate "
        "follows a step schedule (CompileOptions.learning_rate_schedule) and has no such variable; "
        "use either the schedule or the callback"));
  }
  return model.learning_rate().status();
}

}  // namespace

// ---------------------------------------------------------------- ReduceLROnPlateau

absl::StatusOr<std::shared_ptr<ReduceLROnPlateau>> ReduceLROnPlateau::Create(ReduceLROnPlateauOptions options) {
  auto invalid = [](const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat("ReduceLROnPlateau: ", message));
  };
  if (!(options.factor > 0 && options.factor < 1)) {
    return invalid(absl::StrCat("factor must be in (0, 1) (Keras does not support a factor >= 1.0), got ",
                                options.factor));
  }
  GF_RETURN_IF_ERROR(CheckMonitorMode("ReduceLROnPlateau", options.mode));
  if (options.patience < 0 || options.cooldown < 0) {
    return invalid(absl::StrCat("patience and cooldown must be >= 0, got ", options.patience, " and ",
                                options.cooldown));
  }
  if (!(options.min_delta >= 0) || !(options.min_lr >= 0)) {
    return invalid(absl::StrCat("min_delta and min_lr must be >= 0, got ", options.min_delta, " and ",
                                options.min_lr));
  }
  return std::shared_ptr<ReduceLROnPlateau>(new ReduceLROnPlateau(std::move(options)));
}

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options) : options_(std::move(options)) {}

absl::Status ReduceLROnPlateau::OnTrainBegin(Model& model) {
  GF_RETURN_IF_ERROR(RequireConstantLearningRate(model, "ReduceLROnPlateau"));
  // Mode "auto" asks the compiled model's metrics, known from here on.
  GF_ASSIGN_OR_RETURN(maximize_, MonitorMaximizes("ReduceLROnPlateau", options_.mode, options_.monitor,
                                                  model.compile_options()));
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  wait_ = 0;
  cooldown_counter_ = 0;
  reductions_.clear();
  return absl::OkStatus();
}

absl::Status ReduceLROnPlateau::OnEpochEnd(Model& model, int epoch, Logs& logs) {
  GF_ASSIGN_OR_RETURN(logs[options_.log_key], model.learning_rate());
  GF_ASSIGN_OR_RETURN(const double current, MonitoredValue("ReduceLROnPlateau", options_.monitor, logs));
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const bool improved = maximize_ ? current > best_ + options_.min_delta : current < best_ - options_.min_delta;
  if (improved) {
    best_ = current;
    wait_ = 0;
    return absl::OkStatus();
  }
  if (cooldown_counter_ > 0) return absl::OkStatus();
  if (++wait_ < options_.patience) return absl::OkStatus();
  GF_ASSIGN_OR_RETURN(const double old_lr, model.learning_rate());
  // Keras compares the f32 variable with np.float32(min_lr).
  if (!(static_cast<float>(old_lr) > static_cast<float>(options_.min_lr))) return absl::OkStatus();
  const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
  GF_RETURN_IF_ERROR(model.SetLearningRate(new_lr));
  if (options_.verbose > 0) {
    std::printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch + 1, new_lr);
  }
  reductions_.push_back(epoch);
  cooldown_counter_ = options_.cooldown;
  wait_ = 0;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- LearningRateScheduler

absl::StatusOr<std::shared_ptr<LearningRateScheduler>> LearningRateScheduler::Create(EpochSchedule schedule,
                                                                                     int verbose,
                                                                                     std::string log_key) {
  if (!schedule) return absl::InvalidArgumentError("LearningRateScheduler: the schedule function is empty");
  return std::shared_ptr<LearningRateScheduler>(
      new LearningRateScheduler(std::move(schedule), verbose, std::move(log_key)));
}

absl::Status LearningRateScheduler::OnTrainBegin(Model& model) {
  return RequireConstantLearningRate(model, "LearningRateScheduler");
}

absl::Status LearningRateScheduler::OnEpochBegin(Model& model, int epoch) {
  GF_ASSIGN_OR_RETURN(const double current, model.learning_rate());
  const double rate = schedule_(epoch, current);
  if (!(rate > 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(absl::StrCat("LearningRateScheduler: the schedule returned ", rate,
                                                   " for epoch ", epoch, "; rates must be > 0"));
  }
  GF_RETURN_IF_ERROR(model.SetLearningRate(rate));
  if (verbose_ > 0) std::printf("\nEpoch %d: LearningRateScheduler setting learning rate to %g.\n", epoch + 1, rate);
  return absl::OkStatus();
}

absl::Status LearningRateScheduler::OnEpochEnd(Model& model, int, Logs& logs) {
  GF_ASSIGN_OR_RETURN(logs[log_key_], model.learning_rate());
  return absl::OkStatus();
}

}  // namespace gradflow::nn
