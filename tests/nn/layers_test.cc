// Tests of nn/layers.cc: Dense's kernel/bias regularizers (the loss that fit
// and evaluate report includes the penalties, as in Keras), max-norm
// constraints after fitting, and one DenseOptions value shared by many layers
// (the chapter's functools.partial).

#include "nn/layers.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

// 64 samples, 4 features, 2 classes (the sign of x0 + x1).
void MakeData(Tensor& x, Tensor& y) {
  x = Tensor(DType::kF32, {64, 4});
  y = Tensor(DType::kI32, {64});
  for (int i = 0; i < 64; ++i) {
    for (int d = 0; d < 4; ++d) x.data<float>()[4 * i + d] = float(((i + 3) * (d + 5) * 37) % 19 - 9) / 9.0f;
    y.data<int32_t>()[i] = x.data<float>()[4 * i] + x.data<float>()[4 * i + 1] > 0;
  }
}

double SumSquares(const Tensor& t) {
  double s = 0;
  for (float v : t.flat<float>()) s += double(v) * v;
  return s;
}

double SumAbs(const Tensor& t) {
  double s = 0;
  for (float v : t.flat<float>()) s += std::abs(double(v));
  return s;
}

TEST(DenseRegularizerTest, ReportedLossIncludesThePenaltiesLikeKeras) {
  Tensor x, y;
  MakeData(x, y);
  Sequential plain({Dense(8, {.activation = "elu", .input_shape = Shape{4}}), Dense(2, {.activation = "softmax"})});
  Sequential regularized({Dense(8, {.activation = "elu",
                                    .kernel_regularizer = L2(0.01),
                                    .bias_regularizer = L1(0.5),
                                    .input_shape = Shape{4}}),
                          Dense(2, {.activation = "softmax", .kernel_regularizer = L1L2(0.02, 0.03)})});
  CompileOptions options{.optimizer = optimizers::SGD{.learning_rate = 0.05}};
  ASSERT_TRUE(plain.Compile(options).ok());
  ASSERT_TRUE(regularized.Compile(options).ok());
  // Same seed and names: the same initial weights. Non-zero biases make the
  // bias penalty visible.
  auto weights = *regularized.GetWeights();
  for (float& v : weights["dense/bias"].flat<float>()) v = 0.25f;
  ASSERT_TRUE(regularized.SetWeights(weights).ok());
  ASSERT_TRUE(plain.SetWeights(weights).ok());
  const double penalty = 0.01 * SumSquares(weights["dense/kernel"]) + 0.5 * SumAbs(weights["dense/bias"]) +
                         0.02 * SumAbs(weights["dense_1/kernel"]) + 0.03 * SumSquares(weights["dense_1/kernel"]);
  auto plain_loss = plain.Evaluate(x, y);
  auto total_loss = regularized.Evaluate(x, y);
  ASSERT_TRUE(plain_loss.ok() && total_loss.ok());
  EXPECT_NEAR((*total_loss)["loss"] - (*plain_loss)["loss"], penalty, 1e-5);

  // One full-batch step reports the loss at the pre-update weights: the same total.
  auto history = regularized.Fit(x, y, {.epochs = 1, .batch_size = 64, .shuffle = false, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_NEAR(history->history.at("loss")[0], (*total_loss)["loss"], 1e-5);
}

TEST(DenseRegularizerTest, OneOptionsValueConfiguresManyLayers) {
  // The chapter's RegularizedDense = partial(Dense, activation="elu",
  // kernel_initializer="he_normal", kernel_regularizer=l2(0.01)).
  const DenseOptions regularized{.activation = "elu",
                                 .kernel_initializer = "he_normal",
                                 .kernel_regularizer = L2(0.01)};
  DenseOptions first = regularized;
  first.input_shape = Shape{4};
  DenseOptions output = regularized;
  output.activation = "softmax";
  output.kernel_initializer = "glorot_uniform";
  Sequential model({Dense(16, first), Dense(8, regularized), Dense(2, output)});
  ASSERT_TRUE(model.Compile({}).ok());
  const Graph& g = *model.graph();
  for (const char* name : {"dense/kernel", "dense_1/kernel", "dense_2/kernel"}) {
    const Node* kernel = g.FindNode(name);
    ASSERT_NE(kernel, nullptr) << name;
    EXPECT_EQ(kernel->attr_or<double>("l2", -1), 0.01) << name;
    EXPECT_EQ(g.FindNode(std::string(name) + "/L1L2Penalty") != nullptr, true) << name;
  }
  EXPECT_EQ(g.FindNode("dense/bias")->has_attr("l2"), false);  // no bias_regularizer
  EXPECT_EQ(g.FindNode("dense_2/Softmax") != nullptr, true);
  EXPECT_EQ(g.FindNode("dense/kernel")->attr<Initializer>("initializer"), HeNormal());
}

TEST(DenseConstraintTest, MaxNormHoldsAfterFitting) {
  Tensor x, y;
  MakeData(x, y);
  Sequential model({Dense(8, {.activation = "relu",
                              .kernel_constraint = MaxNorm{.max_value = 0.5},
                              .bias_constraint = MaxNorm{.max_value = 0.1},
                              .input_shape = Shape{4}}),
                    Dense(2, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.5, .momentum = 0.9}}).ok());
  ASSERT_TRUE(model.Fit(x, y, {.epochs = 3, .batch_size = 8, .verbose = 0}).ok());
  auto weights = *model.GetWeights();
  const Tensor& kernel = weights["dense/kernel"];
  for (int unit = 0; unit < 8; ++unit) {
    double s = 0;
    for (int i = 0; i < 4; ++i) s += std::pow(kernel.data<float>()[i * 8 + unit], 2);
    EXPECT_LE(std::sqrt(s), 0.5 + 1e-6) << "unit " << unit;
  }
  EXPECT_LE(std::sqrt(SumSquares(weights["dense/bias"])), 0.1 + 1e-6);
  // The unconstrained output layer grew past those norms.
  EXPECT_GT(std::sqrt(SumSquares(weights["dense_1/kernel"])), 0.5);
}

TEST(DenseRegularizerTest, BadSettingsFailCompileNamingTheVariable) {
  Sequential nan_penalty({Dense(2, {.kernel_regularizer = L2(std::nan("")), .input_shape = Shape{4}})});
  absl::Status s = nan_penalty.Compile({});
  EXPECT_THAT(std::string(s.message()), HasSubstr("'dense/kernel'"));
  Sequential bad_axis({Dense(2, {.kernel_constraint = MaxNorm{.axis = 3}, .input_shape = Shape{4}})});
  s = bad_axis.Compile({});
  EXPECT_THAT(std::string(s.message()), HasSubstr("axis 3 is out of range"));
}

}  // namespace
}  // namespace gradflow::nn
