// Tests of nn/mc_dropout.cc: PredictMC's mean and population standard
// deviation against passes run by hand through the same kind of plan, its
// reproducibility, the no-dropout case, and errors.

#include "nn/mc_dropout.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor_ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/dropout_layers.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSamples = 20;
constexpr int kPasses = 30;

Tensor Inputs() {
  Tensor x(DType::kF32, {kSamples, 5});
  Rng rng(9);
  for (float& v : x.flat<float>()) v = static_cast<float>(rng.Normal());
  return x;
}

Sequential DropoutModel() {
  Sequential model({Dense(32, {.activation = "relu", .input_shape = Shape{5}}), Dropout(0.5),
                    Dense(4, {.activation = "softmax"})});
  EXPECT_TRUE(model.Compile({}).ok());
  return model;
}

TEST(PredictMcTest, MeanAndStddevOfTheDropoutPasses) {
  Sequential model = DropoutModel();
  const Tensor x = Inputs();
  auto mc = PredictMC(model, x, kPasses, /*batch_size=*/kSamples);
  ASSERT_TRUE(mc.ok()) << mc.status();

  // The same passes by hand on an identical model: a training-phase plan of
  // the same seeded session on PredictMC's random stream for seed 0 draws
  // the same step seeds in the same order.
  Sequential twin = DropoutModel();
  auto plan = twin.session()->Compile({twin.output()}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok());
  plan->set_random_stream(PredictMcRandomStream(0));
  const int64_t count = kSamples * 4;
  std::vector<std::vector<float>> passes;
  for (int p = 0; p < kPasses; ++p) passes.push_back((*plan->Run({{twin.input(), x}}))[0].ToVector<float>());
  EXPECT_NE(passes[0], passes[1]);  // a new mask every pass
  bool some_spread = false;
  for (int64_t i = 0; i < count; ++i) {
    double mean = 0, square = 0;
    for (const auto& pass : passes) mean += pass[i] / double(kPasses);
    for (const auto& pass : passes) square += (pass[i] - mean) * (pass[i] - mean);
    const double stddev = std::sqrt(square / kPasses);  // numpy's std (ddof 0)
    EXPECT_NEAR(mc->mean.data<float>()[i], mean, 1e-6) << i;
    EXPECT_NEAR(mc->stddev.data<float>()[i], stddev, 1e-6) << i;
    some_spread |= stddev > 1e-3;
  }
  EXPECT_TRUE(some_spread);
  // Probabilities: each row of the mean still sums to 1.
  for (int64_t r = 0; r < kSamples; ++r) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += mc->mean.data<float>()[r * 4 + k];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
}

TEST(PredictMcTest, ReproducibleForASeedAndFreshForEachCall) {
  Sequential model = DropoutModel(), twin = DropoutModel();
  const Tensor x = Inputs();
  auto a = PredictMC(model, x, 5, 7), b = PredictMC(twin, x, 5, 7);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->mean.ToVector<float>(), b->mean.ToVector<float>());
  EXPECT_EQ(a->stddev.ToVector<float>(), b->stddev.ToVector<float>());
  EXPECT_EQ(a->mean.shape(), (Shape{kSamples, 4}));
  // Issue 13 item 23: a second identical call gives the same result (it
  // drew new masks before); another seed draws new masks.
  auto again = PredictMC(model, x, 5, 7);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->mean.ToVector<float>(), a->mean.ToVector<float>());
  EXPECT_EQ(again->stddev.ToVector<float>(), a->stddev.ToVector<float>());
  auto fresh = PredictMC(model, x, 5, 7, /*seed=*/1);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->mean.ToVector<float>(), a->mean.ToVector<float>());
}

TEST(PredictMcTest, WithoutDropoutEqualsPredictWithZeroSpread) {
  Sequential model({Dense(8, {.activation = "relu", .input_shape = Shape{5}}),
                    Dense(4, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  const Tensor x = Inputs();
  auto mc = PredictMC(model, x, 4);
  auto plain = model.Predict(x);
  ASSERT_TRUE(mc.ok() && plain.ok());
  for (int64_t i = 0; i < plain->num_elements(); ++i) {
    EXPECT_NEAR(mc->mean.data<float>()[i], plain->data<float>()[i], 1e-6);
    EXPECT_EQ(mc->stddev.data<float>()[i], 0.0f);
  }
}

TEST(PredictMcTest, Errors) {
  Sequential uncompiled({Dense(4, {.input_shape = Shape{5}})});
  EXPECT_THAT(std::string(PredictMC(uncompiled, Inputs(), 3).status().message()), HasSubstr("Compile"));
  Sequential model = DropoutModel();
  EXPECT_FALSE(PredictMC(model, Inputs(), 0).ok());
  EXPECT_THAT(std::string(PredictMC(model, Tensor(DType::kF32, {3, 4}), 2).status().message()),
              HasSubstr("f32[3, 4] but the model expects f32[-1, 5]"));
}

// The chapter's MC dropout with model(X, training=True):
//   y_probas = np.stack([model(X_test, training=True) for sample in range(100)])
//   y_proba = y_probas.mean(axis=0)
TEST(ModelCallTest, TrainingCallsDropWithFreshMasksAndInferenceCallsArePredict) {
  Sequential model = DropoutModel();
  const Tensor x = Inputs();
  std::vector<Tensor> samples;
  for (int sample = 0; sample < kPasses; ++sample) {
    absl::StatusOr<std::vector<Tensor>> y = model.Call(x, {.training = true});
    ASSERT_TRUE(y.ok()) << y.status();
    samples.push_back((*y)[0]);
  }
  absl::StatusOr<Tensor> y_probas = Stack(samples, 0);
  ASSERT_TRUE(y_probas.ok()) << y_probas.status();
  EXPECT_EQ(y_probas->shape(), Shape({kPasses, kSamples, 4}));
  // Two calls draw different masks; each row is still a distribution.
  const float* a = samples[0].data<float>();
  const float* b = samples[1].data<float>();
  bool differ = false;
  for (int64_t i = 0; i < samples[0].num_elements(); ++i) differ |= a[i] != b[i];
  EXPECT_TRUE(differ);
  absl::StatusOr<Tensor> y_proba = Mean(*y_probas, 0);
  ASSERT_TRUE(y_proba.ok()) << y_proba.status();
  for (int64_t r = 0; r < kSamples; ++r) {
    double sum = 0;
    for (int c = 0; c < 4; ++c) sum += y_proba->data<float>()[r * 4 + c];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  // Nothing was updated, and model(x) is Predict.
  const Tensor predicted = *model.Predict(x);
  const Tensor called = (*model.Call(x))[0];
  for (int64_t i = 0; i < predicted.num_elements(); ++i) EXPECT_EQ(called.data<float>()[i], predicted.data<float>()[i]);
  EXPECT_THAT(std::string(model.Call(Tensor(DType::kF32, {2, 3}), {.training = true}).status().message()),
              HasSubstr("Call: x is"));
}

}  // namespace
}  // namespace gradflow::nn
