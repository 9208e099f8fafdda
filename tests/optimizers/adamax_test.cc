// Tests of optimizers/adamax.cc against a double reference of Keras's formula.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras 2.11+ Adamax (keras/optimizers/adamax.py, update_step), t = iterations + 1:
//   m <- m + (g - m) * (1 - beta_1)
//   u <- max(beta_2 * u, |g|)
//   w <- w - lr * m / ((1 - beta_1^t) * (u + epsilon))
struct AdamaxReference : Reference {
  double lr, beta_1, beta_2, epsilon;
  AdamaxReference(double lr, double beta_1, double beta_2, double epsilon)
      : lr(lr), beta_1(beta_1), beta_2(beta_2), epsilon(epsilon) {
    slots["m"] = std::vector<double>(kN, 0.0);
    slots["u"] = std::vector<double>(kN, 0.0);
  }
  void Step(int step, const std::vector<double>& g) override {
    const double beta_1_power = std::pow(beta_1, step + 1);
    for (int i = 0; i < kN; ++i) {
      double& m = slots["m"][i];
      double& u = slots["u"][i];
      m += (g[i] - m) * (1 - beta_1);
      u = std::max(beta_2 * u, std::abs(g[i]));
      w[i] -= lr * m / ((1 - beta_1_power) * (u + epsilon));
    }
  }
};

TEST(AdamaxTest, MatchesKerasFormulaWithDefaults) {
  const optimizers::Adamax opt{.learning_rate = 0.1};
  ExpectKerasAdamDefaults(opt);  // beta_1, beta_2, epsilon
  CheckAgainstReference(opt, [] { return new AdamaxReference(0.1, 0.9, 0.999, 1e-7); });
}

TEST(AdamaxTest, MatchesKerasFormulaWhenTheMaxDecays) {
  // beta_2 = 0.5 and shrinking gradients: u follows beta_2 * u, not |g|.
  CheckAgainstReference(optimizers::Adamax{.learning_rate = 0.1, .beta_1 = 0.8, .beta_2 = 0.5},
                        [] { return new AdamaxReference(0.1, 0.8, 0.5, 1e-7); }, ShrinkingMultiplier);
}

TEST(AdamaxTest, BetaOutOfRangeIsAnError) {
  ExpectInvalidSetting(optimizers::Adamax{.beta_2 = 1.5}, "Adamax beta_2 must be in [0, 1), got 1.5");
}

}  // namespace
}  // namespace gradflow
