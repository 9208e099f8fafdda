// ops/pow: x^c against std::pow in double, including the x = 0 end point the
// polynomial schedule reaches. The gradient is checked by gradient_check_test.

#include "ops/pow.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"

namespace gradflow {
namespace {

// powf is within an ulp or two of the exact result.
constexpr double kRelTolerance = 1e-6;

TEST(PowTest, MatchesStdPow) {
  const std::vector<float> at = {0.0f, 0.25f, 1.0f, 1.5f, 3.0f, 100.0f};
  for (double c : {2.0, 0.5, -1.0, -0.75, 3.5}) {
    SCOPED_TRACE(c);
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {static_cast<int64_t>(at.size())});
    Output y = ops::Pow(g, x, c);
    ASSERT_TRUE(g.ok()) << g.status();
    Session s(g);
    auto plan = s.Compile({y});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto out = plan->Run({{x, Tensor::FromVector<float>({static_cast<int64_t>(at.size())}, at).value()}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < at.size(); ++i) {
      const double want = std::pow(double(at[i]), c);
      const float got = (*out)[0].data<float>()[i];
      if (std::isinf(want)) {
        EXPECT_TRUE(std::isinf(got)) << at[i];
      } else {
        EXPECT_NEAR(got, want, kRelTolerance * std::abs(want)) << at[i];
      }
    }
  }
}

TEST(PowTest, NonFiniteExponentIsABuildError) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {3});
  EXPECT_FALSE(ops::Pow(g, x, std::nan("")).valid());
  EXPECT_THAT(g.status().message(), ::testing::HasSubstr("exponent"));
}

}  // namespace
}  // namespace gradflow
