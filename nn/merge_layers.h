#ifndef GRADFLOW_NN_MERGE_LAYERS_H_
#define GRADFLOW_NN_MERGE_LAYERS_H_

// Keras's merge layers, called on a list of tensors in the functional API
// (nn/functional.h):
//
//   nn::KerasTensor both = nn::Concatenate()({wide, deep});   // side by side
//   nn::KerasTensor skip = nn::Add()({x, h});                  // a residual sum
//
// Add, Subtract (exactly two inputs), Multiply, Average, Maximum and Minimum
// work elementwise on inputs of one shape; Concatenate joins along `axis`.

#include <cstdint>
#include <string>

#include "nn/layers.h"

namespace gradflow::nn {

LayerPtr Concatenate(int64_t axis = -1, std::string name = "");
LayerPtr Add(std::string name = "");
LayerPtr Subtract(std::string name = "");
LayerPtr Multiply(std::string name = "");
LayerPtr Average(std::string name = "");
LayerPtr Maximum(std::string name = "");
LayerPtr Minimum(std::string name = "");

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MERGE_LAYERS_H_
