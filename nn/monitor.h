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

struct CompileOptions;  // nn/model.h

// OK when `mode` is "auto", "min" or "max"; the callbacks check it at Create.
absl::Status CheckMonitorMode(const char* callback, const std::string& mode);

// Whether a larger value of `monitor` is an improvement under `mode`: "max",
// "min", or "auto": the direction MonitorDirection (nn/metrics.h) gives for
// the model's compiled metrics, `compiled` being model.compile_options()
// (nullptr, a model not compiled: no metrics). The callbacks call it at
// OnTrainBegin, since only a compiled model knows its metrics. Errors start
// with the callback's name.
absl::StatusOr<bool> MonitorMaximizes(const char* callback, const std::string& mode, const std::string& monitor,
                                      const CompileOptions* compiled);

// The value of `monitor` in `logs`, or an InvalidArgument listing the names
// the logs have.
absl::StatusOr<double> MonitoredValue(const char* callback, const std::string& monitor, const Logs& logs);

// "loss, accuracy, val_loss": the names in `logs`, for error messages.
std::string LogNames(const Logs& logs);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MONITOR_H_
