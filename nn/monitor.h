#ifndef GRADFLOW_NN_MONITOR_H_
#define GRADFLOW_NN_MONITOR_H_

// The monitored quantity of the callbacks that watch one log entry
// (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint's save_best_only):
// Keras's `monitor` and `mode` arguments, checked and looked up the same way
// by each. Errors start with the callback's name.

#include <string>

#include "absl/status/statusor.h"
#include "nn/callbacks.h"

namespace gradflow::nn {

// Whether a larger value of `monitor` is an improvement under `mode`: "max",
// "min", or "auto" (Keras: larger is better for accuracies and AUC, names
// containing "acc" or "auc"; smaller for everything else). Another mode is
// an InvalidArgument.
absl::StatusOr<bool> MonitorMaximizes(const char* callback, const std::string& mode,
                                      const std::string& monitor);

// The value of `monitor` in `logs`, or an InvalidArgument listing the names
// the logs have.
absl::StatusOr<double> MonitoredValue(const char* callback, const std::string& monitor, const Logs& logs);

// "loss, accuracy, val_loss": the names in `logs`, for error messages.
std::string LogNames(const Logs& logs);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MONITOR_H_
