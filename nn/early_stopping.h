#ifndef GRADFLOW_NN_EARLY_STOPPING_H_
#define GRADFLOW_NN_EARLY_STOPPING_H_

// Keras's EarlyStopping callback (Keras 3 semantics, tf.keras 2.x's restore
// rule as an option): stop training when the monitored metric has not
// improved for `patience` epochs, optionally rolling the model back to the
// weights of its best epoch.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "nn/callbacks.h"

namespace gradflow::nn {

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  // An improvement must beat the best value by more than this (absolute).
  double min_delta = 0;
  // Epochs without improvement after which training stops.
  int patience = 0;
  // "min", "max", or "auto" (Keras 3): "loss" and "val_loss" are minimized,
  // a metric goes the way it improves (accuracies, precision, AUC up; errors
  // down: nn/metrics.h MonitorDirection), decided at OnTrainBegin; a monitor
  // that is neither is an error there, asking for "min" or "max".
  std::string mode = "auto";
  // Set: the patience counter keeps running until the metric beats it.
  std::optional<double> baseline;
  // At the end of training, set the weights of the best epoch seen (Keras
  // 3's on_train_end: also when the run used all its epochs).
  bool restore_best_weights = false;
  // tf.keras 2.x's rule instead: restore only when stopping early; a run that
  // uses all its epochs keeps its last weights.
  bool keras2_restore_only_on_stop = false;
  int verbose = 0;  // 1: print a line when stopping and restoring
};

class EarlyStopping : public Callback {
 public:
  // An unknown mode or a negative patience is an InvalidArgument error
  // (mode "auto" with an unknown monitor: at OnTrainBegin).
  static absl::StatusOr<std::shared_ptr<EarlyStopping>> Create(EarlyStoppingOptions options = {});

  absl::Status OnTrainBegin(Model& model) override;
  absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) override;
  absl::Status OnTrainEnd(Model& model) override;

  // The epoch (0-based, as Keras) at which training was stopped; 0 if it was not.
  int stopped_epoch() const { return stopped_epoch_; }
  // The epoch with the best monitored value, and that value.
  int best_epoch() const { return best_epoch_; }
  double best() const { return best_; }
  // Epochs since the last improvement.
  int wait() const { return wait_; }

 private:
  explicit EarlyStopping(EarlyStoppingOptions options);
  bool IsImprovement(double value, double reference) const;
  absl::Status RestoreBestWeights(Model& model) const;

  EarlyStoppingOptions options_;
  bool maximize_ = false;  // set at OnTrainBegin
  int wait_ = 0;
  int stopped_epoch_ = 0;
  int best_epoch_ = 0;
  double best_ = 0;
  std::optional<std::map<std::string, Tensor>> best_weights_;
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_EARLY_STOPPING_H_
