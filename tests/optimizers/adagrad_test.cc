// Tests of optimizers/adagrad.cc against a double reference of Keras's
// formula, its slot and its hyperparameter errors.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras 2.11+ Adagrad (keras/optimizers/adagrad.py, update_step):
//   accumulator starts at initial_accumulator_value
//   accumulator <- accumulator + g^2
//   w <- w - lr * g / sqrt(accumulator + epsilon)
struct AdagradReference : Reference {
  double lr, epsilon;
  AdagradReference(double lr, double initial, double epsilon) : lr(lr), epsilon(epsilon) {
    slots["accumulator"] = std::vector<double>(kN, initial);
  }
  void Step(int, const std::vector<double>& g) override {
    std::vector<double>& acc = slots["accumulator"];
    for (int i = 0; i < kN; ++i) {
      acc[i] += g[i] * g[i];
      w[i] -= lr * g[i] / std::sqrt(acc[i] + epsilon);
    }
  }
};

TEST(AdagradTest, MatchesKerasFormulaWithDefaults) {
  const optimizers::Adagrad opt{.learning_rate = 0.1};
  EXPECT_EQ(opt.initial_accumulator_value, 0.1);  // Keras defaults
  EXPECT_EQ(opt.epsilon, 1e-7);
  CheckAgainstReference(opt, [] { return new AdagradReference(0.1, 0.1, 1e-7); });
}

TEST(AdagradTest, MatchesKerasFormulaWithOtherSettings) {
  CheckAgainstReference(optimizers::Adagrad{.learning_rate = 0.5, .initial_accumulator_value = 2.0,
                                            .epsilon = 1e-3},
                        [] { return new AdagradReference(0.5, 2.0, 1e-3); });
}

TEST(AdagradTest, AccumulatorStartsAtTheInitialValue) {
  QuadraticProblem p(optimizers::Adagrad{.initial_accumulator_value = 0.25});
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  Node* slot = p.g.FindNode("w/accumulator");
  ASSERT_NE(slot, nullptr);
  EXPECT_FALSE(slot->attr_or<bool>("trainable", true));
  Session s(p.g);
  ASSERT_TRUE(s.InitializeVariables().ok());
  EXPECT_EQ(VarValue(s, "w/accumulator"), std::vector<float>(kN, 0.25f));
}

TEST(AdagradTest, NegativeAccumulatorIsAnError) {
  ExpectInvalidSetting(optimizers::Adagrad{.initial_accumulator_value = -1},
                       "Minimize: Adagrad initial_accumulator_value must be >= 0, got -1");
}

}  // namespace
}  // namespace gradflow
