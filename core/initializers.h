#ifndef GRADFLOW_CORE_INITIALIZERS_H_
#define GRADFLOW_CORE_INITIALIZERS_H_

// Keras weight initializers (tf.keras.initializers, Keras 2.x semantics) as
// plain values and pure functions over a Tensor and an Rng: no graph needed,
// so layers, tests and checkpoint tools can all use them.

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace gradflow {

// Stddev of a standard normal truncated to [-2, 2]. Keras's VarianceScaling
// divides its target stddev by this so the truncated samples keep the target
// variance (keras/initializers/initializers_v2.py: `.87962566103423978`).
inline constexpr double kTruncatedNormalStddevCorrection = 0.87962566103423978;
// Keras truncates normals at two standard deviations from the mean.
inline constexpr double kTruncationStddevs = 2.0;

// Keras defaults of RandomNormal / RandomUniform / TruncatedNormal.
inline constexpr double kDefaultRandomStddev = 0.05;
inline constexpr double kDefaultRandomUniformLimit = 0.05;

struct Initializer {
  enum class Kind {
    kZeros, kOnes, kConstant, kRandomNormal, kRandomUniform, kTruncatedNormal,
    kVarianceScaling, kOrthogonal,
  };
  enum class Mode { kFanIn, kFanOut, kFanAvg };
  enum class Distribution { kTruncatedNormal, kUntruncatedNormal, kUniform };

  Kind kind = Kind::kZeros;
  double value = 0;  // kConstant
  // kRandomNormal / kTruncatedNormal use mean, stddev; kRandomUniform uses
  // [minval, maxval).
  double mean = 0, stddev = kDefaultRandomStddev;
  double minval = -kDefaultRandomUniformLimit, maxval = kDefaultRandomUniformLimit;
  // kVarianceScaling.
  double scale = 1.0;
  Mode mode = Mode::kFanIn;
  Distribution distribution = Distribution::kTruncatedNormal;
  double gain = 1.0;  // kOrthogonal
  std::string name;   // Keras name: "he_normal", "zeros", ... (for summaries/configs)
};

Initializer Zeros();
Initializer Ones();
Initializer Constant(double value);
Initializer RandomNormal(double mean = 0, double stddev = kDefaultRandomStddev);
Initializer RandomUniform(double minval = -kDefaultRandomUniformLimit,
                          double maxval = kDefaultRandomUniformLimit);
Initializer TruncatedNormal(double mean = 0, double stddev = kDefaultRandomStddev);
Initializer VarianceScaling(double scale = 1.0, Initializer::Mode mode = Initializer::Mode::kFanIn,
                            Initializer::Distribution distribution =
                                Initializer::Distribution::kTruncatedNormal);
// Glorot & Bengio 2010: scale 1, fan_avg. He et al. 2015: scale 2, fan_in.
// LeCun 1998 (used with SELU): scale 1, fan_in. "*_normal" draw a truncated
// normal, "*_uniform" a uniform on [-sqrt(3 scale / fan), sqrt(3 scale / fan)].
Initializer GlorotNormal();
Initializer GlorotUniform();
Initializer HeNormal();
Initializer HeUniform();
Initializer LecunNormal();
Initializer LecunUniform();
// Saxe et al. 2014: a random orthogonal matrix times `gain`.
Initializer Orthogonal(double gain = 1.0);

// Keras's snake_case name ("glorot_uniform", "he_normal", "zeros", ...) with
// Keras's default arguments. Unknown names are InvalidArgument errors that
// list the valid names.
absl::StatusOr<Initializer> InitializerFromName(std::string_view name);

// (fan_in, fan_out) as Keras's _compute_fans: rank 0 -> (1, 1); rank 1 [n] ->
// (n, n); rank 2 [in, out] -> (in, out); rank > 2 conv kernel
// [...spatial..., in, out] -> (in * r, out * r), r = product of spatial dims.
std::pair<double, double> ComputeFans(const Shape& shape);

// Fills `t` in row-major order, drawing from `rng` sequentially: the same seed
// gives the same values. Zeros/Ones/Constant accept any dtype; the random
// kinds need an f32 tensor (checked: violating it aborts with a message; use
// TryInitialize to get a Status instead). Orthogonal flattens the shape to
// [prod(shape[:-1]), shape[-1]] as Keras; where Keras rejects rank < 2 this
// treats a rank-1 [n] tensor as [1, n] (a unit vector times gain) and a
// scalar as [1, 1] (+-gain).
void Initialize(const Initializer& init, Rng& rng, Tensor& t);

// Initialize after checking that `t` has a known shape and a dtype the
// initializer supports.
absl::Status TryInitialize(const Initializer& init, Rng& rng, Tensor& t);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_INITIALIZERS_H_
