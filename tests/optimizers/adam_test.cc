// Tests of optimizers/adam.cc (Adam, AMSGrad, AdamW) against a double
// reference of Keras's formulas, with the bias correction taken from the step
// counter; slots and errors.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras 2.11+ Adam (keras/optimizers/adam.py, update_step), t = iterations + 1:
//   alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//   m <- m + (g - m) * (1 - beta_1)
//   v <- v + (g^2 - v) * (1 - beta_2)
//   amsgrad: vhat <- max(vhat, v), and vhat replaces v below
//   w <- w - m * alpha / (sqrt(v) + epsilon)
// AdamW (keras/optimizers/adamw.py; Optimizer._apply_weight_decay runs first):
//   w <- w - w * weight_decay * lr, then the Adam step (with g taken at the
//   weights before the decay: the gradient comes from the forward pass).
struct AdamReference : Reference {
  double lr, beta_1, beta_2, epsilon, weight_decay;
  bool amsgrad;
  AdamReference(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, double weight_decay = 0)
      : lr(lr), beta_1(beta_1), beta_2(beta_2), epsilon(epsilon), weight_decay(weight_decay), amsgrad(amsgrad) {
    slots["m"] = std::vector<double>(kN, 0.0);
    slots["v"] = std::vector<double>(kN, 0.0);
    if (amsgrad) slots["vhat"] = std::vector<double>(kN, 0.0);
  }
  void Step(int step, const std::vector<double>& g) override {
    const double t = step + 1;
    const double alpha = lr * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t));
    for (int i = 0; i < kN; ++i) {
      w[i] -= w[i] * weight_decay * lr;
      double& m = slots["m"][i];
      double& v = slots["v"][i];
      m += (g[i] - m) * (1 - beta_1);
      v += (g[i] * g[i] - v) * (1 - beta_2);
      double second = v;
      if (amsgrad) {
        double& vhat = slots["vhat"][i];
        vhat = std::max(vhat, v);
        second = vhat;
      }
      w[i] -= m * alpha / (std::sqrt(second) + epsilon);
    }
  }
};

TEST(AdamTest, MatchesKerasFormulaWithDefaults) {
  const optimizers::Adam opt{.learning_rate = 0.1};
  ExpectKerasAdamDefaults(opt);  // beta_1, beta_2, epsilon
  EXPECT_EQ(optimizers::Adam{}.learning_rate, 0.001);
  CheckAgainstReference(opt, [] { return new AdamReference(0.1, 0.9, 0.999, 1e-7, false); });
}

TEST(AdamTest, MatchesKerasFormulaWithOtherSettings) {
  CheckAgainstReference(optimizers::Adam{.learning_rate = 0.02, .beta_1 = 0.5, .beta_2 = 0.9, .epsilon = 1e-2},
                        [] { return new AdamReference(0.02, 0.5, 0.9, 1e-2, false); });
}

TEST(AdamTest, AmsgradMatchesKerasFormula) {
  // beta_2 = 0.5 and shrinking gradients: v decreases, so vhat matters.
  CheckAgainstReference(optimizers::Adam{.learning_rate = 0.1, .beta_2 = 0.5, .amsgrad = true},
                        [] { return new AdamReference(0.1, 0.9, 0.5, 1e-7, true); }, ShrinkingMultiplier);
}

TEST(AdamTest, AdamWMatchesKerasFormula) {
  const optimizers::AdamW opt{.learning_rate = 0.1, .weight_decay = 0.5};
  EXPECT_EQ(optimizers::AdamW{}.weight_decay, 0.004);  // Keras default
  CheckAgainstReference(opt, [] { return new AdamReference(0.1, 0.9, 0.999, 1e-7, false, 0.5); });
  CheckAgainstReference(optimizers::AdamW{.learning_rate = 0.1, .weight_decay = 0.5, .beta_2 = 0.5, .amsgrad = true},
                        [] { return new AdamReference(0.1, 0.9, 0.5, 1e-7, true, 0.5); }, ShrinkingMultiplier);
}

TEST(AdamTest, VariantsAreDistinguishable) {
  ExpectDistinguishable(FinalWeights(new AdamReference(0.1, 0.9, 0.5, 1e-7, false), ShrinkingMultiplier),
                        FinalWeights(new AdamReference(0.1, 0.9, 0.5, 1e-7, true), ShrinkingMultiplier),
                        "amsgrad");
  ExpectDistinguishable(FinalWeights(new AdamReference(0.1, 0.9, 0.999, 1e-7, false)),
                        FinalWeights(new AdamReference(0.1, 0.9, 0.999, 1e-7, false, 0.5)), "weight decay");
  // Without the bias correction (alpha = lr) the first steps would be ~3x smaller.
  struct Uncorrected : AdamReference {
    using AdamReference::AdamReference;
    void Step(int, const std::vector<double>& g) override { AdamReference::Step(1000000, g); }
  };
  ExpectDistinguishable(FinalWeights(new AdamReference(0.1, 0.9, 0.999, 1e-7, false)),
                        FinalWeights(new Uncorrected(0.1, 0.9, 0.999, 1e-7, false)), "bias correction");
}

TEST(AdamTest, SlotsHaveKerasNames) {
  QuadraticProblem p(optimizers::Adam{.amsgrad = true});
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  for (const char* name : {"w/m", "w/v", "w/vhat"}) {
    Node* slot = p.g.FindNode(name);
    ASSERT_NE(slot, nullptr) << name;
    EXPECT_EQ(slot->op_name(), "Variable");
    EXPECT_EQ(slot->outputs[0].shape, (Shape{kN}));
    EXPECT_FALSE(slot->attr_or<bool>("trainable", true));
  }
  QuadraticProblem plain(optimizers::Adam{});
  EXPECT_EQ(plain.g.FindNode("w/vhat"), nullptr);
}

TEST(AdamTest, BadHyperparametersAreErrorsAndAddNothing) {
  struct Case {
    optimizers::Optimizer opt;
    const char* message;
  };
  const std::vector<Case> cases = {
      {optimizers::Adam{.beta_1 = 1.0}, "Adam beta_1 must be in [0, 1), got 1"},
      {optimizers::Adam{.beta_2 = -0.1}, "Adam beta_2 must be in [0, 1), got -0.1"},
      {optimizers::Adam{.epsilon = -1}, "Adam epsilon must be >= 0, got -1"},
      {optimizers::AdamW{.weight_decay = -0.5}, "AdamW weight_decay must be >= 0, got -0.5"},
      {optimizers::Adam{.learning_rate = 0}, "learning rate must be > 0, got 0"},
  };
  for (const Case& c : cases) {
    QuadraticProblem p(c.opt);
    EXPECT_FALSE(p.train.valid());
    EXPECT_EQ(p.g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.g.status().message(), ::testing::HasSubstr(c.message));
    EXPECT_EQ(p.g.FindNode("w/m"), nullptr) << "nothing is added on error";
    EXPECT_EQ(p.g.FindNode(optimizers::kStepName), nullptr);
  }
}

}  // namespace
}  // namespace gradflow
