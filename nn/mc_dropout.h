#ifndef GRADFLOW_NN_MC_DROPOUT_H_
#define GRADFLOW_NN_MC_DROPOUT_H_

// Monte Carlo dropout (Gal & Ghahramani 2016, the chapter's MC dropout):
// average many stochastic predictions made with dropout left on, and use
// their spread as the model's uncertainty.

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "nn/model.h"

namespace gradflow::nn {

struct McPrediction {
  Tensor mean;    // [n, outputs]: the mean of the passes' predictions
  Tensor stddev;  // [n, outputs]: their population standard deviation (numpy's std)
};

// Runs `passes` forward passes of a compiled model over x and returns the
// per-element mean and standard deviation of the outputs (probabilities for a
// softmax model). The passes run in a training-phase plan that updates
// nothing, which is what the chapter's `model(X, training=True)` does: every
// dropout layer drops, with a new mask per pass, and any other layer with a
// training behaviour uses it too (batch normalization would use the batch's
// statistics). For models that must keep such layers in inference mode, use
// nn::MCDropout layers and call Predict repeatedly instead.
//
// Reproducible: the masks are a function of the model's seed
// (CompileOptions::seed), `seed` and the pass, so the same weights, x,
// passes, batch_size and seed give the same result, call after call. For
// fresh draws pass another `seed` (e.g. a counter); any two seeds give
// independent masks, and none replays the training steps' masks.
absl::StatusOr<McPrediction> PredictMC(Model& model, const Tensor& x, int passes,
                                       int64_t batch_size = 32, uint64_t seed = 0);

// The random stream (Plan::set_random_stream) of PredictMC's plan for
// `seed`: far from the compile indices the model's own plans use.
uint64_t PredictMcRandomStream(uint64_t seed);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MC_DROPOUT_H_
