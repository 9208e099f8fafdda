#ifndef GRADFLOW_NN_FUNCTIONAL_H_
#define GRADFLOW_NN_FUNCTIONAL_H_

// Keras's functional API: symbolic tensors that record layer calls, from
// which nn::Model::Create (nn/model.h) makes a model with several inputs,
// outputs, branches and shared layers.
//
//   nn::KerasTensor wide = nn::Input({5}, {.name = "wide"});
//   nn::KerasTensor deep = nn::Input({6}, {.name = "deep"});
//   nn::KerasTensor h = nn::Dense(30, {.activation = "relu"})(deep);
//   h = nn::Dense(30, {.activation = "relu"})(h);
//   nn::KerasTensor concat = nn::Concatenate()({wide, h});
//   nn::KerasTensor out = nn::Dense(1, {.name = "output"})(concat);
//   absl::StatusOr<nn::Model> model = nn::Model::Create({wide, deep}, {out});
//
// A call's output type is inferred when it is made (the layer is built
// aside on placeholders), so shapes are known before Compile; a call that
// fails keeps its error, and every tensor computed from it carries that
// error to Model::Create.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/graph.h"
#include "nn/layers.h"

namespace gradflow::nn {

class KerasTensor;

// One node of a layer graph: a call of `layer` on `inputs`, or (layer null)
// a model input.
struct LayerCall {
  LayerPtr layer;
  std::vector<KerasTensor> inputs;
  std::string input_name;  // a model input's name ("" until a model names it)
  TensorType type;         // the output's; the batch dimension is -1
  absl::Status status;     // why this call, or one it depends on, failed
};

// The output of a layer call (or a model input), without values.
class KerasTensor {
 public:
  KerasTensor() = default;
  explicit KerasTensor(std::shared_ptr<const LayerCall> call) : call_(std::move(call)) {}

  bool ok() const { return call_ != nullptr && call_->status.ok(); }
  absl::Status status() const;
  // Keras's tensor.shape, with -1 for the batch dimension.
  const Shape& shape() const;
  DType dtype() const;
  const LayerCall* call() const { return call_.get(); }

 private:
  std::shared_ptr<const LayerCall> call_;
};

struct InputOptions {
  // Unique within a model; "" = input_layer, input_layer_1, ... (Keras 3).
  std::string name;
  DType dtype = DType::kF32;
};

// A model input of `shape` per sample (without the batch dimension),
// Keras's keras.Input(shape=...).
KerasTensor Input(Shape shape, InputOptions options = {});

// The outputs of the layer calls `outputs` depend on, inputs first, each
// once, every call after the calls it reads (the order Model::Create keeps).
std::vector<const LayerCall*> CallsInOrder(const std::vector<KerasTensor>& outputs);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_FUNCTIONAL_H_
