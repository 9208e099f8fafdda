#ifndef GRADFLOW_OPS_GAUSSIAN_NOISE_H_
#define GRADFLOW_OPS_GAUSSIAN_NOISE_H_

// Additive zero-centred Gaussian noise (Keras GaussianNoise): in a
// Phase::kTrain plan y = x + n with n ~ N(0, stddev²) drawn per element and
// per step; in a Phase::kInfer plan y = x. The gradient is the identity in
// both (the noise does not depend on x).
//
// Element i of node n draws from Mix64(Mix64(step_seed ^ HashName(n) ^
// Mix64(seed)) + i) (Box-Muller over two counter-based uniforms), so the
// noise depends on neither the thread count nor the batch split, and a fixed
// session seed makes a run reproducible.

#include <cstdint>
#include <optional>

#include "graph/graph.h"

namespace gradflow::ops {

struct GaussianNoiseOptions {
  // Keras's `seed`: mixed into every step's draws (another seed, other noise).
  std::optional<int64_t> seed;
  // Set: the noise depends only on this seed and the node's name, never on
  // the step, so every step adds the same noise (tests and gradient checks).
  std::optional<int64_t> fixed_noise_seed;
};

// stddev must be finite and >= 0; 0 is the identity.
Output GaussianNoise(const Scope& scope, Output x, double stddev,
                     const GaussianNoiseOptions& options = {});

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_GAUSSIAN_NOISE_H_
