// Tests of optimizers/rmsprop.cc against a double reference of Keras's
// formulas: plain, centered, with momentum, both; slots and errors.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras 2.11+ RMSprop (keras/optimizers/rmsprop.py, update_step):
//   velocity <- rho * velocity + (1 - rho) * g^2
//   centered: average_gradient <- rho * average_gradient + (1 - rho) * g
//             denominator = velocity - average_gradient^2 + epsilon
//   else:     denominator = velocity + epsilon
//   increment = g * lr / sqrt(denominator)
//   momentum > 0: momentum_slot <- momentum * momentum_slot + increment; w <- w - momentum_slot
//   else:         w <- w - increment
struct RmspropReference : Reference {
  double lr, rho, momentum, epsilon;
  bool centered;
  RmspropReference(double lr, double rho, double momentum, double epsilon, bool centered)
      : lr(lr), rho(rho), momentum(momentum), epsilon(epsilon), centered(centered) {
    slots["velocity"] = std::vector<double>(kN, 0.0);
    if (momentum > 0) slots["momentum"] = std::vector<double>(kN, 0.0);
    if (centered) slots["average_gradient"] = std::vector<double>(kN, 0.0);
  }
  void Step(int, const std::vector<double>& g) override {
    for (int i = 0; i < kN; ++i) {
      double& vel = slots["velocity"][i];
      vel = rho * vel + (1 - rho) * g[i] * g[i];
      double denominator = vel + epsilon;
      if (centered) {
        double& avg = slots["average_gradient"][i];
        avg = rho * avg + (1 - rho) * g[i];
        denominator = vel - avg * avg + epsilon;
      }
      const double increment = g[i] * lr / std::sqrt(denominator);
      if (momentum > 0) {
        double& mom = slots["momentum"][i];
        mom = momentum * mom + increment;
        w[i] -= mom;
      } else {
        w[i] -= increment;
      }
    }
  }
};

TEST(RmspropTest, PlainMatchesKerasFormulaWithDefaults) {
  const optimizers::RMSprop opt{.learning_rate = 0.05};
  EXPECT_EQ(opt.rho, 0.9);  // Keras defaults
  EXPECT_EQ(opt.momentum, 0.0);
  EXPECT_EQ(opt.epsilon, 1e-7);
  EXPECT_FALSE(opt.centered);
  CheckAgainstReference(opt, [] { return new RmspropReference(0.05, 0.9, 0, 1e-7, false); });
}

TEST(RmspropTest, CenteredMatchesKerasFormula) {
  CheckAgainstReference(optimizers::RMSprop{.learning_rate = 0.05, .centered = true},
                        [] { return new RmspropReference(0.05, 0.9, 0, 1e-7, true); });
}

TEST(RmspropTest, MomentumMatchesKerasFormula) {
  CheckAgainstReference(optimizers::RMSprop{.learning_rate = 0.05, .rho = 0.8, .momentum = 0.9},
                        [] { return new RmspropReference(0.05, 0.8, 0.9, 1e-7, false); });
}

TEST(RmspropTest, CenteredWithMomentumMatchesKerasFormula) {
  CheckAgainstReference(
      optimizers::RMSprop{.learning_rate = 0.05, .rho = 0.8, .momentum = 0.5, .epsilon = 1e-4, .centered = true},
      [] { return new RmspropReference(0.05, 0.8, 0.5, 1e-4, true); });
}

TEST(RmspropTest, VariantsAreDistinguishable) {
  auto plain = FinalWeights(new RmspropReference(0.05, 0.9, 0, 1e-7, false));
  ExpectDistinguishable(plain, FinalWeights(new RmspropReference(0.05, 0.9, 0, 1e-7, true)), "centered");
  ExpectDistinguishable(plain, FinalWeights(new RmspropReference(0.05, 0.9, 0.9, 1e-7, false)), "momentum");
}

TEST(RmspropTest, CreatesOnlyTheSlotsItNeeds) {
  QuadraticProblem plain(optimizers::RMSprop{});
  ASSERT_TRUE(plain.g.ok()) << plain.g.status();
  EXPECT_NE(plain.g.FindNode("w/velocity"), nullptr);
  EXPECT_EQ(plain.g.FindNode("w/momentum"), nullptr);
  EXPECT_EQ(plain.g.FindNode("w/average_gradient"), nullptr);
  QuadraticProblem both(optimizers::RMSprop{.momentum = 0.9, .centered = true});
  ASSERT_TRUE(both.g.ok()) << both.g.status();
  EXPECT_NE(both.g.FindNode("w/momentum"), nullptr);
  EXPECT_NE(both.g.FindNode("w/average_gradient"), nullptr);
}

TEST(RmspropTest, RhoOutOfRangeIsAnError) {
  ExpectInvalidSetting(optimizers::RMSprop{.rho = 1.0}, "RMSprop rho must be in [0, 1), got 1");
}

}  // namespace
}  // namespace gradflow
