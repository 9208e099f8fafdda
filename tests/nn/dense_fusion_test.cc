// nn::Dense runs relu/elu/tanh/sigmoid, and the activation objects
// LeakyReLU, ReLU and ELU, as a post-op of its inner product (nn/layers.cc).
// The reference is the unfused pair Dense -> Activation layer: same
// predictions and, after training steps, the same weights (so the same
// gradients), up to float rounding.

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/activation_layers.h"
#include "nn/model.h"

namespace gradflow::nn {
namespace {

// Fused and unfused differ only in where the activation is evaluated (inside
// oneDNN's post-op or in a separate eltwise primitive): float rounding.
constexpr double kTolerance = 1e-5;

void MakeData(Tensor& x, Tensor& y) {
  x = Tensor(DType::kF32, {48, 6});
  y = Tensor(DType::kI32, {48});
  for (int i = 0; i < 48; ++i) {
    for (int d = 0; d < 6; ++d) x.data<float>()[6 * i + d] = float(((i + 5) * (d + 3) * 29) % 23 - 11) / 7.0f;
    y.data<int32_t>()[i] = (i * 7) % 3;
  }
}

// An activation setting and the post-op Dense should fuse it as.
struct Case {
  std::string label;
  std::function<ActivationOption()> activation;
  std::string fused_as;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.label; }

Sequential Build(const Case& c, bool fused) {
  DenseOptions hidden{.activation = fused ? c.activation() : ActivationOption(), .kernel_initializer = "he_normal",
                      .input_shape = Shape{6}};
  Sequential m({Dense(16, hidden)});
  if (!fused) m.Add(Activation(c.activation()));
  hidden.input_shape.reset();
  m.Add(Dense(8, hidden));
  if (!fused) m.Add(Activation(c.activation()));
  m.Add(Dense(3, {.activation = "softmax"}));
  return m;
}

int CountOps(Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op_name() == op;
  return n;
}

double MaxRelDiff(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    double x = a.data<float>()[i], y = b.data<float>()[i];
    worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
  }
  return worst;
}

class DenseFusionTest : public ::testing::TestWithParam<Case> {};

TEST_P(DenseFusionTest, FusedMatchesUnfusedForwardAndTraining) {
  const Case& c = GetParam();
  const std::string& act = c.label;
  Tensor x, y;
  MakeData(x, y);
  Sequential fused = Build(c, true), unfused = Build(c, false);
  const CompileOptions options{.optimizer = optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9}};
  ASSERT_TRUE(fused.Compile(options).ok());
  ASSERT_TRUE(unfused.Compile(options).ok());
  // The fused graph has no separate activation node and fuses into 2 Dense nodes.
  int fused_dense = 0;
  for (const Node& node : fused.graph()->nodes()) {
    fused_dense += node.op_name() == "Dense" && node.attr_or<std::string>("activation", "") == c.fused_as;
  }
  EXPECT_EQ(fused_dense, 2);
  EXPECT_EQ(CountOps(*fused.graph(), "DenseActivationGrad"), 2);
  // Same starting weights (layer names differ only for the Activation layers).
  auto weights = fused.GetWeights();
  ASSERT_TRUE(weights.ok());
  ASSERT_TRUE(unfused.SetWeights(*weights).ok());

  auto p_fused = fused.Predict(x), p_unfused = unfused.Predict(x);
  ASSERT_TRUE(p_fused.ok() && p_unfused.ok());
  EXPECT_LT(MaxRelDiff(*p_fused, *p_unfused), kTolerance) << act << " forward";

  // Three SGD steps: equal weights after them means equal gradients.
  for (Sequential* m : {&fused, &unfused}) {
    ASSERT_TRUE(m->Fit(x, y, {.epochs = 1, .batch_size = 16, .shuffle = false, .verbose = 0}).ok());
  }
  auto w_fused = fused.GetWeights(), w_unfused = unfused.GetWeights();
  ASSERT_TRUE(w_fused.ok() && w_unfused.ok());
  for (const auto& [name, value] : *w_fused) {
    ASSERT_TRUE(w_unfused->contains(name)) << name;
    EXPECT_LT(MaxRelDiff(value, w_unfused->at(name)), kTolerance) << act << " " << name;
    EXPECT_GT(MaxRelDiff(value, weights->at(name)), 1e-4) << name << " did not train";
  }
}

Case Named(const std::string& name) { return {name, [name] { return ActivationOption(name); }, name}; }

INSTANTIATE_TEST_SUITE_P(
    Activations, DenseFusionTest,
    ::testing::Values(Named("relu"), Named("elu"), Named("tanh"), Named("sigmoid"),
                      Case{"LeakyReLU", [] { return ActivationOption(LeakyReLU(0.2)); }, "relu"},
                      Case{"ReLU", [] { return ActivationOption(ReLU(0.1)); }, "relu"},
                      Case{"ELU", [] { return ActivationOption(ELU(0.5)); }, "elu"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

}  // namespace
}  // namespace gradflow::nn
