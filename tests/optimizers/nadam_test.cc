// Tests of optimizers/nadam.cc against a double reference of Keras 3's Nadam
// (the default) and tf.keras 2.x's (schedule_decay = 0.004), including the
// momentum schedule and the momentum-product variable.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/optimizers/reference_test_util.h"

namespace gradflow {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Keras Nadam, t = iterations + 1. Keras 3 (keras/src/optimizers/nadam.py,
// update_step) has decay = 1 (u_t = beta_1 * (1 - 0.5 * 0.96^t)); tf.keras
// 2.x (keras/optimizer_v2/nadam.py, _prepare_local and _resource_apply_dense)
// has decay = 0.004 (its schedule_decay):
//   mu_t     = beta_1 * (1 - 0.5 * 0.96^(decay * t))
//   mu_next  = beta_1 * (1 - 0.5 * 0.96^(decay * (t + 1)))
//   prod_t   = prod_{t-1} * mu_t            (m_cache, starts at 1)
//   m <- beta_1 * m + (1 - beta_1) * g
//   v <- beta_2 * v + (1 - beta_2) * g^2
//   m_bar = (1 - mu_t) * g / (1 - prod_t) + mu_next * m / (1 - prod_t * mu_next)
//   w <- w - lr * m_bar / (sqrt(v / (1 - beta_2^t)) + epsilon)
struct NadamReference : Reference {
  double lr, beta_1, beta_2, epsilon, decay, product = 1.0;
  NadamReference(double lr, double beta_1, double beta_2, double epsilon, double decay)
      : lr(lr), beta_1(beta_1), beta_2(beta_2), epsilon(epsilon), decay(decay) {
    slots["m"] = std::vector<double>(kN, 0.0);
    slots["v"] = std::vector<double>(kN, 0.0);
  }
  double Mu(double t) const { return beta_1 * (1 - 0.5 * std::pow(0.96, decay * t)); }
  void Step(int step, const std::vector<double>& g) override {
    const double t = step + 1;
    const double mu_t = Mu(t), mu_next = Mu(t + 1);
    product *= mu_t;
    const double product_next = product * mu_next;
    for (int i = 0; i < kN; ++i) {
      double& m = slots["m"][i];
      double& v = slots["v"][i];
      m = beta_1 * m + (1 - beta_1) * g[i];
      v = beta_2 * v + (1 - beta_2) * g[i] * g[i];
      const double m_bar = (1 - mu_t) * g[i] / (1 - product) + mu_next * m / (1 - product_next);
      const double v_hat = v / (1 - std::pow(beta_2, t));
      w[i] -= lr * m_bar / (std::sqrt(v_hat) + epsilon);
    }
  }
};

TEST(NadamTest, DefaultsAreKeras3) {
  const optimizers::Nadam opt{.learning_rate = 0.1};
  ExpectKerasAdamDefaults(opt);  // beta_1, beta_2, epsilon
  EXPECT_EQ(opt.schedule_decay, 1.0);  // Keras 3: 0.96^t
  // Fails on the old tf.keras 2.x default (0.004): TheMomentumScheduleMatters
  // shows the two references end apart.
  CheckAgainstReference(opt, [] { return new NadamReference(0.1, 0.9, 0.999, 1e-7, 1.0); });
}

TEST(NadamTest, Keras3ScheduleWithOtherBeta2) {
  CheckAgainstReference(optimizers::Nadam{.learning_rate = 0.1, .beta_2 = 0.9},
                        [] { return new NadamReference(0.1, 0.9, 0.9, 1e-7, 1.0); });
}

TEST(NadamTest, MatchesTfKeras2WithItsScheduleDecay) {
  EXPECT_EQ(optimizers::kKeras2NadamScheduleDecay, 0.004);
  CheckAgainstReference(
      optimizers::Nadam{.learning_rate = 0.1, .schedule_decay = optimizers::kKeras2NadamScheduleDecay},
      [] { return new NadamReference(0.1, 0.9, 0.999, 1e-7, 0.004); });
}

TEST(NadamTest, TheMomentumScheduleMatters) {
  ExpectDistinguishable(FinalWeights(new NadamReference(0.1, 0.9, 0.999, 1e-7, 0.004)),
                        FinalWeights(new NadamReference(0.1, 0.9, 0.999, 1e-7, 1.0)), "schedule decay");
}

TEST(NadamTest, MomentumProductIsAVariableUpdatedOncePerStep) {
  QuadraticProblem p(optimizers::Nadam{.learning_rate = 0.1});
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  Node* product = p.g.FindNode(optimizers::kNadamMomentumProductName);
  ASSERT_NE(product, nullptr);
  EXPECT_EQ(product->op_name(), "Variable");
  Session s(p.g);
  auto plan = s.Compile({p.loss}, {p.train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  NadamReference ref(0.1, 0.9, 0.999, 1e-7, 1.0);
  for (int t = 0; t < kSteps; ++t) {
    ASSERT_TRUE(plan->Run({{p.c, Tensor::FromVector<float>({kN}, GrowingMultiplier(t)).value()}}).ok());
    ref.product *= ref.Mu(t + 1);
    auto value = s.variables().Get(optimizers::kNadamMomentumProductName);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_NEAR(value->data<float>()[0], ref.product, kRelTol * ref.product) << "after step " << t + 1;
  }
}

}  // namespace
}  // namespace gradflow
