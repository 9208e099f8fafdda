#ifndef GRADFLOW_NN_GAUSSIAN_NOISE_H_
#define GRADFLOW_NN_GAUSSIAN_NOISE_H_

// Keras's GaussianNoise(stddev, seed=None), a regularization layer: adds
// N(0, stddev²) noise in training plans and is the identity in evaluation
// and prediction plans (ops/gaussian_noise.h).

#include <cstdint>
#include <optional>

#include "nn/layers.h"

namespace gradflow::nn {

// stddev: finite and >= 0. seed: Keras's seed (other seed, other noise; the
// model's own seed makes runs reproducible either way).
LayerPtr GaussianNoise(double stddev, std::optional<int64_t> seed = std::nullopt);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_GAUSSIAN_NOISE_H_
