// Tests of optimizers/sgd.cc and optimizers/minimize.cc: the SGD update rules
// against a double-precision reference of Keras's formulas, the variables
// Minimize creates (step counter, learning rate, slots), which variables it
// trains, and its build errors.

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// f32 kernels against a double reference over a few steps: a handful of ulps.
constexpr double kRelTol = 1e-5;
constexpr int kSteps = 4;
constexpr int kN = 5;

// The initial weights and the per-step multipliers fed through placeholder
// "c". c has the opposite sign of w and a larger magnitude, so w moves away
// from zero (relative tolerances stay meaningful) and every step's gradient
// differs.
const std::vector<float> kW0 = {1.0f, -2.0f, 3.0f, 0.5f, -1.5f};
std::vector<float> Multiplier(int step) {
  std::vector<float> c(kN);
  for (int i = 0; i < kN; ++i) c[i] = -2.0f * kW0[i] * (1.0f + 0.25f * step) + 0.125f * i;
  return c;
}

// Keras's SGD (keras/optimizers/sgd.py, update_step), in double:
//   momentum == 0:   w <- w - lr * g
//   momentum  > 0:   v <- momentum * v - lr * g
//                    w <- w + v                        (classic)
//                    w <- w + momentum * v - lr * g    (nesterov)
// The test loss is  L(w) = sum_i c_i w_i + 0.5 * sum_i w_i^2,  so
//   dL/dw_i = c_i + w_i,
// evaluated at the weights BEFORE the step (the gradient of step t uses w_t).
struct Reference {
  double lr, momentum;
  bool nesterov;
  std::vector<double> w, v;

  Reference(double lr, double momentum, bool nesterov)
      : lr(lr), momentum(momentum), nesterov(nesterov), w(kW0.begin(), kW0.end()), v(kN, 0.0) {}

  double Loss(const std::vector<float>& c) const {
    double loss = 0;
    for (int i = 0; i < kN; ++i) loss += double(c[i]) * w[i] + 0.5 * w[i] * w[i];
    return loss;
  }
  void Step(const std::vector<float>& c) {
    for (int i = 0; i < kN; ++i) {
      double g = double(c[i]) + w[i];
      if (momentum == 0) {
        w[i] -= lr * g;
        continue;
      }
      v[i] = momentum * v[i] - lr * g;
      w[i] += nesterov ? momentum * v[i] - lr * g : v[i];
    }
  }
};

void ExpectRelNear(const std::vector<float>& actual, const std::vector<double>& expected,
                   const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], kRelTol * std::abs(expected[i]))
        << what << "[" << i << "]";
  }
}

std::vector<float> VarValue(Session& s, const std::string& name) {
  auto t = s.variables().Get(name);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return {};
  return t->ToVector<float>();
}

int64_t Step(Session& s) {
  auto t = s.variables().Get(optimizers::kStepName);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return -1;
  EXPECT_EQ(t->dtype(), DType::kI64);
  EXPECT_EQ(t->shape(), Shape{});
  return t->data<int64_t>()[0];
}

// w (trainable, [5]), placeholder c ([5]) and L = sum(c * w) + 0.5 * sum(w^2).
struct QuadraticProblem {
  Graph g;
  Output w, c, loss, train;

  explicit QuadraticProblem(const optimizers::Optimizer& opt) {
    w = ops::Variable(g, "w", {kN}, Zeros());
    c = ops::Placeholder(g, "c", DType::kF32, {kN});
    Output linear = ops::ReduceSum(g, ops::Mul(g, w, c));
    Output quadratic = ops::Mul(g, ops::ReduceSum(g, ops::Square(g, w)), 0.5f);
    loss = ops::Add(g, linear, quadratic);
    train = optimizers::Minimize(g, loss, opt);
  }
};

// Trains the quadratic problem for kSteps steps with `opt` and checks the
// fetched loss (pre-update), the weights, the slot and the step counter
// after every step.
void CheckAgainstReference(const optimizers::SGD& opt) {
  QuadraticProblem p(opt);
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  ASSERT_TRUE(p.train.valid());
  Session s(p.g);
  auto plan = s.Compile({p.loss}, {p.train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(s.variables().Set("w", Tensor::FromVector<float>({kN}, kW0).value()).ok());
  EXPECT_EQ(Step(s), 0);

  Reference ref(opt.learning_rate, opt.momentum, opt.nesterov);
  for (int t = 0; t < kSteps; ++t) {
    std::vector<float> c = Multiplier(t);
    const double expected_loss = ref.Loss(c);  // at w_t, before the update
    auto out = plan->Run({{p.c, Tensor::FromVector<float>({kN}, c).value()}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_NEAR((*out)[0].data<float>()[0], expected_loss, kRelTol * std::abs(expected_loss))
        << "loss fetched at step " << t << " must be computed before the update";
    ref.Step(c);
    ExpectRelNear(VarValue(s, "w"), ref.w, "w after step " + std::to_string(t + 1));
    if (opt.momentum != 0) {
      ExpectRelNear(VarValue(s, "w/momentum"), ref.v,
                    "velocity after step " + std::to_string(t + 1));
    }
    EXPECT_EQ(Step(s), t + 1);
  }
}

TEST(SgdTest, PlainSgdMatchesKerasFormula) {
  CheckAgainstReference(optimizers::SGD{.learning_rate = 0.1});
}

TEST(SgdTest, MomentumMatchesKerasFormula) {
  CheckAgainstReference(optimizers::SGD{.learning_rate = 0.1, .momentum = 0.9});
}

TEST(SgdTest, NesterovMomentumMatchesKerasFormula) {
  CheckAgainstReference(optimizers::SGD{.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
}

// The three references must differ by far more than the tolerance, or the
// tests above could not tell the update rules apart.
TEST(SgdTest, ReferencesAreDistinguishable) {
  Reference plain(0.1, 0, false), momentum(0.1, 0.9, false), nesterov(0.1, 0.9, true);
  for (int t = 0; t < kSteps; ++t) {
    plain.Step(Multiplier(t));
    momentum.Step(Multiplier(t));
    nesterov.Step(Multiplier(t));
  }
  for (int i = 0; i < kN; ++i) {
    EXPECT_GT(std::abs(plain.w[i] - momentum.w[i]), 1e3 * kRelTol * std::abs(plain.w[i]));
    EXPECT_GT(std::abs(nesterov.w[i] - momentum.w[i]), 1e3 * kRelTol * std::abs(momentum.w[i]));
  }
}

// The optimizer's own scalar state (step counter, learning rate): a
// Variable that training does not update.
void ExpectScalarStateVariable(const Graph& g, const std::string& name, DType dtype) {
  SCOPED_TRACE(name);
  Node* node = g.FindNode(name);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->op_name(), "Variable");
  EXPECT_EQ(node->outputs[0].dtype, dtype);
  EXPECT_EQ(node->outputs[0].shape, Shape{});
  EXPECT_FALSE(node->attr_or<bool>("trainable", true));
}

TEST(SgdTest, CreatesStepCounterLearningRateAndMomentumSlot) {
  QuadraticProblem p(optimizers::SGD{.learning_rate = 0.1, .momentum = 0.9});
  ASSERT_TRUE(p.g.ok()) << p.g.status();

  ExpectScalarStateVariable(p.g, "global_step", DType::kI64);
  ExpectScalarStateVariable(p.g, "optimizer/learning_rate", DType::kF32);

  Node* slot = p.g.FindNode("w/momentum");
  ASSERT_NE(slot, nullptr) << "Keras names slots '<variable>/<slot>'";
  EXPECT_EQ(slot->op_name(), "Variable");
  EXPECT_EQ(slot->outputs[0].shape, (Shape{kN}));
  EXPECT_FALSE(slot->attr_or<bool>("trainable", true));

  Session s(p.g);
  auto plan = s.Compile({p.loss}, {p.train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto lr_value = s.variables().Get("optimizer/learning_rate");
  ASSERT_TRUE(lr_value.ok()) << lr_value.status();
  EXPECT_EQ(lr_value->data<float>()[0], 0.1f);
  EXPECT_EQ(VarValue(s, "w/momentum"), std::vector<float>(kN, 0.0f)) << "slots start at zero";
}

TEST(SgdTest, PlainSgdHasNoSlot) {
  QuadraticProblem p(optimizers::SGD{.learning_rate = 0.1});
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  EXPECT_EQ(p.g.FindNode("w/momentum"), nullptr);
}

TEST(SgdTest, SettingTheLearningRateVariableChangesTheNextUpdate) {
  QuadraticProblem p(optimizers::SGD{.learning_rate = 0.1});
  ASSERT_TRUE(p.g.ok()) << p.g.status();
  Session s(p.g);
  auto plan = s.Compile({p.loss}, {p.train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(s.variables().Set("w", Tensor::FromVector<float>({kN}, kW0).value()).ok());

  Reference ref(0.1, 0, false);
  ASSERT_TRUE(plan->Run({{p.c, Tensor::FromVector<float>({kN}, Multiplier(0)).value()}}).ok());
  ref.Step(Multiplier(0));
  ExpectRelNear(VarValue(s, "w"), ref.w, "w after a step at lr 0.1");

  // A schedule (or a user) writes the variable between steps.
  ASSERT_TRUE(s.variables().Set(optimizers::kLearningRateName, Tensor::Scalar(0.5f)).ok());
  ref.lr = 0.5;
  ASSERT_TRUE(plan->Run({{p.c, Tensor::FromVector<float>({kN}, Multiplier(1)).value()}}).ok());
  ref.Step(Multiplier(1));
  ExpectRelNear(VarValue(s, "w"), ref.w, "w after a step at lr 0.5");

  // Setting it with the wrong type is an error that names the variable.
  absl::Status wrong = s.variables().Set(optimizers::kLearningRateName,
                                         Tensor::FromVector<float>({1}, {0.5f}).value());
  EXPECT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.message(), HasSubstr("optimizer/learning_rate"));
}

TEST(SgdTest, TrainsOnlyTrainableVariablesTheLossDependsOn) {
  Graph g;
  Output w = ops::Variable(g, "w", {kN}, Constant(1.0));
  Output frozen = ops::Variable(g, "frozen", {kN}, Constant(2.0), /*trainable=*/false);
  ops::Variable(g, "unused", {kN}, Constant(3.0));  // found by name below
  Output loss = ops::ReduceSum(g, ops::Mul(g, w, frozen));  // dL/dw = frozen, dL/dfrozen = w
  ASSERT_TRUE(g.ok()) << g.status();

  std::vector<Output> trainable = optimizers::TrainableVariables(g, loss);
  ASSERT_EQ(trainable.size(), 1u);
  EXPECT_EQ(trainable[0], w);

  Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.25});
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(train.valid());
  EXPECT_EQ(g.FindNode("frozen/momentum"), nullptr);
  for (const Node& node : g.nodes()) {
    if (node.op->mutates_input < 0) continue;
    const std::string& written = node.inputs[node.op->mutates_input].node->name;
    EXPECT_TRUE(written == "w" || written == "global_step")
        << "update node '" << node.name << "' writes '" << written << "'";
  }

  Session s(g);
  auto plan = s.Compile({loss}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (int t = 0; t < 2; ++t) ASSERT_TRUE(plan->Run({}).ok());
  // w <- w - lr * frozen, twice: 1 - 2 * 0.25 * 2 = 0.
  EXPECT_EQ(VarValue(s, "w"), std::vector<float>(kN, 0.0f));
  EXPECT_EQ(VarValue(s, "frozen"), std::vector<float>(kN, 2.0f));
  ASSERT_TRUE(s.InitializeVariables().ok());
  EXPECT_EQ(VarValue(s, "unused"), std::vector<float>(kN, 3.0f));
  EXPECT_EQ(Step(s), 2);
}

// Runs one step of `train` on a graph that needs no feeds; `fetched_loss`
// is the value of `loss` fetched with it.
void RunOneStep(Session& s, Output loss, Output train, float* fetched_loss) {
  auto plan = s.Compile({loss}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({});
  ASSERT_TRUE(out.ok()) << out.status();
  *fetched_loss = (*out)[0].data<float>()[0];
}

// Every gradient of a step is taken at the weights before the step, whatever
// order the update nodes run in: with L = sum(a * b) both updates must use the
// other variable's OLD value.
TEST(SgdTest, AllGradientsUseThePreStepWeights) {
  Graph g;
  Output a = ops::Variable(g, "a", {3}, Constant(1.0));
  Output b = ops::Variable(g, "b", {3}, Constant(-2.0));
  Output loss = ops::ReduceSum(g, ops::Mul(g, a, b));
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.5});
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  float fetched_loss;
  ASSERT_NO_FATAL_FAILURE(RunOneStep(s, loss, train, &fetched_loss));
  EXPECT_EQ(fetched_loss, -6.0f);
  EXPECT_EQ(VarValue(s, "a"), std::vector<float>(3, 1.0f - 0.5f * -2.0f));  // 2
  EXPECT_EQ(VarValue(s, "b"), std::vector<float>(3, -2.0f - 0.5f * 1.0f));  // -2.5
}

// The fetched loss is the one of the weights the step started from, even when
// the loss value shares its buffer with a trainable variable (Identity and
// Reshape alias their input instead of copying it). Keras computes the loss
// in the forward pass, before apply_gradients, and returns that value.
TEST(SgdTest, FetchedLossAliasingAVariableIsThePreUpdateValue) {
  Graph g;
  Output w = ops::Variable(g, "w", {}, Constant(3.0));
  Output loss = ops::Identity(g, w);  // L = w, dL/dw = 1
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.5});
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  float fetched_loss;
  ASSERT_NO_FATAL_FAILURE(RunOneStep(s, loss, train, &fetched_loss));
  EXPECT_EQ(VarValue(s, "w"), std::vector<float>{2.5f});
  EXPECT_EQ(fetched_loss, 3.0f) << "the loss fetched with the train op must be the pre-update value";
}

// ---------------------------------------------------------------- errors

TEST(SgdTest, NonScalarLossIsAnError) {
  Graph g;
  Output w = ops::Variable(g, "w", {kN}, Ones());
  Output per_element = ops::Mul(g, w, 2.0f);
  Output train = optimizers::Minimize(g, per_element, optimizers::SGD{});
  EXPECT_FALSE(train.valid());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("Minimize"));
  EXPECT_THAT(g.status().message(), HasSubstr(per_element.name()));
  EXPECT_THAT(g.status().message(), HasSubstr("f32[5]"));
  EXPECT_THAT(g.status().message(), HasSubstr("scalar"));
  EXPECT_THAT(g.status().message(), HasSubstr("ReduceMean"));  // says how to fix it

  // The graph is unusable afterwards, and says why.
  Session s(g);
  auto plan = s.Compile({w});
  EXPECT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("scalar"));
}

TEST(SgdTest, NonPositiveOrNanLearningRateIsAnError) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double lr : {0.0, -0.01, nan}) {
    SCOPED_TRACE(lr);
    Graph g;
    Output w = ops::Variable(g, "w", {kN}, Ones());
    Output loss = ops::ReduceSum(g, w);
    Output train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = lr});
    EXPECT_FALSE(train.valid());
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr("learning rate must be > 0"));
    EXPECT_THAT(g.status().message(), HasSubstr(std::isnan(lr) ? "nan" : absl::StrCat(lr)));
    EXPECT_EQ(g.FindNode("w/update"), nullptr) << "nothing is added on error";
  }
}

TEST(SgdTest, LossWithoutTrainableVariablesIsAnError) {
  Graph g;
  Output frozen = ops::Variable(g, "frozen", {kN}, Ones(), /*trainable=*/false);
  Output c = ops::Placeholder(g, "c", DType::kF32, {kN});
  Output loss = ops::ReduceSum(g, ops::Mul(g, frozen, c));
  ASSERT_TRUE(g.ok()) << g.status();
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{});
  EXPECT_FALSE(train.valid());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(loss.name()));
  EXPECT_THAT(g.status().message(), HasSubstr("no trainable variable"));
}

TEST(SgdTest, MinimizeAfterAnEarlierErrorKeepsTheFirstError) {
  Graph g;
  Output w = ops::Variable(g, "w", {kN}, Ones());
  Output bad = ops::AddN(g, {w, ops::Placeholder(g, "p", DType::kF32, {3})});
  EXPECT_FALSE(bad.valid());
  std::string first = std::string(g.status().message());
  Output train = optimizers::Minimize(g, bad, optimizers::SGD{});
  EXPECT_FALSE(train.valid());
  EXPECT_EQ(std::string(g.status().message()), first);
}

}  // namespace
}  // namespace gradflow
