#ifndef GRADFLOW_OPS_DROPOUT_H_
#define GRADFLOW_OPS_DROPOUT_H_

// Dropout and alpha dropout (Keras semantics). Whether a node drops anything
// is decided when a plan is compiled: in a Phase::kTrain plan it does, in a
// Phase::kInfer plan it is the identity (a copy), unless built with
// `active_in_inference` (the chapter's MCDropout).
//
// The mask is drawn per element from the step's seed: element i of node n is
// kept when ToUnitFloat(Mix64(Mix64(step_seed ^ HashName(n)) + i)) >= rate.
// It depends on neither the thread count nor the batch split across threads,
// and a fixed session seed makes a run reproducible. The gradient node draws
// the same mask again (same step seed, same node name), so nothing is stored
// between the forward and the backward pass; this holds because both run in
// the same step of one plan.

#include <cstdint>
#include <optional>

#include "graph/graph.h"

namespace gradflow::ops {

struct DropoutOptions {
  // Set: the mask depends only on this seed and the node's name, never on the
  // step, so every step drops the same units (tests and gradient checks).
  std::optional<int64_t> fixed_mask_seed;
  // Drop in inference plans too (Monte Carlo dropout layers).
  bool active_in_inference = false;
};

// Inverted dropout (Keras Dropout, tf.nn.dropout): in training each element is
// zeroed with probability `rate` and the kept ones are scaled by
// 1 / (1 - rate), so the expected value is unchanged and inference needs no
// rescaling. rate must be in [0, 1); 0 is the identity.
Output Dropout(const Scope& scope, Output x, double rate, const DropoutOptions& options = {});

// Alpha dropout (Keras AlphaDropout, Klambauer et al. 2017) for SELU networks:
// dropped elements are set to SELU's negative saturation value
// alpha' = -scale * alpha instead of 0, then y = a * x' + b with
//   a = ((1 - rate) * (1 + rate * alpha'^2))^(-1/2),  b = -a * alpha' * rate,
// which keeps a standardized input at mean 0 and variance 1.
Output AlphaDropout(const Scope& scope, Output x, double rate,
                    const DropoutOptions& options = {});

// The affine correction of AlphaDropout for `rate` (exposed for tests).
struct AlphaDropoutCoefficients {
  double alpha_p, a, b;
};
AlphaDropoutCoefficients AlphaDropoutCoefficientsFor(double rate);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_DROPOUT_H_
