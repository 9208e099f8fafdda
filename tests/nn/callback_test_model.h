#ifndef GRADFLOW_TESTS_NN_CALLBACK_TEST_MODEL_H_
#define GRADFLOW_TESTS_NN_CALLBACK_TEST_MODEL_H_

// The problem and model the callback tests (callbacks_test, lr_callbacks_test)
// train, small enough that a Fit of a few epochs takes milliseconds, so the
// tests can look at what a callback saw or changed epoch by epoch; and Fresh,
// for the tests that call a hook themselves.

#include <optional>

#include "gtest/gtest.h"
#include "nn/model.h"

namespace gradflow::nn {

// 64 samples of a 2-feature, 2-class problem (the class is the sign of x0).
inline void MakeData(Tensor& x, Tensor& y) {
  x = Tensor(DType::kF32, {64, 2});
  y = Tensor(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) {
    float v = (i % 2 ? 1.0f : -1.0f) * (0.5f + 0.01f * i);
    x.data<float>()[2 * i] = v;
    x.data<float>()[2 * i + 1] = 0.1f * (i % 7);
    y.data<int32_t>()[i] = v > 0;
  }
}

// Dense(4, relu) -> Dense(2, softmax) on the 2 features, compiled with SGD
// at `lr` (optionally following `schedule`) and the accuracy metric
// (and, with `sample_weights`, a per-sample weight feed).
inline Sequential CompiledModel(double lr = 0.1, std::optional<optimizers::Schedule> schedule = std::nullopt,
                                bool sample_weights = false) {
  Sequential model({Dense(4, {.activation = "relu", .input_shape = Shape{2}}), Dense(2, {.activation = "softmax"})});
  EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = lr},
                             .metrics = {"accuracy"},
                             .learning_rate_schedule = schedule,
                             .sample_weights = sample_weights})
                  .ok());
  return model;
}

// Logs for one direct call of a hook, which takes them mutable as Fit passes
// them: cb->OnEpochEnd(model, 0, Fresh({{"val_loss", 1.0}})).
inline Logs& Fresh(Logs&& logs) { return logs; }

}  // namespace gradflow::nn

#endif  // GRADFLOW_TESTS_NN_CALLBACK_TEST_MODEL_H_
