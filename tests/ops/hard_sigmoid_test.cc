// ops/hard_sigmoid: values and derivatives at fixed points (0, the kinks at
// +-2.5, large magnitudes) against tf.keras 2.x's clip(0.2 x + 0.5, 0, 1).

#include "ops/hard_sigmoid.h"

#include <algorithm>
#include <vector>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "tests/ops/op_grad_check.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;

// The loop computes 0.2f x + 0.5f in f32: a few ulp of 1.
constexpr double kTolerance = 1e-6;

double KerasHardSigmoid(double x) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); }
// TF's clip_by_value gradient passes at the clip boundaries too.
double KerasHardSigmoidGrad(double x) { return (x >= -2.5 && x <= 2.5) ? 0.2 : 0.0; }

TEST(HardSigmoidTest, ValuesAndDerivativesAtFixedPoints) {
  const std::vector<float> xs = {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 2.5f, -2.5f, 2.6f,
                                 -2.6f, 10.0f, -10.0f, 1e6f, -1e6f, 0.1f, -0.1f, 2.4f};
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output y = ops::Activation(g, x, "hard_sigmoid");  // the Keras name reaches the op
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.node->op_name(), "HardSigmoid");
  auto dx = AddGradients(g, y, {x});
  ASSERT_TRUE(dx.ok()) << dx.status();
  Session s(g);
  auto plan = s.Compile({y, (*dx)[0]}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Tensor::FromVector<float>({4, 4}, xs).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR((*out)[0].data<float>()[i], KerasHardSigmoid(xs[i]), kTolerance) << "x = " << xs[i];
    EXPECT_NEAR((*out)[1].data<float>()[i], KerasHardSigmoidGrad(xs[i]), kTolerance) << "x = " << xs[i];
  }
  EXPECT_EQ((*out)[0].data<float>()[0], 0.5f);  // hard_sigmoid(0) = 1/2 exactly
}

TEST(HardSigmoidTest, GradChecksPass) { testing_util::CheckOpGradients("HardSigmoid"); }

TEST(HardSigmoidTest, RejectsNonFloatInput) {
  Graph g;
  Output labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  EXPECT_FALSE(ops::HardSigmoid(g.Scope("act"), labels).valid());
  ExpectMentions(g.status().message(), {"act/HardSigmoid", "i32[-1]"});
}

}  // namespace
}  // namespace gradflow
