// Tests of optimizers/regularizers.cc: penalties attached to variables are
// added to the loss once (by AddRegularizationLosses or by Minimize), their
// value is Keras's l1 * sum|w| + l2 * sum w^2, and an SGD step follows the
// penalized gradient.

#include "optimizers/regularizers.h"

#include <cmath>
#include <vector>

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

constexpr float kTolerance = 1e-5f;

const std::vector<float> kW0 = {1.0f, -2.0f, 0.5f, 3.0f};  // sum|w| 6.5, sum w^2 14.25
const std::vector<float> kC = {0.5f, 1.0f, -1.0f, 2.0f};   // loss = sum(c * w): dL/dw = c

struct Problem {
  Graph graph;
  Output w, data_loss;
  Problem() {
    w = ops::Variable(graph.Scope("dense"), "kernel", {2, 2}, Zeros());
    data_loss = ops::ReduceSum(graph, ops::Mul(graph, w, ops::Constant(graph, Tensor::FromVector<float>({2, 2}, kC).value())));
  }
  void SetWeights(Session& s) {
    ASSERT_TRUE(s.variables().Set("dense/kernel", Tensor::FromVector<float>({2, 2}, kW0).value()).ok());
  }
};

int CountOps(const Graph& g, const char* op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op_name() == op;
  return n;
}

TEST(RegularizersTest, KerasFactoriesAndDefaults) {
  EXPECT_EQ(optimizers::L2().l2, 0.01);  // Keras regularizers.l2() default
  EXPECT_EQ(optimizers::L2().l1, 0.0);
  EXPECT_EQ(optimizers::L1(0.3).l1, 0.3);
  EXPECT_EQ(optimizers::L1L2().l1, 0.01);
  EXPECT_EQ(optimizers::L1L2().l2, 0.01);
}

TEST(RegularizersTest, TotalLossAddsEachPenaltyOnce) {
  Problem p;
  optimizers::SetRegularizer(p.w, optimizers::L1L2(0.1, 0.01));
  Output total = optimizers::AddRegularizationLosses(p.graph, p.data_loss);
  ASSERT_TRUE(p.graph.ok()) << p.graph.status();
  EXPECT_EQ(total.node->name, "regularized_loss");
  // Adding again (as Minimize does) finds the penalty already there.
  EXPECT_EQ(optimizers::AddRegularizationLosses(p.graph, total), total);
  Output train = optimizers::Minimize(p.graph, total, optimizers::SGD{.learning_rate = 0.1});
  ASSERT_TRUE(train.valid()) << p.graph.status();
  EXPECT_EQ(CountOps(p.graph, "L1L2Penalty"), 1);

  Session s(p.graph);
  auto plan = s.Compile({p.data_loss, total});
  ASSERT_TRUE(plan.ok()) << plan.status();
  p.SetWeights(s);
  auto out = plan->Run({});
  ASSERT_TRUE(out.ok()) << out.status();
  const float data = 0.5f * 1 - 2.0f - 0.5f + 6.0f;  // sum c*w = 4
  EXPECT_NEAR((*out)[0].data<float>()[0], data, kTolerance);
  EXPECT_NEAR((*out)[1].data<float>()[0], data + 0.1f * 6.5f + 0.01f * 14.25f, kTolerance);
}

TEST(RegularizersTest, MinimizeStepFollowsThePenalizedGradient) {
  Problem p;
  optimizers::SetRegularizer(p.w, optimizers::L1L2(0.1, 0.05));
  const float lr = 0.1f;
  Output train = optimizers::Minimize(p.graph, p.data_loss, optimizers::SGD{.learning_rate = lr});
  ASSERT_TRUE(train.valid()) << p.graph.status();
  // The data and penalty gradients are summed by one fused node.
  int fused = 0;
  for (const Node& node : p.graph.nodes()) {
    fused += node.op_name() == "L1L2PenaltyGrad" && node.inputs.size() == 3;
  }
  EXPECT_EQ(fused, 1);
  Session s(p.graph);
  auto step = s.Compile({}, {train}, Phase::kTrain);
  ASSERT_TRUE(step.ok()) << step.status();
  p.SetWeights(s);
  ASSERT_TRUE(step->Run({}).ok());
  std::vector<float> w = s.variables().Get("dense/kernel")->ToVector<float>();
  for (int i = 0; i < 4; ++i) {
    // dL/dw = c + l1 * sign(w) + 2 * l2 * w
    const float sign = kW0[i] > 0 ? 1.0f : -1.0f;
    const float want = kW0[i] - lr * (kC[i] + 0.1f * sign + 2 * 0.05f * kW0[i]);
    EXPECT_NEAR(w[i], want, kTolerance) << i;
  }
}

TEST(RegularizersTest, NoPenaltiesLeaveTheLossAlone) {
  Problem p;
  EXPECT_EQ(optimizers::AddRegularizationLosses(p.graph, p.data_loss), p.data_loss);
  optimizers::SetRegularizer(p.w, optimizers::L1L2(0, 0));  // zero factors add nothing
  EXPECT_EQ(optimizers::AddRegularizationLosses(p.graph, p.data_loss), p.data_loss);
}

TEST(RegularizersTest, ErrorsNameTheNode) {
  {
    Problem p;
    optimizers::SetRegularizer(p.data_loss, optimizers::L2());
    EXPECT_THAT(std::string(p.graph.status().message()),
                HasSubstr("a regularizer attaches to a variable"));
  }
  {
    Problem p;
    optimizers::SetRegularizer(p.w, optimizers::L2(INFINITY));
    EXPECT_THAT(std::string(p.graph.status().message()), HasSubstr("'dense/kernel'"));
    EXPECT_THAT(std::string(p.graph.status().message()), HasSubstr("finite"));
  }
}

}  // namespace
}  // namespace gradflow
