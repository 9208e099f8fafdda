// SessionOptions::check_numerics (graph/session.cc): off by default; when on,
// a step fails at the first node whose output (or written variable) holds
// NaN or Inf, and f32 feeds are checked before any kernel runs.

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "optimizers/optimizers.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// x [-1, 3] -> log(x) -> 2 * log(x) -> sum.
struct LogGraph {
  Graph g;
  Output x, log, scaled, sum;
  LogGraph() {
    x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
    log = ops::Log(g.Scope("log"), x);
    scaled = ops::Scale(g.Scope("scaled"), log, 2.0f);
    sum = ops::ReduceSum(g.Scope("sum"), scaled);
  }
};

TEST(CheckNumericsTest, OffByDefaultNonFiniteValuesFlowThrough) {
  LogGraph m;
  Session session(m.g);
  auto plan = session.Compile({m.sum});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{m.x, Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 0, 6}).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].data<float>()[0], -std::numeric_limits<float>::infinity());
}

TEST(CheckNumericsTest, NamesTheFirstNodeItsOpShapeAndElement) {
  LogGraph m;
  Session session(m.g, {.check_numerics = true});
  auto plan = session.Compile({m.sum});
  ASSERT_TRUE(plan.ok()) << plan.status();
  // log(0) = -Inf in row 1, column 1 (element 4); the later nodes see it too,
  // but the error names the node that produced it.
  absl::Status s = plan->Run({{m.x, Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 0, 6}).value()}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("CheckNumerics: node '" + m.log.node->name + "' (op Log)"));
  EXPECT_THAT(Msg(s), HasSubstr("-Inf at element 4 (row 1) in its output 0 f32[2, 3]"));
  EXPECT_THAT(Msg(s), HasSubstr("all its f32 inputs are finite"));
  EXPECT_THAT(Msg(s), Not(HasSubstr("scaled")));

  // log(-1) = NaN.
  s = plan->Run({{m.x, Tensor::FromVector<float>({1, 3}, {1, -1, 3}).value()}}).status();
  EXPECT_THAT(Msg(s), HasSubstr("NaN at element 1"));
}

TEST(CheckNumericsTest, FiniteStepsGiveTheSameBitsAsWithoutTheCheck) {
  Tensor x = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6}).value();
  LogGraph plain, checked;
  Session plain_session(plain.g), checked_session(checked.g, {.check_numerics = true});
  auto a = plain_session.Compile({plain.scaled, plain.sum});
  auto b = checked_session.Compile({checked.scaled, checked.sum});
  ASSERT_TRUE(a.ok() && b.ok());
  auto out_a = a->Run({{plain.x, x}});
  auto out_b = b->Run({{checked.x, x}});
  ASSERT_TRUE(out_a.ok() && out_b.ok()) << out_b.status();
  for (int i = 0; i < 2; ++i) EXPECT_EQ((*out_a)[i].ToVector<float>(), (*out_b)[i].ToVector<float>());
}

TEST(CheckNumericsTest, NonFiniteFeedIsNamedBeforeAnyKernelRuns) {
  LogGraph m;
  Session session(m.g, {.check_numerics = true});
  auto plan = session.Compile({m.sum});
  ASSERT_TRUE(plan.ok());
  absl::Status s = plan->Run({{m.x, Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, NAN}).value()}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("the feed for placeholder 'x' f32[2, 3] holds NaN at element 5 (row 1)"));
}

TEST(CheckNumericsTest, UpdateThatOverflowsAVariableNamesTheVariable) {
  // loss = sum((w * x)^2); with x = 1e10 the gradient 2 w x^2 = 2e20 is
  // finite, and w - lr * 2e20 overflows f32 with lr = 1e30.
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 1});
  Output w = ops::Variable(g, "w", {1}, Ones());
  Output loss = ops::ReduceSum(g, ops::Square(g, ops::Mul(g, x, w)));
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 1e30});
  ASSERT_TRUE(g.ok()) << g.status();
  Session session(g, {.check_numerics = true});
  auto plan = session.Compile({loss}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::Status s = plan->Run({{x, Tensor::FromVector<float>({1, 1}, {1e10f}).value()}}).status();
  EXPECT_THAT(Msg(s), HasSubstr("(op ApplySGD) produced -Inf at element 0 in its variable 'w'"));
  EXPECT_THAT(Msg(s), HasSubstr("lower it or clip gradients"));
}

}  // namespace
}  // namespace gradflow
