#include "core/initializers.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeed = 42;

// The statistics tests draw a [1000, 500] kernel: N = 500,000 samples. The
// standard error of a sample stddev is sigma * sqrt((kurtosis - 1) / (4 N)):
// 0.0010 sigma for a normal (kurtosis 3), less for the [-2, 2]-truncated
// normal (2.36) and the uniform (1.8). A 1% relative tolerance is >= 10
// standard errors, yet every plausible bug (a missing 0.8796 correction: 12%;
// fan_in vs fan_avg here: 18%; scale 1 vs 2: 29%) is far outside it.
constexpr int64_t kFanIn = 1000, kFanOut = 500;
constexpr double kStddevRelTolerance = 0.01;
// Standard error of the mean is sigma / sqrt(N) = 0.0014 sigma: 7 of them.
constexpr double kMeanTolerance = 0.01;  // in units of the target stddev
// Q^T Q is computed from f32 values (relative rounding 6e-8) summed over up
// to a few hundred terms.
constexpr double kOrthogonalityTolerance = 1e-5;

struct Moments {
  double mean = 0, stddev = 0, max_abs = 0;
};

Moments ComputeMoments(const Tensor& t) {
  Moments m;
  double sum = 0, sum_sq = 0;
  for (float x : t.flat<float>()) {
    sum += x;
    m.max_abs = std::max(m.max_abs, double(std::abs(x)));
  }
  const double n = double(t.num_elements());
  m.mean = sum / n;
  for (float x : t.flat<float>()) sum_sq += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(sum_sq / n);
  return m;
}

Moments DrawKernel(const Initializer& init, Shape shape = {kFanIn, kFanOut}) {
  Tensor t(DType::kF32, std::move(shape));
  Rng rng(kSeed);
  Initialize(init, rng, t);
  return ComputeMoments(t);
}

void ExpectStddev(const Initializer& init, double target) {
  SCOPED_TRACE(init.name());
  Moments m = DrawKernel(init);
  EXPECT_NEAR(m.stddev, target, kStddevRelTolerance * target);
  EXPECT_NEAR(m.mean, 0.0, kMeanTolerance * target);
}

TEST(InitializersTest, TruncationCorrectionIsTheStddevOfTheTruncatedNormal) {
  // Var of N(0,1) truncated to [-a, a] = 1 - 2 a phi(a) / (2 Phi(a) - 1).
  const double a = kTruncationStddevs;
  const double phi = std::exp(-a * a / 2) / std::sqrt(2 * std::numbers::pi);
  const double mass = std::erf(a / std::numbers::sqrt2);
  EXPECT_NEAR(std::sqrt(1 - 2 * a * phi / mass), kTruncatedNormalStddevCorrection, 1e-15);
}

TEST(InitializersTest, HeNormalStddev) {
  ExpectStddev(HeNormal(), std::sqrt(2.0 / kFanIn));
}

TEST(InitializersTest, GlorotUniformStddevAndLimit) {
  const double variance = 2.0 / (kFanIn + kFanOut);
  ExpectStddev(GlorotUniform(), std::sqrt(variance));
  EXPECT_LE(DrawKernel(GlorotUniform()).max_abs, std::sqrt(3 * variance));
}

TEST(InitializersTest, LecunNormalStddev) {
  ExpectStddev(LecunNormal(), std::sqrt(1.0 / kFanIn));
}

TEST(InitializersTest, OtherVarianceScalingVariants) {
  ExpectStddev(GlorotNormal(), std::sqrt(2.0 / (kFanIn + kFanOut)));
  ExpectStddev(HeUniform(), std::sqrt(2.0 / kFanIn));
  ExpectStddev(LecunUniform(), std::sqrt(1.0 / kFanIn));
  ExpectStddev(VarianceScaling(3.0, Initializer::Mode::kFanOut,
                               Initializer::Distribution::kUntruncatedNormal),
               std::sqrt(3.0 / kFanOut));
}

TEST(InitializersTest, RandomNormalAndUniformUseTheirParameters) {
  Moments n = DrawKernel(RandomNormal(1.5, 0.2));
  EXPECT_NEAR(n.mean, 1.5, kMeanTolerance * 0.2);
  EXPECT_NEAR(n.stddev, 0.2, kStddevRelTolerance * 0.2);

  Tensor t(DType::kF32, {kFanIn, kFanOut});
  Rng rng(kSeed);
  Initialize(RandomUniform(-0.3, 0.1), rng, t);
  Moments u = ComputeMoments(t);
  EXPECT_NEAR(u.mean, -0.1, kMeanTolerance * 0.4);
  EXPECT_NEAR(u.stddev, 0.4 / std::sqrt(12.0), kStddevRelTolerance * 0.4 / std::sqrt(12.0));
  for (float x : t.flat<float>()) {
    ASSERT_GE(x, -0.3f);
    ASSERT_LE(x, 0.1f);
  }
}

TEST(InitializersTest, TruncatedNormalNeverExceedsTwoStddevs) {
  constexpr double kStddev = 0.05;
  Moments m = DrawKernel(TruncatedNormal(0.0, kStddev));
  // Rounding is monotonic, so the f32 samples stay within the f32 bound.
  EXPECT_LE(m.max_abs, static_cast<float>(kTruncationStddevs * kStddev));
  // ... and the tails are really drawn (P(|z| > 1.9) ~ 1.4% of 500k).
  EXPECT_GT(m.max_abs, 1.9 * kStddev);
  EXPECT_NEAR(m.stddev, kStddev * kTruncatedNormalStddevCorrection,
              kStddevRelTolerance * kStddev);

  // Variance scaling truncates at 2 of its corrected stddevs.
  const double he_stddev = std::sqrt(2.0 / kFanIn) / kTruncatedNormalStddevCorrection;
  EXPECT_LE(DrawKernel(HeNormal()).max_abs, static_cast<float>(kTruncationStddevs * he_stddev));
}

// Max |(A A^T)_ij - gain^2 delta_ij| over the `n` rows of the row-major
// [n, len] matrix `a` (n <= len); with `columns`, over its columns instead.
double MaxOrthogonalityError(const Tensor& t, int64_t rows, int64_t cols, bool columns,
                             double gain) {
  const float* a = t.data<float>();
  const int64_t n = columns ? cols : rows, len = columns ? rows : cols;
  auto at = [&](int64_t vec, int64_t k) {
    return double(columns ? a[k * cols + vec] : a[vec * cols + k]);
  };
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < len; ++k) dot += at(i, k) * at(j, k);
      err = std::max(err, std::abs(dot - (i == j ? gain * gain : 0.0)));
    }
  }
  return err;
}

TEST(InitializersTest, OrthogonalTallHasOrthonormalColumns) {
  Tensor t(DType::kF32, {64, 32});
  Rng rng(kSeed);
  Initialize(Orthogonal(), rng, t);
  EXPECT_LT(MaxOrthogonalityError(t, 64, 32, /*columns=*/true, 1.0), kOrthogonalityTolerance);
}

TEST(InitializersTest, OrthogonalWideHasOrthonormalRows) {
  Tensor t(DType::kF32, {32, 64});
  Rng rng(kSeed);
  Initialize(Orthogonal(), rng, t);
  EXPECT_LT(MaxOrthogonalityError(t, 32, 64, /*columns=*/false, 1.0), kOrthogonalityTolerance);
}

TEST(InitializersTest, OrthogonalSquareWithGain) {
  constexpr double kGain = 2.0;
  Tensor t(DType::kF32, {48, 48});
  Rng rng(kSeed);
  Initialize(Orthogonal(kGain), rng, t);
  EXPECT_LT(MaxOrthogonalityError(t, 48, 48, true, kGain), kGain * kGain * kOrthogonalityTolerance);
  EXPECT_LT(MaxOrthogonalityError(t, 48, 48, false, kGain), kGain * kGain * kOrthogonalityTolerance);
}

TEST(InitializersTest, OrthogonalConvKernelFlattensAllButTheLastDim) {
  // [3, 3, 4, 8] -> [36, 8] as Keras: 8 orthonormal columns of length 36.
  Tensor t(DType::kF32, {3, 3, 4, 8});
  Rng rng(kSeed);
  Initialize(Orthogonal(), rng, t);
  EXPECT_LT(MaxOrthogonalityError(t, 36, 8, /*columns=*/true, 1.0), kOrthogonalityTolerance);
}

TEST(InitializersTest, OrthogonalRankOneIsAUnitVector) {
  Tensor t(DType::kF32, {10});
  Rng rng(kSeed);
  Initialize(Orthogonal(), rng, t);
  EXPECT_LT(MaxOrthogonalityError(t, 1, 10, false, 1.0), kOrthogonalityTolerance);
}

TEST(InitializersTest, SameSeedSameValuesOtherSeedOtherValues) {
  for (const Initializer& init : {HeNormal(), GlorotUniform(), RandomNormal(), Orthogonal()}) {
    SCOPED_TRACE(init.name());
    Tensor a(DType::kF32, {20, 30}), b(DType::kF32, {20, 30}), c(DType::kF32, {20, 30});
    Rng ra(kSeed), rb(kSeed), rc(kSeed + 1);
    Initialize(init, ra, a);
    Initialize(init, rb, b);
    Initialize(init, rc, c);
    EXPECT_EQ(a.ToVector<float>(), b.ToVector<float>());
    EXPECT_NE(a.ToVector<float>(), c.ToVector<float>());
  }
}

TEST(InitializersTest, ComputeFansAsKeras) {
  EXPECT_EQ(ComputeFans({784, 300}), std::make_pair(784.0, 300.0));
  // Conv kernel [h, w, in, out]: receptive field 3 * 3 = 9.
  EXPECT_EQ(ComputeFans({3, 3, 64, 128}), std::make_pair(9.0 * 64, 9.0 * 128));
  EXPECT_EQ(ComputeFans({5, 3, 7}), std::make_pair(15.0, 35.0));
  EXPECT_EQ(ComputeFans({10}), std::make_pair(10.0, 10.0));
  EXPECT_EQ(ComputeFans({}), std::make_pair(1.0, 1.0));
}

TEST(InitializersTest, ConvKernelUsesReceptiveFieldFans) {
  // he_normal on [3, 3, 64, 32]: fan_in = 576; 18,432 samples -> the standard
  // error of the stddev is ~0.5%, so allow 3% (6 standard errors).
  Moments m = DrawKernel(HeNormal(), {3, 3, 64, 32});
  EXPECT_NEAR(m.stddev, std::sqrt(2.0 / 576), 0.03 * std::sqrt(2.0 / 576));
}

TEST(InitializersTest, ConstantsFillAnyDtype) {
  Rng rng(kSeed);
  Tensor f(DType::kF32, {2, 3});
  Initialize(Constant(0.25), rng, f);
  for (float x : f.flat<float>()) EXPECT_EQ(x, 0.25f);
  Initialize(Zeros(), rng, f);
  for (float x : f.flat<float>()) EXPECT_EQ(x, 0.0f);
  Tensor i(DType::kI64, {4});
  Initialize(Ones(), rng, i);
  for (int64_t x : i.flat<int64_t>()) EXPECT_EQ(x, 1);
}

TEST(InitializersTest, FromNameReturnsKerasDefaults) {
  for (const char* name :
       {"zeros", "ones", "constant", "random_normal", "random_uniform", "truncated_normal",
        "variance_scaling", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
        "lecun_normal", "lecun_uniform", "orthogonal"}) {
    absl::StatusOr<Initializer> init = InitializerFromName(name);
    ASSERT_TRUE(init.ok()) << name << ": " << init.status();
    EXPECT_EQ(init->name(), name);
  }
  absl::StatusOr<Initializer> he = InitializerFromName("he_uniform");
  ASSERT_TRUE(he.ok());
  ASSERT_TRUE(std::holds_alternative<init::HeUniform>(he->alternative()));
  const init::VarianceScaling scaling = std::get<init::HeUniform>(he->alternative()).Scaling();
  EXPECT_EQ(scaling.scale, 2.0);
  EXPECT_EQ(scaling.mode, Initializer::Mode::kFanIn);
  EXPECT_EQ(scaling.distribution, Initializer::Distribution::kUniform);
  absl::StatusOr<Initializer> rn = InitializerFromName("random_normal");
  ASSERT_TRUE(rn.ok());
  EXPECT_EQ(std::get<init::RandomNormal>(rn->alternative()).stddev, 0.05);
  // Keras's class names work too.
  absl::StatusOr<Initializer> by_class = InitializerFromName("HeUniform");
  ASSERT_TRUE(by_class.ok());
  EXPECT_EQ(*by_class, *he);
}

// Keras 3's VarianceScaling(scale=1.0, mode="fan_in",
// distribution="truncated_normal", seed=None), and the one-liner
// VarianceScaling(scale=2, mode="fan_avg", distribution="uniform").
TEST(InitializersTest, VarianceScalingStructHasKeras3DefaultsAndFields) {
  const init::VarianceScaling keras_defaults;
  EXPECT_EQ(keras_defaults.scale, 1.0);
  EXPECT_EQ(keras_defaults.mode, init::Mode::kFanIn);
  EXPECT_EQ(keras_defaults.distribution, init::Distribution::kTruncatedNormal);
  EXPECT_FALSE(keras_defaults.seed.has_value());
  ExpectStddev(keras_defaults, std::sqrt(1.0 / kFanIn));
  const Initializer one_liner = init::VarianceScaling{
      .scale = 2, .mode = init::Mode::kFanAvg, .distribution = init::Distribution::kUniform};
  const double variance = 2.0 / ((kFanIn + kFanOut) / 2.0);
  ExpectStddev(one_liner, std::sqrt(variance));
  EXPECT_LE(DrawKernel(one_liner).max_abs, std::sqrt(3 * variance));
  ExpectStddev(init::VarianceScaling{.scale = 2, .mode = init::Mode::kFanOut,
                                     .distribution = init::Distribution::kTruncatedNormal},
               std::sqrt(2.0 / kFanOut));
}

TEST(InitializersTest, FromNameErrorListsValidNames) {
  absl::StatusOr<Initializer> init = InitializerFromName("he_normall");
  ASSERT_FALSE(init.ok());
  EXPECT_EQ(init.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(init.status().message());
  EXPECT_THAT(msg, HasSubstr("'he_normall'"));
  EXPECT_THAT(msg, HasSubstr("glorot_uniform"));
  EXPECT_THAT(msg, HasSubstr("he_normal"));
  EXPECT_THAT(msg, HasSubstr("zeros"));
}

TEST(InitializersTest, TryInitializeRejectsWhatInitializeCannotFill) {
  Rng rng(kSeed);
  Tensor labels(DType::kI32, {4});
  absl::Status s = TryInitialize(HeNormal(), rng, labels);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("f32"));
  Tensor empty;
  EXPECT_FALSE(TryInitialize(Zeros(), rng, empty).ok());
  EXPECT_TRUE(TryInitialize(Ones(), rng, labels).ok());
  Tensor w(DType::kF32, {3, 3});
  EXPECT_TRUE(TryInitialize(GlorotUniform(), rng, w).ok());
}

// Every initializer by its Keras name on the chapter's first hidden kernel,
// [784, 300] (fan_in 784, fan_out 300, fan_avg 542; N = 235,200 samples):
// sample mean and stddev against Keras's formula, and the bound the samples
// must respect (uniform: +-limit; truncated normals: 2 stddevs of the
// untruncated distribution) with the tails actually reached. Standard errors
// for N = 235,200: stddev <= 0.0015 sigma, mean 0.0021 sigma; the 1% / 0.01
// sigma tolerances of the 1000x500 tests above are > 4.5 of them.
TEST(InitializersTest, KerasStatisticsOnA784By300Kernel) {
  constexpr double kIn = 784, kOut = 300, kAvg = (kIn + kOut) / 2;
  const double c = kTruncatedNormalStddevCorrection;
  struct Expected {
    const char* name;
    double mean, stddev;
    double limit;  // max |x - mean|; 0: unbounded (checked loosely)
  };
  auto truncated = [&](const char* name, double variance) {
    // VarianceScaling draws N(0, sqrt(variance) / c) truncated at 2 of its stddevs.
    return Expected{name, 0, std::sqrt(variance), kTruncationStddevs * std::sqrt(variance) / c};
  };
  auto uniform = [](const char* name, double variance) {
    const double limit = std::sqrt(3 * variance);
    return Expected{name, 0, limit / std::sqrt(3.0), limit};
  };
  const Expected cases[] = {
      truncated("glorot_normal", 1 / kAvg),
      uniform("glorot_uniform", 1 / kAvg),
      truncated("he_normal", 2 / kIn),
      uniform("he_uniform", 2 / kIn),
      truncated("lecun_normal", 1 / kIn),
      uniform("lecun_uniform", 1 / kIn),
      truncated("variance_scaling", 1 / kIn),  // Keras defaults: scale 1, fan_in, truncated
      {"random_normal", 0, kDefaultRandomStddev, 0},
      {"random_uniform", 0, 2 * kDefaultRandomUniformLimit / std::sqrt(12.0), kDefaultRandomUniformLimit},
      // TruncatedNormal(stddev=0.05) is not corrected: its samples have 0.05 c.
      {"truncated_normal", 0, kDefaultRandomStddev * c, kTruncationStddevs * kDefaultRandomStddev},
      // [784, 300] orthogonal: 300 orthonormal columns of length 784, so the
      // mean square is exactly 300 / (784 * 300).
      {"orthogonal", 0, 1 / std::sqrt(kIn), 0},
  };
  for (const Expected& e : cases) {
    SCOPED_TRACE(e.name);
    absl::StatusOr<Initializer> init = InitializerFromName(e.name);
    ASSERT_TRUE(init.ok()) << init.status();
    Moments m = DrawKernel(*init, {784, 300});
    EXPECT_NEAR(m.stddev, e.stddev, kStddevRelTolerance * e.stddev);
    EXPECT_NEAR(m.mean, e.mean, kMeanTolerance * e.stddev);
    if (e.limit > 0) {
      EXPECT_LE(m.max_abs, static_cast<float>(e.limit));
      EXPECT_GT(m.max_abs, 0.95 * e.limit);  // the tails are drawn
    } else {
      EXPECT_LT(m.max_abs, 6 * e.stddev);  // P(|z| > 6) * N ~ 5e-4
    }
  }
  for (auto [name, value] : {std::pair{"zeros", 0.0f}, {"ones", 1.0f}, {"constant", 0.0f}}) {
    Tensor t(DType::kF32, {784, 300});
    Rng rng(kSeed);
    Initialize(*InitializerFromName(name), rng, t);
    for (float x : t.flat<float>()) ASSERT_EQ(x, value) << name;
  }
}

TEST(InitializersTest, IdentityIsGainOnTheDiagonal) {
  Tensor t(DType::kF32, {2, 3});
  Rng rng(kSeed);
  Initialize(Identity(0.5), rng, t);
  EXPECT_EQ(t.ToVector<float>(), (std::vector<float>{0.5f, 0, 0, 0, 0.5f, 0}));
}

// A seeded initializer fills every tensor alike, whatever Rng it is given;
// an unseeded one draws from that Rng.
TEST(InitializersTest, SeedFixesTheValues) {
  const Initializer seeded = init::HeNormal{.seed = 7};
  Tensor a(DType::kF32, {20, 30}), b(DType::kF32, {20, 30}), c(DType::kF32, {20, 30});
  Rng ra(kSeed), rb(kSeed + 1), rc(7);
  Initialize(seeded, ra, a);
  Initialize(seeded, rb, b);
  Initialize(HeNormal(), rc, c);
  EXPECT_EQ(a.ToVector<float>(), b.ToVector<float>());
  EXPECT_EQ(a.ToVector<float>(), c.ToVector<float>());  // the same stream as Rng(7)
}

TEST(InitializersTest, FieldRangesAreChecked) {
  Rng rng(kSeed);
  Tensor w(DType::kF32, {3, 3});
  absl::Status s = TryInitialize(RandomNormal(0, -1), rng, w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("RandomNormal stddev must be > 0, got -1"));
  EXPECT_FALSE(ValidateInitializer(VarianceScaling(0)).ok());
  EXPECT_FALSE(ValidateInitializer(RandomUniform(1, -1)).ok());
  EXPECT_FALSE(ValidateInitializer(init::VarianceScaling{.mode = static_cast<init::Mode>(7)}).ok());
  EXPECT_TRUE(ValidateInitializer(init::VarianceScaling{.mode = init::Mode::kFanAvg}).ok());
}

// A constant initializer is told apart by its kind, not by its value: a NaN
// constant still fills (it once passed for a random initializer and filled
// nothing).
TEST(InitializersTest, NanConstantFillsNan) {
  const Initializer nan = Constant(std::numeric_limits<double>::quiet_NaN());
  EXPECT_TRUE(nan.is_constant());
  Tensor t = Tensor::FromVector<float>({3}, {1, 2, 3}).value();
  Rng rng(kSeed);
  ASSERT_TRUE(TryInitialize(nan, rng, t).ok());
  for (float v : t.ToVector<float>()) EXPECT_TRUE(std::isnan(v));
}

TEST(InitializersTest, ConstantValueIsTheFillOfConstantsOnly) {
  EXPECT_EQ(Constant(0.25).constant_value(), 0.25);
  EXPECT_EQ(Ones().constant_value(), 1.0);
  EXPECT_TRUE(Zeros().is_constant());
  EXPECT_FALSE(HeNormal().is_constant());
  EXPECT_TRUE(std::isnan(HeNormal().constant_value()));
}

TEST(InitializersDeathTest, InitializeAbortsOnRandomIntoNonF32) {
  Tensor labels(DType::kI32, {4});
  Rng rng(kSeed);
  EXPECT_DEATH(Initialize(HeNormal(), rng, labels), "f32 tensors only");
}

}  // namespace
}  // namespace gradflow
