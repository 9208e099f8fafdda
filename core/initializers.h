#ifndef GRADFLOW_CORE_INITIALIZERS_H_
#define GRADFLOW_CORE_INITIALIZERS_H_

// Keras weight initializers as plain values and pure functions over a Tensor
// and an Rng: no graph needed, so layers, tests and checkpoint tools can all
// use them.
//
// Each Keras 3 initializer is one described struct in namespace init
// (core/describe.h): its class name, its fields with Keras's defaults and
// ranges. Initializer holds one of them; name lookup (class name or
// snake_case alias), the list of valid names, config readers and writers
// (nn/config_reader.h) and the tests that cover every initializer are
// derived from the Initializer::Variant. Adding an initializer is its struct
// here, its entry in the variant and its Fill in initializers.cc.
//
//   ops::Variable(scope, "kernel", {784, 300}, HeNormal());
//   ops::Variable(scope, "kernel", {784, 300}, init::RandomNormal{.stddev = 0.01});

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/describe.h"
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

namespace init {

// A random initializer's optional Keras `seed`: unset (Keras's None), it
// draws from the Rng it is given (the session's per-variable stream); set,
// from a fresh Rng(seed), so every tensor it fills gets the same values, as a
// seeded Keras 3 initializer does.
using Seed = std::optional<uint64_t>;

enum class Mode { kFanIn, kFanOut, kFanAvg };
inline constexpr const char* kModeNames[] = {"fan_in", "fan_out", "fan_avg"};
enum class Distribution { kTruncatedNormal, kUntruncatedNormal, kUniform };
inline constexpr const char* kDistributionNames[] = {"truncated_normal", "untruncated_normal", "uniform"};
// Keras's VarianceScaling takes "normal" for "truncated_normal" (and writes the latter).
inline constexpr ChoiceAlias kDistributionAliases[] = {{"normal", size_t(Distribution::kTruncatedNormal)}};

struct Zeros {
  static constexpr const char* kName = "Zeros";
  template <typename Self, typename F> static void Fields(Self&, F&&) {}
  double ConstantValue() const { return 0; }
  friend bool operator==(const Zeros&, const Zeros&) = default;
};

struct Ones {
  static constexpr const char* kName = "Ones";
  template <typename Self, typename F> static void Fields(Self&, F&&) {}
  double ConstantValue() const { return 1; }
  friend bool operator==(const Ones&, const Ones&) = default;
};

struct Constant {
  static constexpr const char* kName = "Constant";
  double value = 0;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) { f(Field::Any("value"), s.value); }
  double ConstantValue() const { return value; }
  friend bool operator==(const Constant&, const Constant&) = default;
};

// RandomNormal and TruncatedNormal: the same fields, two Keras classes.
template <const char* Name>
struct NormalDistribution {
  static constexpr const char* kName = Name;
  double mean = 0;
  double stddev = kDefaultRandomStddev;
  Seed seed;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Any("mean"), s.mean);
    f(Field::Positive("stddev"), s.stddev);
    f(Field::Any("seed"), s.seed);
  }
  friend bool operator==(const NormalDistribution&, const NormalDistribution&) = default;
};

inline constexpr char kRandomNormal[] = "RandomNormal", kTruncatedNormal[] = "TruncatedNormal";
// mean + stddev * N(0, 1).
using RandomNormal = NormalDistribution<kRandomNormal>;
// mean + stddev * N(0, 1) redrawn outside 2 stddevs; not corrected, so the
// samples' stddev is 0.88 stddev (Keras's TruncatedNormal).
using TruncatedNormal = NormalDistribution<kTruncatedNormal>;

// U[minval, maxval).
struct RandomUniform {
  static constexpr const char* kName = "RandomUniform";
  double minval = -kDefaultRandomUniformLimit;
  double maxval = kDefaultRandomUniformLimit;
  Seed seed;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Any("minval"), s.minval);
    f(Field::Any("maxval"), s.maxval);
    f(Field::Any("seed"), s.seed);
  }
  absl::Status Check() const;
  friend bool operator==(const RandomUniform&, const RandomUniform&) = default;
};

// Keras 3.15+ writes VarianceScaling's (and its presets') input_axes and
// output_axes, null unless set: the axes to compute fans over.
inline constexpr NullOnlyKey kVarianceScalingAxesKeys[] = {
    {"input_axes", "gradflow computes fans over the whole shape (Keras's default, input_axes None)"},
    {"output_axes", "gradflow computes fans over the whole shape (Keras's default, output_axes None)"}};

// Target variance scale / max(1, fan) with fan chosen by `mode`: a
// truncated normal corrected to that variance, an untruncated normal, or a
// uniform on [-sqrt(3 var), sqrt(3 var)].
struct VarianceScaling {
  static constexpr const char* kName = "VarianceScaling";
  double scale = 1.0;
  Mode mode = Mode::kFanIn;
  Distribution distribution = Distribution::kTruncatedNormal;
  Seed seed;
  static constexpr std::span<const NullOnlyKey> kNullOnlyKeys = kVarianceScalingAxesKeys;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Positive("scale"), s.scale);
    f(Field::OneOf("mode", kModeNames), s.mode);
    f(Field::OneOf("distribution", kDistributionNames).Aliases(kDistributionAliases), s.distribution);
    f(Field::Any("seed"), s.seed);
  }
  friend bool operator==(const VarianceScaling&, const VarianceScaling&) = default;
};

// A VarianceScaling with fixed settings under its own Keras name; only the
// seed is configurable (Keras's GlorotNormal(seed=None), ...).
// (Scale is an int: clang 14, which the fuzz and tsan configs use, takes no
// floating-point template arguments; the presets' scales are 1 and 2.)
template <const char* Name, int Scale, Mode M, Distribution D>
struct VarianceScalingPreset {
  static constexpr const char* kName = Name;
  Seed seed;
  static constexpr std::span<const NullOnlyKey> kNullOnlyKeys = kVarianceScalingAxesKeys;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) { f(Field::Any("seed"), s.seed); }
  VarianceScaling Scaling() const { return {.scale = double(Scale), .mode = M, .distribution = D, .seed = seed}; }
  friend bool operator==(const VarianceScalingPreset&, const VarianceScalingPreset&) = default;
};

inline constexpr char kGlorotNormal[] = "GlorotNormal", kGlorotUniform[] = "GlorotUniform";
inline constexpr char kHeNormal[] = "HeNormal", kHeUniform[] = "HeUniform";
inline constexpr char kLecunNormal[] = "LecunNormal", kLecunUniform[] = "LecunUniform";
// Glorot & Bengio 2010: scale 1, fan_avg. He et al. 2015: scale 2, fan_in.
// LeCun 1998 (used with SELU): scale 1, fan_in. "*Normal" draw a truncated
// normal, "*Uniform" a uniform.
using GlorotNormal = VarianceScalingPreset<kGlorotNormal, 1, Mode::kFanAvg, Distribution::kTruncatedNormal>;
using GlorotUniform = VarianceScalingPreset<kGlorotUniform, 1, Mode::kFanAvg, Distribution::kUniform>;
using HeNormal = VarianceScalingPreset<kHeNormal, 2, Mode::kFanIn, Distribution::kTruncatedNormal>;
using HeUniform = VarianceScalingPreset<kHeUniform, 2, Mode::kFanIn, Distribution::kUniform>;
using LecunNormal = VarianceScalingPreset<kLecunNormal, 1, Mode::kFanIn, Distribution::kTruncatedNormal>;
using LecunUniform = VarianceScalingPreset<kLecunUniform, 1, Mode::kFanIn, Distribution::kUniform>;

// Saxe et al. 2014: a random orthogonal matrix times `gain`.
struct Orthogonal {
  static constexpr const char* kName = "Orthogonal";
  double gain = 1.0;
  Seed seed;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::Any("gain"), s.gain);
    f(Field::Any("seed"), s.seed);
  }
  friend bool operator==(const Orthogonal&, const Orthogonal&) = default;
};

// gain times the identity matrix (ones on the main diagonal of a
// [rows, cols] matrix, rows != cols allowed, as Keras's eye).
struct Identity {
  static constexpr const char* kName = "Identity";
  double gain = 1.0;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) { f(Field::Any("gain"), s.gain); }
  friend bool operator==(const Identity&, const Identity&) = default;
};

}  // namespace init

// One initializer: a value of one of the described structs above.
class Initializer {
 public:
  using Variant = std::variant<init::Zeros, init::Ones, init::Constant, init::RandomNormal, init::RandomUniform,
                               init::TruncatedNormal, init::VarianceScaling, init::GlorotNormal,
                               init::GlorotUniform, init::HeNormal, init::HeUniform, init::LecunNormal,
                               init::LecunUniform, init::Orthogonal, init::Identity>;
  using Mode = init::Mode;
  using Distribution = init::Distribution;

  Initializer() : Initializer(init::Zeros{}) {}
  template <typename T>
    requires std::is_constructible_v<Variant, T>
  Initializer(T alternative)  // NOLINT: every init:: struct is an Initializer
      : alternative_(std::move(alternative)) {}

  const Variant& alternative() const { return alternative_; }
  // Keras's class name ("HeNormal") and snake_case alias ("he_normal").
  std::string class_name() const { return VariantName(alternative_); }
  std::string name() const;
  // Zeros, Ones and Constant fill any dtype; the others need f32.
  bool is_constant() const;
  // The value a constant initializer fills (Zeros 0, Ones 1, Constant its
  // value); NaN for the random ones.
  double constant_value() const;
  friend bool operator==(const Initializer& a, const Initializer& b) { return a.alternative_ == b.alternative_; }

 private:
  Variant alternative_;
};

// The factories with Keras's default arguments.
inline Initializer Zeros() { return init::Zeros{}; }
inline Initializer Ones() { return init::Ones{}; }
inline Initializer Constant(double value) { return init::Constant{value}; }
inline Initializer RandomNormal(double mean = 0, double stddev = kDefaultRandomStddev) {
  return init::RandomNormal{.mean = mean, .stddev = stddev};
}
inline Initializer RandomUniform(double minval = -kDefaultRandomUniformLimit,
                                 double maxval = kDefaultRandomUniformLimit) {
  return init::RandomUniform{.minval = minval, .maxval = maxval};
}
inline Initializer TruncatedNormal(double mean = 0, double stddev = kDefaultRandomStddev) {
  return init::TruncatedNormal{.mean = mean, .stddev = stddev};
}
inline Initializer VarianceScaling(double scale = 1.0, init::Mode mode = init::Mode::kFanIn,
                                   init::Distribution distribution = init::Distribution::kTruncatedNormal) {
  return init::VarianceScaling{.scale = scale, .mode = mode, .distribution = distribution};
}
inline Initializer GlorotNormal() { return init::GlorotNormal{}; }
inline Initializer GlorotUniform() { return init::GlorotUniform{}; }
inline Initializer HeNormal() { return init::HeNormal{}; }
inline Initializer HeUniform() { return init::HeUniform{}; }
inline Initializer LecunNormal() { return init::LecunNormal{}; }
inline Initializer LecunUniform() { return init::LecunUniform{}; }
inline Initializer Orthogonal(double gain = 1.0) { return init::Orthogonal{.gain = gain}; }
inline Initializer Identity(double gain = 1.0) { return init::Identity{.gain = gain}; }

// The initializer called `name`, by Keras class name or alias ("HeNormal"
// or "he_normal"), with Keras's defaults. Unknown names are InvalidArgument
// errors that list the valid names.
absl::StatusOr<Initializer> InitializerFromName(std::string_view name);
// "Zeros, zeros, Ones, ones, ...": every name InitializerFromName accepts.
std::string InitializerNamesList();

// Its fields' ranges (stddev > 0, a known mode, ...): InvalidArgument naming
// the initializer, the field and the value.
absl::Status ValidateInitializer(const Initializer& init);

// (fan_in, fan_out) as Keras's _compute_fans: rank 0 -> (1, 1); rank 1 [n] ->
// (n, n); rank 2 [in, out] -> (in, out); rank > 2 conv kernel
// [...spatial..., in, out] -> (in * r, out * r), r = product of spatial dims.
std::pair<double, double> ComputeFans(const Shape& shape);

// Fills `t` in row-major order, drawing from `rng` (or from Rng(seed) for a
// seeded initializer) sequentially: the same seed gives the same values.
// Zeros/Ones/Constant accept any dtype; the random kinds need an f32 tensor
// (checked: violating it aborts with a message; use TryInitialize to get a
// Status instead). Orthogonal and Identity see the shape as
// [prod(shape[:-1]), shape[-1]]; where Keras rejects rank < 2 this treats a
// rank-1 [n] tensor as [1, n] and a scalar as [1, 1].
void Initialize(const Initializer& init, Rng& rng, Tensor& t);

// Initialize after checking the initializer's fields and that `t` has a
// known shape and a dtype the initializer supports.
absl::Status TryInitialize(const Initializer& init, Rng& rng, Tensor& t);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_INITIALIZERS_H_
