#ifndef GRADFLOW_NN_CALLBACKS_H_
#define GRADFLOW_NN_CALLBACKS_H_

// Hooks that Model::Fit, Evaluate and Predict call, as Keras callbacks.
// Each hook may change the model (learning rate, weights, stop_training) and
// may fail: the call then stops and returns that error.
//
// Fit calls, in order: OnTrainBegin; per epoch OnEpochBegin, per batch
// OnTrainBatchBegin and OnTrainBatchEnd (Keras's on_batch_begin/end), then
// the validation's test hooks (OnTestBegin, per batch OnTestBatchBegin/End,
// OnTestEnd), then OnEpochEnd; finally OnTrainEnd. Evaluate calls the test
// hooks, Predict the predict hooks.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace gradflow::nn {

class Model;

// Metrics by name: "loss", "accuracy", "val_loss", ... (running means within
// an epoch for batch hooks, epoch means for epoch hooks). Hooks may change
// and add entries, as Keras's logs dict: what an OnEpochEnd adds (e.g. the
// chapter's logs["lr"]) reaches the later callbacks, the History and the
// progress bar's epoch line; what OnTestEnd changes, Evaluate returns.
using Logs = std::map<std::string, double>;

class Callback {
 public:
  virtual ~Callback() = default;

  virtual absl::Status OnTrainBegin(Model& model) { return absl::OkStatus(); }
  virtual absl::Status OnEpochBegin(Model& model, int epoch) { return absl::OkStatus(); }
  virtual absl::Status OnTrainBatchBegin(Model& model, int64_t batch) { return absl::OkStatus(); }
  virtual absl::Status OnTrainBatchEnd(Model& model, int64_t batch, Logs& logs) { return absl::OkStatus(); }
  virtual absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) { return absl::OkStatus(); }
  virtual absl::Status OnTrainEnd(Model& model) { return absl::OkStatus(); }

  // Logs without the "val_" prefix, also during Fit's validation (Keras).
  virtual absl::Status OnTestBegin(Model& model) { return absl::OkStatus(); }
  virtual absl::Status OnTestBatchBegin(Model& model, int64_t batch) { return absl::OkStatus(); }
  virtual absl::Status OnTestBatchEnd(Model& model, int64_t batch, Logs& logs) { return absl::OkStatus(); }
  virtual absl::Status OnTestEnd(Model& model, Logs& logs) { return absl::OkStatus(); }

  // `outputs`: the batch's rows of every output (Keras's logs["outputs"]),
  // valid during the call only.
  virtual absl::Status OnPredictBegin(Model& model) { return absl::OkStatus(); }
  virtual absl::Status OnPredictBatchBegin(Model& model, int64_t batch) { return absl::OkStatus(); }
  virtual absl::Status OnPredictBatchEnd(Model& model, int64_t batch, const std::vector<Tensor>& outputs) {
    return absl::OkStatus();
  }
  virtual absl::Status OnPredictEnd(Model& model) { return absl::OkStatus(); }
};

using CallbackPtr = std::shared_ptr<Callback>;

// Calls hook(callback) for each callback in order; the first error ends it.
template <typename Hook>
absl::Status CallEach(const std::vector<CallbackPtr>& callbacks, Hook hook) {
  for (const CallbackPtr& callback : callbacks) {
    absl::Status status = hook(*callback);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_CALLBACKS_H_
