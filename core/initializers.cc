#include "core/initializers.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow {
namespace {

Initializer Named(Initializer::Kind kind, std::string name) {
  Initializer init;
  init.kind = kind;
  init.name = std::move(name);
  return init;
}

Initializer Scaling(double scale, Initializer::Mode mode, Initializer::Distribution distribution,
                    std::string name) {
  Initializer init = VarianceScaling(scale, mode, distribution);
  init.name = std::move(name);
  return init;
}

// Keras's VarianceScaling: the target variance is scale / max(1, fan).
double VarianceScalingVariance(const Initializer& init, const Shape& shape) {
  auto [fan_in, fan_out] = ComputeFans(shape);
  double fan = 0;
  switch (init.mode) {
    case Initializer::Mode::kFanIn: fan = fan_in; break;
    case Initializer::Mode::kFanOut: fan = fan_out; break;
    case Initializer::Mode::kFanAvg: fan = (fan_in + fan_out) / 2; break;
  }
  return init.scale / std::max(1.0, fan);
}

template <typename T>
void FillAs(Tensor& t, double v) {
  std::fill(t.data<T>(), t.data<T>() + t.num_elements(), static_cast<T>(v));
}

void Fill(Tensor& t, double v) {
  switch (t.dtype()) {
    case DType::kF32: FillAs<float>(t, v); break;
    case DType::kI32: FillAs<int32_t>(t, v); break;
    case DType::kI64: FillAs<int64_t>(t, v); break;
  }
}

bool IsConstantKind(Initializer::Kind kind) {
  return kind == Initializer::Kind::kZeros || kind == Initializer::Kind::kOnes ||
         kind == Initializer::Kind::kConstant;
}

// A random orthogonal matrix as Keras's Orthogonal: QR of a standard normal
// [max(r, c), min(r, c)] matrix, Q sign-corrected by diag(R), transposed if
// r < c, so the rows (r < c) or the columns (r >= c) are orthonormal.
void FillOrthogonal(double gain, Rng& rng, int64_t rows, int64_t cols, float* dst) {
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  std::vector<double> a(size_t(m * n));
  for (double& x : a) x = rng.Normal();  // row-major [m, n], as Keras draws it
  // q holds the columns of A contiguously, then is overwritten by Q.
  std::vector<double> q(size_t(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) q[j * m + i] = a[i * n + j];
  }
  // Modified Gram-Schmidt in double. Its R has a positive diagonal (the
  // residual norms), so Q already equals Householder's Q * sign(diag(R)),
  // which is what Keras's sign correction produces: the unique such QR.
  for (int64_t j = 0; j < n; ++j) {
    double* v = &q[j * m];
    for (int64_t k = 0; k < j; ++k) {
      const double* u = &q[k * m];
      double r = 0;
      for (int64_t i = 0; i < m; ++i) r += u[i] * v[i];
      for (int64_t i = 0; i < m; ++i) v[i] -= r * u[i];
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += v[i] * v[i];
    norm = std::sqrt(norm);
    // A Gaussian matrix is rank-deficient with probability 0; a zero column
    // stays zero rather than becoming NaN.
    double inv = norm > 0 ? 1.0 / norm : 0.0;
    for (int64_t i = 0; i < m; ++i) v[i] *= inv;
  }
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      // rows >= cols: out = Q [rows, cols]; else out = Q^T with Q [cols, rows].
      double x = rows >= cols ? q[j * m + i] : q[i * m + j];
      dst[i * cols + j] = static_cast<float>(gain * x);
    }
  }
}

// const char*: Debian's absl::StrJoin cannot format std::string_view.
constexpr const char* kInitializerNames[] = {
    "constant",      "glorot_normal", "glorot_uniform",   "he_normal",    "he_uniform",
    "lecun_normal",  "lecun_uniform", "ones",             "orthogonal",   "random_normal",
    "random_uniform", "truncated_normal", "variance_scaling", "zeros",
};

}  // namespace

Initializer Zeros() { return Named(Initializer::Kind::kZeros, "zeros"); }
Initializer Ones() { return Named(Initializer::Kind::kOnes, "ones"); }

Initializer Constant(double value) {
  Initializer init = Named(Initializer::Kind::kConstant, "constant");
  init.value = value;
  return init;
}

Initializer RandomNormal(double mean, double stddev) {
  Initializer init = Named(Initializer::Kind::kRandomNormal, "random_normal");
  init.mean = mean;
  init.stddev = stddev;
  return init;
}

Initializer RandomUniform(double minval, double maxval) {
  Initializer init = Named(Initializer::Kind::kRandomUniform, "random_uniform");
  init.minval = minval;
  init.maxval = maxval;
  return init;
}

Initializer TruncatedNormal(double mean, double stddev) {
  Initializer init = Named(Initializer::Kind::kTruncatedNormal, "truncated_normal");
  init.mean = mean;
  init.stddev = stddev;
  return init;
}

Initializer VarianceScaling(double scale, Initializer::Mode mode,
                            Initializer::Distribution distribution) {
  Initializer init = Named(Initializer::Kind::kVarianceScaling, "variance_scaling");
  init.scale = scale;
  init.mode = mode;
  init.distribution = distribution;
  return init;
}

using Mode = Initializer::Mode;
using Distribution = Initializer::Distribution;

Initializer GlorotNormal() {
  return Scaling(1.0, Mode::kFanAvg, Distribution::kTruncatedNormal, "glorot_normal");
}
Initializer GlorotUniform() {
  return Scaling(1.0, Mode::kFanAvg, Distribution::kUniform, "glorot_uniform");
}
Initializer HeNormal() {
  return Scaling(2.0, Mode::kFanIn, Distribution::kTruncatedNormal, "he_normal");
}
Initializer HeUniform() { return Scaling(2.0, Mode::kFanIn, Distribution::kUniform, "he_uniform"); }
Initializer LecunNormal() {
  return Scaling(1.0, Mode::kFanIn, Distribution::kTruncatedNormal, "lecun_normal");
}
Initializer LecunUniform() {
  return Scaling(1.0, Mode::kFanIn, Distribution::kUniform, "lecun_uniform");
}

Initializer Orthogonal(double gain) {
  Initializer init = Named(Initializer::Kind::kOrthogonal, "orthogonal");
  init.gain = gain;
  return init;
}

absl::StatusOr<Initializer> InitializerFromName(std::string_view name) {
  if (name == "zeros") return Zeros();
  if (name == "ones") return Ones();
  if (name == "constant") return Constant(0.0);  // Keras Constant(value=0)
  if (name == "random_normal") return RandomNormal();
  if (name == "random_uniform") return RandomUniform();
  if (name == "truncated_normal") return TruncatedNormal();
  if (name == "variance_scaling") return VarianceScaling();
  if (name == "glorot_normal") return GlorotNormal();
  if (name == "glorot_uniform") return GlorotUniform();
  if (name == "he_normal") return HeNormal();
  if (name == "he_uniform") return HeUniform();
  if (name == "lecun_normal") return LecunNormal();
  if (name == "lecun_uniform") return LecunUniform();
  if (name == "orthogonal") return Orthogonal();
  return absl::InvalidArgumentError(absl::StrCat("unknown initializer '", std::string(name),
                                                 "'; valid names: ",
                                                 absl::StrJoin(kInitializerNames, ", ")));
}

std::pair<double, double> ComputeFans(const Shape& shape) {
  const int rank = shape.rank();
  if (rank == 0) return {1.0, 1.0};
  if (rank == 1) return {double(shape[0]), double(shape[0])};
  if (rank == 2) return {double(shape[0]), double(shape[1])};
  double receptive_field = 1;
  for (int i = 0; i < rank - 2; ++i) receptive_field *= double(shape[i]);
  return {double(shape[rank - 2]) * receptive_field, double(shape[rank - 1]) * receptive_field};
}

absl::Status TryInitialize(const Initializer& init, Rng& rng, Tensor& t) {
  if (t.empty() || !t.shape().IsFullyKnown()) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", init.name,
                                                   "' needs an allocated tensor of known shape, got ",
                                                   t.empty() ? "an empty tensor" : t.DebugString(0)));
  }
  if (!IsConstantKind(init.kind) && t.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", init.name,
                                                   "' fills f32 tensors only, got ",
                                                   std::string(DTypeName(t.dtype())), t.shape().ToString()));
  }
  Initialize(init, rng, t);
  return absl::OkStatus();
}

void Initialize(const Initializer& init, Rng& rng, Tensor& t) {
  if (t.empty() || t.num_elements() == 0) return;  // nothing to fill
  switch (init.kind) {
    case Initializer::Kind::kZeros: Fill(t, 0.0); return;
    case Initializer::Kind::kOnes: Fill(t, 1.0); return;
    case Initializer::Kind::kConstant: Fill(t, init.value); return;
    default: break;
  }
  if (t.dtype() != DType::kF32) {
    // A programming error, like a failed CHECK (Debian's Abseil has none).
    std::fprintf(stderr, "gradflow::Initialize: initializer '%s' fills f32 tensors only, got %s\n",
                 init.name.c_str(), t.DebugString(0).c_str());
    std::abort();
  }
  std::span<float> out = t.flat<float>();
  switch (init.kind) {
    case Initializer::Kind::kRandomNormal:
      for (float& x : out) x = static_cast<float>(init.mean + init.stddev * rng.Normal());
      return;
    case Initializer::Kind::kRandomUniform:
      for (float& x : out) x = static_cast<float>(rng.Uniform(init.minval, init.maxval));
      return;
    case Initializer::Kind::kTruncatedNormal:
      // Rng::TruncatedNormal redraws outside [-2, 2]: kTruncationStddevs.
      for (float& x : out) x = static_cast<float>(init.mean + init.stddev * rng.TruncatedNormal());
      return;
    case Initializer::Kind::kVarianceScaling: {
      const double variance = VarianceScalingVariance(init, t.shape());
      switch (init.distribution) {
        case Distribution::kTruncatedNormal: {
          const double stddev = std::sqrt(variance) / kTruncatedNormalStddevCorrection;
          for (float& x : out) x = static_cast<float>(stddev * rng.TruncatedNormal());
          return;
        }
        case Distribution::kUntruncatedNormal: {
          const double stddev = std::sqrt(variance);
          for (float& x : out) x = static_cast<float>(stddev * rng.Normal());
          return;
        }
        case Distribution::kUniform: {
          // Var(U(-l, l)) = l^2 / 3.
          const double limit = std::sqrt(3.0 * variance);
          for (float& x : out) x = static_cast<float>(rng.Uniform(-limit, limit));
          return;
        }
      }
      return;
    }
    case Initializer::Kind::kOrthogonal: {
      const Shape& s = t.shape();
      const int64_t cols = s.rank() == 0 ? 1 : s[s.rank() - 1];
      const int64_t rows = cols == 0 ? 0 : t.num_elements() / cols;
      FillOrthogonal(init.gain, rng, rows, cols, out.data());
      return;
    }
    default: return;  // constant kinds were handled above
  }
}

}  // namespace gradflow
