#ifndef GRADFLOW_OPS_BATCH_NORM_H_
#define GRADFLOW_OPS_BATCH_NORM_H_

// Batch normalization (Ioffe & Szegedy, 2015) over the last axis, on oneDNN's
// batch_normalization primitive, with Keras's formulas:
//
//   training:   mean, var = moments of x over every axis but the last (var
//               is the biased, divide-by-N variance, as tf.nn.moments)
//   inference:  mean, var = the moving statistics
//   y = gamma * (x - mean) / sqrt(var + epsilon) + beta
//
// Which of the two a node computes is decided when a plan is compiled: the
// training form in Phase::kTrain plans, the inference form in Phase::kInfer
// plans, and always the inference form for a `frozen` node (Keras: a
// BatchNormalization layer with trainable = False runs in inference mode, the
// behaviour that makes fine-tuning work). Nothing is branched per step.
//
// The moving statistics are variables updated by separate AssignMovingAverage
// nodes, which the train op must depend on (optimizers::MinimizeOptions::
// extra_updates; nn::BatchNormalization does this). Keras updates
//   moving = moving - (moving - batch_stat) * (1 - momentum)
// with the same biased batch variance it normalizes with (for inputs that
// are not 4-D, which is what it takes here; Keras's fused 4-D path uses the
// unbiased variance for the moving average).

#include "graph/graph.h"

namespace gradflow::ops {

// Keras BatchNormalization defaults.
inline constexpr double kBatchNormDefaultEpsilon = 1e-3;
inline constexpr double kBatchNormDefaultMomentum = 0.99;

struct BatchNormParams {
  Output gamma;            // [C] scale; invalid Output for none (Keras scale=False)
  Output beta;             // [C] offset; invalid Output for none (Keras center=False)
  Output moving_mean;      // [C], required
  Output moving_variance;  // [C], required
  double epsilon = kBatchNormDefaultEpsilon;
  // Normalize with the moving statistics in every phase (a frozen layer).
  bool frozen = false;
  // Data parallel (Keras's synchronized=True): in training, the batch
  // statistics are over every rank's rows (the session's Communicator), as
  // one process at the global batch; false: each rank's own rows.
  bool synchronized = false;
};

struct BatchNormOutputs {
  Output y;         // x's shape
  Output mean;      // [C]: the batch mean in training form, the moving mean otherwise
  Output variance;  // [C]: the biased batch variance, or the moving variance
};

// x: f32 of rank >= 2, normalized per feature of its last axis (C, known at
// build time) over all other axes. Errors (shapes, epsilon <= 0) are
// recorded in the graph and every output is invalid.
BatchNormOutputs BatchNorm(const Scope& scope, Output x, const BatchNormParams& params);

// An update node (no outputs): variable = variable - (variable - value) *
// (1 - momentum), i.e. momentum * variable + (1 - momentum) * value, as
// Keras's moving-average assignment. Returns nullptr on error (recorded).
Node* AssignMovingAverage(const Scope& scope, Output variable, Output value, double momentum);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_BATCH_NORM_H_
