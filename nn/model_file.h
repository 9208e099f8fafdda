#ifndef GRADFLOW_NN_MODEL_FILE_H_
#define GRADFLOW_NN_MODEL_FILE_H_

// For the loaders only (nn/saving.cc, nn/keras.cc): the private parts of
// Sequential and Layer that rebuilding a model from a file needs.

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow::nn {

class ModelFile {
 public:
  // Compile must then find every layer weight held, instead of initializing
  // it: a hostile configuration cannot make it allocate what the file lacks.
  static void RequireHeldWeights(Model& model) { model.require_held_weights_ = true; }
  static uint64_t& EpochsShuffled(Model& model) { return model.epochs_shuffled_; }
  static void HoldWeight(Layer& layer, const std::string& local, const Tensor& value) {
    layer.HoldWeight(local, value);
  }
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MODEL_FILE_H_
