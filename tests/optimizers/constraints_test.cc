// Tests of optimizers/constraints.cc: Keras's MaxNorm on fixed matrices
// (norms over axis 0 and 1), the constraint node Minimize adds after the
// update, thread-count independence, and errors.

#include "optimizers/constraints.h"

#include <omp.h>

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

constexpr float kTolerance = 1e-6f;

// Columns have norms 5 and 0.3; rows 3.0017, 4.005, 0.2.
const std::vector<float> kMatrix = {3.0f, 0.1f,
                                    4.0f, 0.2f,
                                    0.0f, 0.2f};

// Keras MaxNorm in double: w * min(n, r) / (1e-7 + n).
std::vector<float> Reference(const std::vector<float>& w, int rows, int cols, double r, int axis) {
  std::vector<float> out(w);
  const int groups = axis == 0 ? cols : rows, length = axis == 0 ? rows : cols;
  for (int g = 0; g < groups; ++g) {
    auto at = [&](int i) { return axis == 0 ? i * cols + g : g * cols + i; };
    double sum = 0;
    for (int i = 0; i < length; ++i) sum += double(w[at(i)]) * w[at(i)];
    const double n = std::sqrt(sum);
    for (int i = 0; i < length; ++i) out[at(i)] = float(w[at(i)] * (std::min(n, r) / (1e-7 + n)));
  }
  return out;
}

// Runs one ApplyMaxNorm node on a variable holding `w`; returns the result.
std::vector<float> ApplyOnce(const std::vector<float>& w, Shape shape, double r, int axis) {
  Graph g;
  Output var = ops::Variable(g.Scope("dense"), "kernel", shape, Zeros());
  optimizers::SetConstraint(var, {.max_value = r, .axis = axis});
  Node* constraint = optimizers::AddConstraint(g, var, ops::Group(g, {}, "after").node);
  EXPECT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(constraint->name, "dense/kernel/max_norm");
  Output apply = ops::Group(g, {constraint}, "apply");
  Session s(g);
  auto plan = s.Compile({}, {apply});
  EXPECT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(s.variables().Set("dense/kernel", Tensor::FromVector<float>(shape, w).value()).ok());
  EXPECT_TRUE(plan->Run({}).ok());
  return s.variables().Get("dense/kernel")->ToVector<float>();
}

TEST(MaxNormTest, KerasDefaults) {
  optimizers::MaxNorm c;
  EXPECT_EQ(c.max_value, 2.0);
  EXPECT_EQ(c.axis, 0);
}

TEST(MaxNormTest, RescalesEachUnitsIncomingWeightsOverAxis0) {
  std::vector<float> got = ApplyOnce(kMatrix, {3, 2}, 2.0, 0);
  // Column 0 (norm 5) becomes norm 2: 3, 4 -> 1.2, 1.6. Column 1 (norm 0.3)
  // keeps its values up to Keras's epsilon: factor 0.3 / (0.3 + 1e-7).
  const std::vector<float> want = {1.2f, 0.1f, 1.6f, 0.2f, 0.0f, 0.2f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], want[i], kTolerance) << i;
  std::vector<float> ref = Reference(kMatrix, 3, 2, 2.0, 0);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], ref[i], kTolerance) << i;
}

TEST(MaxNormTest, Axis1NormalizesRows) {
  std::vector<float> got = ApplyOnce(kMatrix, {3, 2}, 1.0, 1);
  std::vector<float> ref = Reference(kMatrix, 3, 2, 1.0, 1);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], ref[i], kTolerance) << i;
  EXPECT_NEAR(std::hypot(got[0], got[1]), 1.0, 1e-6);
  EXPECT_NEAR(got[5], 0.2f * (0.2 / (0.2 + 1e-7)), kTolerance);  // row 2 already short
  // -1 is the last axis, as in Keras.
  EXPECT_EQ(ApplyOnce(kMatrix, {3, 2}, 1.0, -1), got);
}

TEST(MaxNormTest, LargeKernelMatchesReferenceWithAnyThreadCount) {
  const int rows = 784, cols = 300;
  std::vector<float> w(rows * cols);
  for (int i = 0; i < rows * cols; ++i) w[i] = float((i * 7919) % 1001 - 500) / 2000.0f;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<float> one = ApplyOnce(w, {rows, cols}, 1.5, 0);
  omp_set_num_threads(2);
  std::vector<float> two = ApplyOnce(w, {rows, cols}, 1.5, 0);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
  std::vector<float> ref = Reference(w, rows, cols, 1.5, 0);
  for (int i = 0; i < rows * cols; ++i) ASSERT_NEAR(two[i], ref[i], 1e-6f) << i;
}

TEST(MaxNormTest, MinimizeAppliesItAfterEveryUpdate) {
  Graph g;
  Output w = ops::Variable(g.Scope("dense"), "kernel", {3, 2}, Zeros());
  optimizers::SetConstraint(w, {.max_value = 2.0});
  // loss = -sum(c * w): each SGD step adds lr * c, growing column 0.
  const std::vector<float> c = {1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  Output loss = ops::Neg(g, ops::ReduceSum(g, ops::Mul(g, w, ops::Constant(g, Tensor::FromVector<float>({3, 2}, c).value()))));
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.5});
  ASSERT_TRUE(train.valid()) << g.status();
  Node* constraint = g.FindNode("dense/kernel/max_norm");
  ASSERT_NE(constraint, nullptr);
  ASSERT_EQ(constraint->control_inputs.size(), 1u);
  EXPECT_EQ(constraint->control_inputs[0]->op_name(), "ApplySGD");  // runs after the update

  Session s(g);
  auto step = s.Compile({}, {train}, Phase::kTrain);
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(s.variables().Set("dense/kernel", Tensor::FromVector<float>({3, 2}, kMatrix).value()).ok());
  std::vector<float> want = kMatrix;
  for (int t = 0; t < 3; ++t) {
    ASSERT_TRUE(step->Run({}).ok());
    for (int i = 0; i < 6; ++i) want[i] += 0.5f * c[i];  // the SGD update, then the constraint
    want = Reference(want, 3, 2, 2.0, 0);
    std::vector<float> got = s.variables().Get("dense/kernel")->ToVector<float>();
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << "step " << t << " [" << i << "]";
    EXPECT_LE(std::hypot(got[0], got[2], got[4]), 2.0 + 1e-6);
  }
}

TEST(MaxNormTest, ErrorsNameTheVariable) {
  for (optimizers::MaxNorm bad : {optimizers::MaxNorm{.max_value = 0}, optimizers::MaxNorm{.axis = 2},
                                  optimizers::MaxNorm{.axis = -3}}) {
    Graph g;
    Output w = ops::Variable(g.Scope("dense"), "kernel", {3, 2}, Zeros());
    optimizers::SetConstraint(w, bad);
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("'dense/kernel'")) << g.status();
  }
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {2});
  optimizers::SetConstraint(x, {});
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("a constraint attaches to a variable"));
}

}  // namespace
}  // namespace gradflow
