// ops/hard_sigmoid: values and derivatives at fixed points (0, the kinks,
// large magnitudes) against Keras 3's relu6(x + 3) / 6 (the default) and
// tf.keras 2.x's clip(0.2 x + 0.5, 0, 1) (keras2 = true), in double.

#include "ops/hard_sigmoid.h"

#include <algorithm>
#include <functional>
#include <utility>
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

// Keras 3: relu6(x + 3) / 6; TF's Relu6Grad passes on 0 < x + 3 < 6 only.
double Keras3HardSigmoid(double x) { return std::clamp(x + 3, 0.0, 6.0) / 6; }
double Keras3HardSigmoidGrad(double x) { return (x > -3 && x < 3) ? 1.0 / 6 : 0.0; }
// tf.keras 2.x: TF's clip_by_value gradient passes at the clip boundaries too.
double Keras2HardSigmoid(double x) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); }
double Keras2HardSigmoidGrad(double x) { return (x >= -2.5 && x <= 2.5) ? 0.2 : 0.0; }

// y and dy/dx at xs for the node `build` makes.
std::pair<std::vector<float>, std::vector<float>> RunHardSigmoid(const std::vector<float>& xs,
                                                                const std::function<Output(Graph&, Output)>& build) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output y = build(g, x);
  EXPECT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.node->op_name(), "HardSigmoid");
  auto dx = AddGradients(g, y, {x});
  EXPECT_TRUE(dx.ok()) << dx.status();
  Session s(g);
  auto plan = s.Compile({y, (*dx)[0]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Tensor::FromVector<float>({int64_t(xs.size()) / 4, 4}, xs).value()}});
  EXPECT_TRUE(out.ok()) << out.status();
  return {(*out)[0].ToVector<float>(), (*out)[1].ToVector<float>()};
}

const std::vector<float> kXs = {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 2.5f, -2.5f, 2.6f, -2.6f, 3.0f, -3.0f, 3.1f,
                                -3.1f, 10.0f, -10.0f, 1e6f, -1e6f, 0.1f, -0.1f, 2.4f};

TEST(HardSigmoidTest, Keras3IsTheDefault) {
  // The Keras name reaches the op with Keras 3's form (the 2.x form fails
  // here: 0.7 instead of 0.6667 at x = 1).
  auto [y, dx] = RunHardSigmoid(kXs, [](Graph& g, Output x) { return ops::Activation(g, x, "hard_sigmoid"); });
  ASSERT_EQ(y.size(), kXs.size());
  for (size_t i = 0; i < kXs.size(); ++i) {
    EXPECT_NEAR(y[i], Keras3HardSigmoid(kXs[i]), kTolerance) << "x = " << kXs[i];
    EXPECT_NEAR(dx[i], Keras3HardSigmoidGrad(kXs[i]), kTolerance) << "x = " << kXs[i];
  }
  EXPECT_EQ(y[0], 0.5f);  // hard_sigmoid(0) = 1/2 exactly
}

TEST(HardSigmoidTest, Keras2FormIsAnExplicitOption) {
  auto [y, dx] = RunHardSigmoid(kXs, [](Graph& g, Output x) { return ops::HardSigmoid(g, x, /*keras2=*/true); });
  ASSERT_EQ(y.size(), kXs.size());
  for (size_t i = 0; i < kXs.size(); ++i) {
    EXPECT_NEAR(y[i], Keras2HardSigmoid(kXs[i]), kTolerance) << "x = " << kXs[i];
    EXPECT_NEAR(dx[i], Keras2HardSigmoidGrad(kXs[i]), kTolerance) << "x = " << kXs[i];
  }
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
