#ifndef GRADFLOW_TESTS_OPTIMIZERS_REFERENCE_TEST_UTIL_H_
#define GRADFLOW_TESTS_OPTIMIZERS_REFERENCE_TEST_UTIL_H_

// Shared by the optimizer tests: a 5-element parameter trained for 4 steps on
// a fixed gradient sequence, compared after every step with a double-precision
// reference of Keras's formulas that each test file writes out.
//
// The loss is L(w) = sum_i c_i w_i + 0.5 * sum_i w_i^2 with c fed through a
// placeholder, so dL/dw_i = c_i + w_i at the weights before the step. c has
// the opposite sign of w and a larger magnitude, so w moves away from zero
// and relative tolerances stay meaningful.

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "optimizers/optimizers.h"

namespace gradflow::testing_util {

// f32 kernels against a double reference over a few steps: a handful of ulps.
inline constexpr double kRelTol = 1e-5;
inline constexpr int kSteps = 4;
inline constexpr int kN = 5;

inline const std::vector<float> kW0 = {1.0f, -2.0f, 3.0f, 0.5f, -1.5f};

// Growing multipliers: every step's gradient differs and grows.
inline std::vector<float> GrowingMultiplier(int step) {
  std::vector<float> c(kN);
  for (int i = 0; i < kN; ++i) c[i] = -2.0f * kW0[i] * (1.0f + 0.25f * step) + 0.125f * i;
  return c;
}

// Shrinking multipliers: the gradients fall towards zero and change sign, so
// second-moment estimates decrease (what AMSGrad's max guards against).
inline std::vector<float> ShrinkingMultiplier(int step) {
  std::vector<float> c(kN);
  for (int i = 0; i < kN; ++i) c[i] = -2.0f * kW0[i] * (1.0f - 0.3f * step) + 0.125f * i;
  return c;
}

// A double reference: Step(g) applies one update given the gradient g of the
// current weights (the test computes g = c + w from the reference's w).
struct Reference {
  std::vector<double> w = std::vector<double>(kW0.begin(), kW0.end());
  std::map<std::string, std::vector<double>> slots;  // by slot name ("m")
  virtual ~Reference() = default;
  virtual void Step(int t, const std::vector<double>& g) = 0;  // t = 0, 1, ...
};

inline std::vector<float> VarValue(Session& s, const std::string& name) {
  auto t = s.variables().Get(name);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return {};
  return t->ToVector<float>();
}

inline void ExpectRelNear(const std::vector<float>& actual, const std::vector<double>& expected,
                          const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], kRelTol * std::abs(expected[i])) << what << "[" << i << "]";
  }
}

// w (trainable, [5]), placeholder c ([5]) and L = sum(c * w) + 0.5 * sum(w^2).
struct QuadraticProblem {
  Graph g;
  Output w, c, loss, train;

  explicit QuadraticProblem(const optimizers::Optimizer& opt, const optimizers::MinimizeOptions& options = {}) {
    w = ops::Variable(g, "w", {kN}, Zeros());
    c = ops::Placeholder(g, "c", DType::kF32, {kN});
    Output linear = ops::ReduceSum(g, ops::Mul(g, w, c));
    Output quadratic = ops::Mul(g, ops::ReduceSum(g, ops::Square(g, w)), 0.5f);
    loss = ops::Add(g, linear, quadratic);
    train = optimizers::Minimize(g, loss, opt, options);
  }
};

// Keras's defaults that Adam, Adamax and Nadam share.
template <typename AdamFamilyOptimizer>
void ExpectKerasAdamDefaults(const AdamFamilyOptimizer& opt) {
  EXPECT_EQ(opt.beta_1, 0.9);
  EXPECT_EQ(opt.beta_2, 0.999);
  EXPECT_EQ(opt.epsilon, 1e-7);
}

// A setting out of range: Minimize adds no train op and the graph's error
// says which setting and why.
inline void ExpectInvalidSetting(const optimizers::Optimizer& opt, const std::string& message) {
  QuadraticProblem p(opt);
  EXPECT_FALSE(p.train.valid());
  EXPECT_THAT(p.g.status().message(), ::testing::HasSubstr(message));
}

// Trains the quadratic problem for kSteps with `opt` (fused and per-variable
// updates) and checks w and every slot of `ref` against the reference after
// every step, and the step counter.
inline void CheckAgainstReference(const optimizers::Optimizer& opt, const std::function<Reference*()>& make_ref,
                                  std::vector<float> (*multiplier)(int) = GrowingMultiplier) {
  for (bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused update" : "per-variable update");
    QuadraticProblem p(opt, {.fused_updates = fused});
    ASSERT_TRUE(p.g.ok()) << p.g.status();
    Session s(p.g);
    auto plan = s.Compile({p.loss}, {p.train}, Phase::kTrain);
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_TRUE(s.variables().Set("w", Tensor::FromVector<float>({kN}, kW0).value()).ok());
    std::unique_ptr<Reference> ref(make_ref());
    for (int t = 0; t < kSteps; ++t) {
      std::vector<float> c = multiplier(t);
      std::vector<double> grad(kN);
      for (int i = 0; i < kN; ++i) grad[i] = double(c[i]) + ref->w[i];
      ASSERT_TRUE(plan->Run({{p.c, Tensor::FromVector<float>({kN}, c).value()}}).ok());
      ref->Step(t, grad);
      const std::string after = " after step " + std::to_string(t + 1);
      ExpectRelNear(VarValue(s, "w"), ref->w, "w" + after);
      for (const auto& [slot, value] : ref->slots) ExpectRelNear(VarValue(s, "w/" + slot), value, slot + after);
      auto step = s.variables().Get(optimizers::kStepName);
      ASSERT_TRUE(step.ok()) << step.status();
      EXPECT_EQ(step->data<int64_t>()[0], t + 1);
    }
  }
}

// The final weights of a reference after kSteps.
inline std::vector<double> FinalWeights(Reference* ref, std::vector<float> (*multiplier)(int) = GrowingMultiplier) {
  std::unique_ptr<Reference> owned(ref);
  for (int t = 0; t < kSteps; ++t) {
    std::vector<float> c = multiplier(t);
    std::vector<double> grad(kN);
    for (int i = 0; i < kN; ++i) grad[i] = double(c[i]) + owned->w[i];
    owned->Step(t, grad);
  }
  return owned->w;
}

// Two references must end more than 100x the tolerance apart, or a test could
// not tell their update rules apart.
inline void ExpectDistinguishable(const std::vector<double>& a, const std::vector<double>& b,
                                  const std::string& what) {
  double largest = 0;
  for (int i = 0; i < kN; ++i) largest = std::max(largest, std::abs(a[i] - b[i]) / std::abs(a[i]));
  EXPECT_GT(largest, 100 * kRelTol) << what;
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_OPTIMIZERS_REFERENCE_TEST_UTIL_H_
