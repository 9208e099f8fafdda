#ifndef GRADFLOW_NN_NORMALIZATION_H_
#define GRADFLOW_NN_NORMALIZATION_H_

// Keras's BatchNormalization layer (axis = -1) on ops::BatchNorm.
//
//   nn::Sequential model({
//       nn::Flatten(Shape{28, 28}),
//       nn::BatchNormalization(),
//       nn::Dense(300, {.kernel_initializer = "he_normal", .use_bias = false}),
//       nn::BatchNormalization(),      // before the activation, as in the chapter
//       nn::Activation("relu"),
//       ...
//   });
//
// Variables, as Keras: "<layer>/gamma" and "<layer>/beta" (trainable, each
// optional), "<layer>/moving_mean" and "<layer>/moving_variance"
// (non-trainable; Summary counts them as non-trainable parameters). In
// training plans the layer normalizes with the batch statistics and its
// update nodes (Layer::updates(), run by the train op) move the moving
// statistics; inference plans (Evaluate, Predict) use the moving statistics.
// Setting `trainable = false` on the layer before Compile freezes gamma and
// beta and makes the layer use its moving statistics in training too, with
// no updates (Keras's fine-tuning behaviour).

#include <optional>
#include <string>

#include "nn/layers.h"
#include "ops/batch_norm.h"

namespace gradflow::nn {

struct BatchNormalizationOptions {
  // The feature axis; gradflow normalizes the last one (-1, or its index).
  int axis = -1;
  double momentum = ops::kBatchNormDefaultMomentum;  // 0.99, Keras
  double epsilon = ops::kBatchNormDefaultEpsilon;    // 1e-3, Keras
  bool center = true;                                // learn beta
  bool scale = true;                                 // learn gamma
  InitializerOption beta_initializer = Zeros();
  InitializerOption gamma_initializer = Ones();
  InitializerOption moving_mean_initializer = Zeros();
  InitializerOption moving_variance_initializer = Ones();
  std::string name;  // "" = batch_normalization, batch_normalization_1, ...
  std::optional<Shape> input_shape;
  // Data parallel (CompileOptions::data_parallel; Keras's synchronized):
  // true normalizes each training batch with the statistics of every rank's
  // rows, so N ranks train as one process at the global batch; false (Keras's
  // default) with each rank's own rows, and each rank keeps its own moving
  // statistics (rank 0's are the ones ModelCheckpoint saves).
  bool synchronized = false;
};

LayerPtr BatchNormalization(BatchNormalizationOptions options = {});

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_NORMALIZATION_H_
