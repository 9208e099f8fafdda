// Tests of optimizers/pruning.cc: threshold and target-sparsity (global and
// per-variable) magnitude pruning on known weights, the report, errors, and a
// trained model pruned to 50% that still classifies; strong l1 pushes many
// weights near zero, so threshold pruning removes far more of them.

#include "optimizers/pruning.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/model.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

void Fill(VariableStore& store) {
  ASSERT_TRUE(store.Set("a", Tensor::FromVector<float>({2, 3}, {0.5f, -0.01f, 0.0f, 2.0f, 0.02f, -0.3f}).value()).ok());
  ASSERT_TRUE(store.Set("b", Tensor::FromVector<float>({4}, {-0.005f, 1.0f, 0.3f, -0.04f}).value()).ok());
  ASSERT_TRUE(store.Set("step", Tensor::FromVector<int64_t>({}, {3}).value()).ok());
}

std::vector<float> Values(const VariableStore& store, const std::string& name) {
  return store.Get(name)->ToVector<float>();
}

TEST(PruningTest, ThresholdZerosTinyWeights) {
  VariableStore store;
  Fill(store);
  auto report = optimizers::PruneByMagnitude(store, {"a", "b"}, {.threshold = 0.03});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(Values(store, "a"), (std::vector<float>{0.5f, 0.0f, 0.0f, 2.0f, 0.0f, -0.3f}));
  EXPECT_EQ(Values(store, "b"), (std::vector<float>{0.0f, 1.0f, 0.3f, -0.04f}));
  ASSERT_EQ(report->variables.size(), 2u);
  EXPECT_EQ(report->variables[0].name, "a");
  EXPECT_EQ(report->variables[0].elements, 6);
  EXPECT_EQ(report->variables[0].zeros, 3);
  EXPECT_EQ(report->variables[1].zeros, 1);
  EXPECT_EQ(report->elements, 10);
  EXPECT_EQ(report->zeros, 4);
  EXPECT_DOUBLE_EQ(report->sparsity(), 0.4);
  const std::string table = report->ToString();
  EXPECT_THAT(table, HasSubstr("variable"));
  EXPECT_THAT(table, HasSubstr("50.00%"));  // a: 3 of 6
  EXPECT_THAT(table, HasSubstr("25.00%"));  // b: 1 of 4
  EXPECT_THAT(table, HasSubstr("total"));
  EXPECT_THAT(table, HasSubstr("40.00%"));
}

TEST(PruningTest, GlobalTargetSparsityZerosTheSmallestMagnitudes) {
  VariableStore store;
  Fill(store);
  // ceil(0.55 * 10) = 6 smallest |w| of all ten: 0, 0.005, 0.01, 0.02, 0.04, 0.3 (the first 0.3, in a).
  auto report = optimizers::PruneByMagnitude(store, {"a", "b"}, {.target_sparsity = 0.55});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(Values(store, "a"), (std::vector<float>{0.5f, 0.0f, 0.0f, 2.0f, 0.0f, 0.0f}));
  EXPECT_EQ(Values(store, "b"), (std::vector<float>{0.0f, 1.0f, 0.3f, 0.0f}));
  EXPECT_EQ(report->zeros, 6);
}

TEST(PruningTest, PerVariableTargetSparsity) {
  VariableStore store;
  Fill(store);
  // a: ceil(0.5 * 6) = 3 of {0.5, 0.01, 0, 2, 0.02, 0.3}; b: ceil(0.5 * 4) = 2 of {0.005, 1, 0.3, 0.04}.
  auto report = optimizers::PruneByMagnitude(store, {"a", "b"}, {.target_sparsity = 0.5, .per_variable = true});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(Values(store, "a"), (std::vector<float>{0.5f, 0.0f, 0.0f, 2.0f, 0.0f, -0.3f}));
  EXPECT_EQ(Values(store, "b"), (std::vector<float>{0.0f, 1.0f, 0.3f, 0.0f}));
  EXPECT_DOUBLE_EQ(report->variables[0].sparsity(), 0.5);
  EXPECT_DOUBLE_EQ(report->variables[1].sparsity(), 0.5);
}

TEST(PruningTest, ErrorsChangeNothing) {
  VariableStore store;
  Fill(store);
  struct Case {
    std::vector<std::string> names;
    optimizers::PruningOptions options;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"a"}, {}, "exactly one of threshold and target_sparsity"},
      {{"a"}, {.threshold = 0.1, .target_sparsity = 0.5}, "exactly one"},
      {{"a"}, {.threshold = -1}, "threshold must be >= 0"},
      {{"a"}, {.target_sparsity = 1.5}, "target_sparsity must be in [0, 1]"},
      {{"a", "missing"}, {.threshold = 1}, "no variable 'missing'"},
      {{"a", "step"}, {.threshold = 1}, "'step' is i64[]; only f32 weights can be pruned"},
      {{}, {.threshold = 1}, "no variables named"},
  };
  for (const Case& c : cases) {
    auto report = optimizers::PruneByMagnitude(store, c.names, c.options);
    ASSERT_FALSE(report.ok()) << c.message;
    EXPECT_THAT(report.status().message(), HasSubstr(c.message));
  }
  auto report = optimizers::MeasureSparsity(store, {"a", "b"});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->zeros, 1) << "only the zero that was there";
}

// Two well-separated classes in 20 features; only the first 4 carry signal.
void MakeData(Tensor& x, Tensor& y) {
  constexpr int kSamples = 256, kFeatures = 20;
  x = Tensor(DType::kF32, {kSamples, kFeatures});
  y = Tensor(DType::kI32, {kSamples});
  Rng rng(5);
  for (int i = 0; i < kSamples; ++i) {
    const int label = i % 2;
    y.data<int32_t>()[i] = label;
    for (int f = 0; f < kFeatures; ++f) {
      const double signal = f < 4 ? (label ? 1.0 : -1.0) : 0.0;
      x.data<float>()[i * kFeatures + f] = static_cast<float>(signal + rng.Uniform(-0.5, 0.5));
    }
  }
}

nn::Sequential TrainedModel(std::optional<optimizers::Regularizer> regularizer, const Tensor& x, const Tensor& y) {
  nn::Sequential model({nn::Dense(32, {.activation = "relu", .kernel_regularizer = regularizer, .input_shape = Shape{20}}),
                        nn::Dense(2, {.activation = "softmax", .kernel_regularizer = regularizer})});
  EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.05}, .metrics = {"accuracy"}}).ok());
  EXPECT_TRUE(model.Fit(x, y, {.epochs = 30, .verbose = 0}).ok());
  return model;
}

const std::vector<std::string> kKernels = {"dense/kernel", "dense_1/kernel"};

TEST(PruningTest, TrainedModelPrunedToHalfStillClassifies) {
  Tensor x, y;
  MakeData(x, y);
  nn::Sequential model = TrainedModel(std::nullopt, x, y);
  auto before = model.Evaluate(x, y);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GE((*before)["accuracy"], 0.99);
  auto report = optimizers::PruneByMagnitude(model.session()->variables(), kKernels, {.target_sparsity = 0.5});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->elements, 20 * 32 + 32 * 2);
  EXPECT_EQ(report->zeros, (20 * 32 + 32 * 2) / 2);
  // The compiled plans read the pruned weights at once.
  auto after = model.Evaluate(x, y);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE((*after)["accuracy"], 0.99);
  std::printf("%s", report->ToString().c_str());
}

TEST(PruningTest, StrongL1LeavesManyMoreTinyWeights) {
  Tensor x, y;
  MakeData(x, y);
  nn::Sequential plain = TrainedModel(std::nullopt, x, y);
  nn::Sequential sparse = TrainedModel(optimizers::L1(0.01), x, y);
  constexpr double kTiny = 0.01;
  auto plain_report = optimizers::PruneByMagnitude(plain.session()->variables(), kKernels, {.threshold = kTiny});
  auto sparse_report = optimizers::PruneByMagnitude(sparse.session()->variables(), kKernels, {.threshold = kTiny});
  ASSERT_TRUE(plain_report.ok() && sparse_report.ok());
  std::printf("without l1:\n%swith l1(0.01):\n%s", plain_report->ToString().c_str(),
              sparse_report->ToString().c_str());
  EXPECT_GT(sparse_report->sparsity(), 3 * plain_report->sparsity());
  auto accuracy = sparse.Evaluate(x, y);
  ASSERT_TRUE(accuracy.ok());
  EXPECT_GE((*accuracy)["accuracy"], 0.99) << "the l1 model still classifies after pruning";
}

}  // namespace
}  // namespace gradflow
