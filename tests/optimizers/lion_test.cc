// Tests of optimizers/lion.cc against a double reference of Keras 3's formula.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras 3 Lion (keras/src/optimizers/lion.py, update_step):
//   w <- w - lr * sign(beta_1 * m + (1 - beta_1) * g)
//   m <- beta_2 * m + (1 - beta_2) * g
struct LionReference : Reference {
  double lr, beta_1, beta_2;
  LionReference(double lr, double beta_1, double beta_2) : lr(lr), beta_1(beta_1), beta_2(beta_2) {
    slots["momentum"] = std::vector<double>(kN, 0.0);
  }
  void Step(int, const std::vector<double>& g) override {
    for (int i = 0; i < kN; ++i) {
      double& m = slots["momentum"][i];
      const double c = beta_1 * m + (1 - beta_1) * g[i];
      w[i] -= lr * ((c > 0) - (c < 0));
      m = beta_2 * m + (1 - beta_2) * g[i];
    }
  }
};

TEST(LionTest, MatchesKerasFormulaWithDefaults) {
  const optimizers::Lion opt{.learning_rate = 0.1};
  EXPECT_EQ(optimizers::Lion{}.learning_rate, 0.001);  // Keras 3 defaults
  EXPECT_EQ(opt.beta_1, 0.9);
  EXPECT_EQ(opt.beta_2, 0.99);
  EXPECT_EQ(optimizers::OptimizerName(opt), "Lion");
  CheckAgainstReference(opt, [] { return new LionReference(0.1, 0.9, 0.99); });
}

TEST(LionTest, MatchesKerasFormulaWhenGradientsChangeSign) {
  CheckAgainstReference(optimizers::Lion{.learning_rate = 0.05, .beta_1 = 0.5, .beta_2 = 0.8},
                        [] { return new LionReference(0.05, 0.5, 0.8); }, ShrinkingMultiplier);
}

TEST(LionTest, BetaOutOfRangeIsAnError) {
  ExpectInvalidSetting(optimizers::Lion{.beta_1 = 0}, "Lion beta_1 must be in (0, 1], got 0");
  QuadraticProblem q(optimizers::Lion{.beta_2 = 1.5});
  EXPECT_THAT(q.g.status().message(), ::testing::HasSubstr("Lion beta_2 must be in [0, 1), got 1.5"));
}

}  // namespace
}  // namespace gradflow
