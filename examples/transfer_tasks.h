#ifndef GRADFLOW_EXAMPLES_TRANSFER_TASKS_H_
#define GRADFLOW_EXAMPLES_TRANSFER_TASKS_H_

// The chapter's transfer-learning tasks, shared by examples/transfer_learning
// (gradflow files) and examples/keras_transfer_learning (a Keras .h5):
// task A is Fashion-MNIST without sandals and shirts (8 classes), task B
// shirt (1) vs sandal (0).

#include <algorithm>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow::examples {

inline constexpr int kSandal = 5, kShirt = 6;

struct Split {
  Tensor x_a, y_a;  // 8 classes: 0..4 kept, 7..9 -> 5..7
  Tensor x_b, y_b;  // shirts and sandals; y = 1 for a shirt
};

// The chapter's split_dataset().
inline Split SplitDataset(const Tensor& x, const Tensor& y) {
  std::vector<int64_t> a, b;
  for (int64_t i = 0; i < y.shape()[0]; ++i) {
    const int label = y.data<int32_t>()[i];
    (label == kSandal || label == kShirt ? b : a).push_back(i);
  }
  const int64_t pixels = x.num_elements() / x.shape()[0];
  Split s{Tensor(DType::kF32, x.shape().WithBatch(a.size())), Tensor(DType::kI32, {int64_t(a.size())}),
          Tensor(DType::kF32, x.shape().WithBatch(b.size())), Tensor(DType::kF32, {int64_t(b.size()), 1})};
  for (size_t k = 0; k < a.size(); ++k) {
    std::copy_n(x.data<float>() + a[k] * pixels, pixels, s.x_a.data<float>() + k * pixels);
    const int label = y.data<int32_t>()[a[k]];
    s.y_a.data<int32_t>()[k] = label > kShirt ? label - 2 : label;
  }
  for (size_t k = 0; k < b.size(); ++k) {
    std::copy_n(x.data<float>() + b[k] * pixels, pixels, s.x_b.data<float>() + k * pixels);
    s.y_b.data<float>()[k] = y.data<int32_t>()[b[k]] == kShirt ? 1.0f : 0.0f;
  }
  return s;
}

inline std::vector<nn::LayerPtr> HiddenLayers() {
  std::vector<nn::LayerPtr> layers = {nn::Flatten(Shape{28, 28})};
  for (int64_t units : {300, 100, 50, 50, 50}) layers.push_back(nn::Dense(units, {.activation = "selu"}));
  return layers;
}

inline nn::CompileOptions Sgd(double learning_rate, const std::string& loss, uint64_t seed) {
  return {.loss = loss,
          .optimizer = optimizers::SGD{.learning_rate = learning_rate},
          .metrics = {"accuracy"},
          .seed = seed};
}

}  // namespace gradflow::examples

#endif  // GRADFLOW_EXAMPLES_TRANSFER_TASKS_H_
