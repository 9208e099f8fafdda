// ops/trig: Sin and Cos against std:: in double. Their gradients are checked
// by gradient_check_test.

#include "ops/trig.h"

#include <cmath>
#include <vector>

#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"

namespace gradflow {
namespace {

// f32 sin/cos of arguments of magnitude <= 10: a few f32 ulps in absolute terms.
constexpr double kAbsTolerance = 1e-6;

TEST(TrigTest, SinAndCosMatchDoublePrecision) {
  const std::vector<float> at = {-10.0f, -3.14159265f, -1.0f, 0.0f, 0.5f, 1.5707964f, 3.0f, 9.75f};
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {static_cast<int64_t>(at.size())});
  Output s = ops::Sin(g, x), c = ops::Cos(g, x);
  ASSERT_TRUE(g.ok()) << g.status();
  Session session(g);
  auto plan = session.Compile({s, c});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Tensor::FromVector<float>({static_cast<int64_t>(at.size())}, at).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_NEAR((*out)[0].data<float>()[i], std::sin(double(at[i])), kAbsTolerance) << at[i];
    EXPECT_NEAR((*out)[1].data<float>()[i], std::cos(double(at[i])), kAbsTolerance) << at[i];
  }
}

}  // namespace
}  // namespace gradflow
