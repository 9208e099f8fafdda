#include "core/initializers.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace gradflow {
namespace {

// Keras's VarianceScaling: the target variance is scale / max(1, fan).
double VarianceScalingVariance(const init::VarianceScaling& init, const Shape& shape) {
  auto [fan_in, fan_out] = ComputeFans(shape);
  double fan = 0;
  switch (init.mode) {
    case init::Mode::kFanIn: fan = fan_in; break;
    case init::Mode::kFanOut: fan = fan_out; break;
    case init::Mode::kFanAvg: fan = (fan_in + fan_out) / 2; break;
  }
  return init.scale / std::max(1.0, fan);
}

void Fill(Tensor& t, double v) {
  VisitDType(t.dtype(), [&](auto zero) {
    using T = decltype(zero);
    std::fill(t.data<T>(), t.data<T>() + t.num_elements(), static_cast<T>(v));
  });
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


// The [rows, cols] matrix Orthogonal and Identity see a tensor as.
std::pair<int64_t, int64_t> MatrixDims(const Tensor& t) {
  const Shape& s = t.shape();
  const int64_t cols = s.rank() == 0 ? 1 : s[s.rank() - 1];
  return {cols == 0 ? 0 : t.num_elements() / cols, cols};
}

// One Fill per kind of random initializer, into an f32 span.
void FillRandom(const init::RandomNormal& i, Rng& rng, std::span<float> out, const Tensor&) {
  for (float& x : out) x = static_cast<float>(i.mean + i.stddev * rng.Normal());
}

void FillRandom(const init::RandomUniform& i, Rng& rng, std::span<float> out, const Tensor&) {
  for (float& x : out) x = static_cast<float>(rng.Uniform(i.minval, i.maxval));
}

void FillRandom(const init::TruncatedNormal& i, Rng& rng, std::span<float> out, const Tensor&) {
  // Rng::TruncatedNormal redraws outside [-2, 2]: kTruncationStddevs.
  for (float& x : out) x = static_cast<float>(i.mean + i.stddev * rng.TruncatedNormal());
}

void FillRandom(const init::VarianceScaling& i, Rng& rng, std::span<float> out, const Tensor& t) {
  const double variance = VarianceScalingVariance(i, t.shape());
  switch (i.distribution) {
    case init::Distribution::kTruncatedNormal: {
      const double stddev = std::sqrt(variance) / kTruncatedNormalStddevCorrection;
      for (float& x : out) x = static_cast<float>(stddev * rng.TruncatedNormal());
      return;
    }
    case init::Distribution::kUntruncatedNormal: {
      const double stddev = std::sqrt(variance);
      for (float& x : out) x = static_cast<float>(stddev * rng.Normal());
      return;
    }
    case init::Distribution::kUniform: {
      // Var(U(-l, l)) = l^2 / 3.
      const double limit = std::sqrt(3.0 * variance);
      for (float& x : out) x = static_cast<float>(rng.Uniform(-limit, limit));
      return;
    }
  }
}

void FillRandom(const init::Orthogonal& i, Rng& rng, std::span<float> out, const Tensor& t) {
  auto [rows, cols] = MatrixDims(t);
  FillOrthogonal(i.gain, rng, rows, cols, out.data());
}

// Deterministic, but not a constant: it needs the f32 matrix view.
void FillRandom(const init::Identity& i, Rng&, std::span<float> out, const Tensor& t) {
  auto [rows, cols] = MatrixDims(t);
  std::fill(out.begin(), out.end(), 0.0f);
  for (int64_t d = 0; d < std::min(rows, cols); ++d) out[d * cols + d] = static_cast<float>(i.gain);
}

template <const char* N, int S, init::Mode M, init::Distribution D>
void FillRandom(const init::VarianceScalingPreset<N, S, M, D>& i, Rng& rng, std::span<float> out,
                const Tensor& t) {
  FillRandom(i.Scaling(), rng, out, t);
}

// A seeded initializer draws from its own stream (init::Seed).
template <typename T>
void FillSeeded(const T& i, Rng& rng, Tensor& t) {
  if constexpr (requires { i.seed; }) {
    if (i.seed) {
      Rng seeded(*i.seed);
      FillRandom(i, seeded, t.flat<float>(), t);
      return;
    }
  }
  FillRandom(i, rng, t.flat<float>(), t);
}

}  // namespace

absl::Status init::RandomUniform::Check() const {
  if (minval <= maxval) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("RandomUniform minval must be <= maxval, got minval ", minval, ", maxval ", maxval));
}

bool Initializer::is_constant() const {
  return std::visit([](const auto& i) { return requires { i.ConstantValue(); }; }, alternative_);
}

double Initializer::constant_value() const {
  return std::visit([](const auto& i) {
    if constexpr (requires { i.ConstantValue(); }) {
      return i.ConstantValue();
    } else {
      return std::numeric_limits<double>::quiet_NaN();
    }
  }, alternative_);
}

std::string Initializer::name() const {
  return std::visit([](const auto& i) { return KerasAlias<std::decay_t<decltype(i)>>(); }, alternative_);
}

absl::StatusOr<Initializer> InitializerFromName(std::string_view name) {
  if (auto found = VariantFromKerasName<Initializer::Variant>(name)) return Initializer(*std::move(found));
  return absl::InvalidArgumentError(
      absl::StrCat("unknown initializer ", QuoteUserText(name), "; valid names: ", InitializerNamesList()));
}

std::string InitializerNamesList() { return absl::StrJoin(VariantKerasNames<Initializer::Variant>(), ", "); }

absl::Status ValidateInitializer(const Initializer& init) {
  return std::visit([](const auto& i) { return ValidateFields(i); }, init.alternative());
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
  GF_RETURN_IF_ERROR(ValidateInitializer(init));
  if (t.empty() || !t.shape().IsFullyKnown()) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", init.class_name(),
                                                   "' needs an allocated tensor of known shape, got ",
                                                   t.empty() ? "an empty tensor" : t.DebugString(0)));
  }
  if (!init.is_constant() && t.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", init.class_name(),
                                                   "' fills f32 tensors only, got ",
                                                   std::string(DTypeName(t.dtype())), t.shape().ToString()));
  }
  Initialize(init, rng, t);
  return absl::OkStatus();
}

void Initialize(const Initializer& init, Rng& rng, Tensor& t) {
  if (t.empty() || t.num_elements() == 0) return;  // nothing to fill
  if (init.is_constant()) {
    Fill(t, init.constant_value());
    return;
  }
  if (t.dtype() != DType::kF32) {
    // A programming error, like a failed CHECK (Debian's Abseil has none).
    std::fprintf(stderr, "gradflow::Initialize: initializer '%s' fills f32 tensors only, got %s\n",
                 init.class_name().c_str(), t.DebugString(0).c_str());
    std::abort();
  }
  std::visit([&](const auto& i) {
    if constexpr (!requires { i.ConstantValue(); }) FillSeeded(i, rng, t);
  }, init.alternative());
}

}  // namespace gradflow
