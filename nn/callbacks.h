#ifndef GRADFLOW_NN_CALLBACKS_H_
#define GRADFLOW_NN_CALLBACKS_H_

// Hooks that Model::Fit calls during training, as Keras callbacks.
// Each hook may change the model (learning rate, weights, stop_training) and
// may fail: Fit then stops and returns that error.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace gradflow::nn {

class Model;

// Metrics by name: "loss", "accuracy", "val_loss", ... (running means within
// an epoch for batch hooks, epoch means for epoch hooks).
using Logs = std::map<std::string, double>;

class Callback {
 public:
  virtual ~Callback() = default;
  virtual absl::Status OnTrainBegin(Model& model) { return absl::OkStatus(); }
  virtual absl::Status OnEpochBegin(Model& model, int epoch) { return absl::OkStatus(); }
  virtual absl::Status OnTrainBatchEnd(Model& model, int64_t batch, const Logs& logs) {
    return absl::OkStatus();
  }
  virtual absl::Status OnEpochEnd(Model& model, int epoch, const Logs& logs) {
    return absl::OkStatus();
  }
  virtual absl::Status OnTrainEnd(Model& model) { return absl::OkStatus(); }
};

using CallbackPtr = std::shared_ptr<Callback>;

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_CALLBACKS_H_
