// Tests of nn/diagnostics.cc: per-layer activation statistics and gradient
// norms against values computed by hand, layers without a kernel or off the
// loss path, the printed table, recompiled models and errors.

#include "nn/diagnostics.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-5;

// y = x W with W = [1, 1]^T, MSE to 0 over two samples x = [1, 2], [3, -1]:
//   out = [3, 2], loss = (9 + 4) / 2 = 6.5
//   dL/dout = 2 out / 2 = [3, 2]           -> norm sqrt(13)
//   dL/dW = 3 [1, 2] + 2 [3, -1] = [9, 4]   -> norm sqrt(97)
//   activation mean 2.5, stddev 0.5
TEST(DiagnosticsTest, MatchesHandComputedStatistics) {
  nn::Sequential model({nn::Dense(1, {.kernel_initializer = "ones", .use_bias = false,
                                      .input_shape = Shape{2}})});
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  nn::GradientDiagnostics probe(model);
  auto d = probe.Run(Tensor::FromVector<float>({2, 2}, {1, 2, 3, -1}).value(), Tensor(DType::kF32, {2, 1}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NEAR(d->loss, 6.5, kTolerance);
  ASSERT_EQ(d->layers.size(), 1u);
  const nn::LayerStatistics& l = d->layers[0];
  EXPECT_EQ(l.name, "dense");
  EXPECT_EQ(l.type, "Dense");
  EXPECT_NEAR(l.activation_mean, 2.5, kTolerance);
  EXPECT_NEAR(l.activation_std, 0.5, kTolerance);
  ASSERT_TRUE(l.output_gradient_norm && l.kernel_gradient_norm);
  EXPECT_NEAR(*l.output_gradient_norm, std::sqrt(13.0), kTolerance);
  EXPECT_NEAR(*l.kernel_gradient_norm, std::sqrt(97.0), kTolerance);

  // Probing trains nothing.
  auto w = model.session()->variables().Get("dense/kernel");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->ToVector<float>(), std::vector<float>({1, 1}));
}

TEST(DiagnosticsTest, LayersWithoutKernelOrOffTheLossPath) {
  nn::Sequential model({nn::Flatten(Shape{2, 2}), nn::Dense(8, {.activation = "tanh"}),
                        nn::Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  nn::GradientDiagnostics probe(model);
  Tensor x = Tensor::FromVector<float>({2, 2, 2}, {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f}).value();
  Tensor y = Tensor::FromVector<int32_t>({2}, {0, 2}).value();
  auto d = probe.Run(x, y);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->layers.size(), 3u);
  EXPECT_FALSE(d->layers[0].kernel_gradient_norm.has_value());  // Flatten
  EXPECT_TRUE(d->layers[0].output_gradient_norm.has_value());
  EXPECT_GT(*d->layers[1].kernel_gradient_norm, 0.0);
  // The loss is computed from the logits, not from the softmax output.
  EXPECT_FALSE(d->layers[2].output_gradient_norm.has_value());
  EXPECT_GT(*d->layers[2].kernel_gradient_norm, 0.0);
  // Softmax rows sum to 1: 3 classes -> mean 1/3.
  EXPECT_NEAR(d->layers[2].activation_mean, 1.0 / 3, kTolerance);

  const std::string table = d->ToString();
  EXPECT_THAT(table, HasSubstr("|dL/dW|"));
  EXPECT_THAT(table, HasSubstr("flatten (Flatten)"));
  EXPECT_THAT(table, HasSubstr("dense_1 (Dense)"));
  EXPECT_THAT(table, HasSubstr(" -"));

  // The same batch gives the same numbers; a recompiled model is probed anew.
  auto again = probe.Run(x, y);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->layers[1].kernel_gradient_norm, d->layers[1].kernel_gradient_norm);
  ASSERT_TRUE(model.Compile({}).ok());
  auto recompiled = probe.Run(x, y);
  ASSERT_TRUE(recompiled.ok()) << recompiled.status();
  EXPECT_NEAR(*recompiled->layers[1].kernel_gradient_norm, *d->layers[1].kernel_gradient_norm, 1e-6);
}

TEST(DiagnosticsTest, NeedsACompiledModelAndMatchingBatch) {
  nn::Sequential model({nn::Dense(1, {.input_shape = Shape{2}})});
  nn::GradientDiagnostics probe(model);
  auto d = probe.Run(Tensor(DType::kF32, {1, 2}), Tensor(DType::kF32, {1, 1}));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(model.Compile({.loss = "mse"}).ok());
  d = probe.Run(Tensor(DType::kF32, {1, 3}), Tensor(DType::kF32, {1, 1}));
  EXPECT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("placeholder 'x'"));
}

}  // namespace
}  // namespace gradflow
