// Tests of layer reuse, cloning and freezing (nn/model.cc, nn/saving.cc):
// the chapter's transfer-learning steps on small synthetic tasks.
//
//   model B on A's layers  -> shares A's weights (training B changes A)
//   model B on a clone     -> A stays intact
//   frozen layers          -> bit-identical after training; the head learns
//   unfreeze + recompile   -> weights kept, a lower learning rate trains all

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/normalization.h"
#include "nn/saving.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

bool SameBits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.num_bytes()) == 0;
}

// Six features in three Gaussian blobs: labels 0..2 for task A, and a binary
// task B ("is it class 2?") on the same inputs.
struct Tasks {
  Tensor x, y_a, y_b;
};

Tasks MakeTasks(int64_t n = 300, uint64_t seed = 21) {
  Tasks t{Tensor(DType::kF32, {n, 6}), Tensor(DType::kI32, {n}), Tensor(DType::kF32, {n, 1})};
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 3);
    t.y_a.data<int32_t>()[i] = label;
    t.y_b.data<float>()[i] = label == 2 ? 1.0f : 0.0f;
    for (int k = 0; k < 6; ++k) {
      t.x.data<float>()[6 * i + k] = static_cast<float>((k % 3 == label ? 2.0 : 0.0) + 0.6 * rng.Normal());
    }
  }
  return t;
}

// The chapter's model A, scaled down: hidden layers, then a softmax head.
nn::Sequential TrainedModelA(const Tasks& tasks) {
  nn::Sequential a({nn::Dense(16, {.activation = "relu", .input_shape = Shape{6}}),
                    nn::BatchNormalization(),
                    nn::Dense(8, {.activation = "relu"}),
                    nn::Dense(3, {.activation = "softmax"})},
                   "model_a");
  EXPECT_TRUE(a.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.05}, .metrics = {"accuracy"}}).ok());
  EXPECT_TRUE(a.Fit(tasks.x, tasks.y_a, {.epochs = 3, .verbose = 0}).ok());
  return a;
}

nn::CompileOptions BinaryOptions(double learning_rate = 0.05) {
  return {.loss = "binary_crossentropy",
          .optimizer = optimizers::SGD{.learning_rate = learning_rate},
          .metrics = {"accuracy"}};
}

// model_B_on_A = Sequential(model_A.layers[:-1]); model_B_on_A.add(Dense(1, "sigmoid"))
nn::Sequential ModelBOn(const nn::Model& base) {
  nn::Sequential b(std::vector<nn::LayerPtr>(base.layers().begin(), base.layers().end() - 1), "model_b");
  b.Add(nn::Dense(1, {.activation = "sigmoid"}));
  return b;
}

TEST(TransferLearningTest, ReusedLayersShareWeightsSoTrainingBChangesA) {
  Tasks tasks = MakeTasks();
  nn::Sequential a = TrainedModelA(tasks);
  const std::string a_summary = a.Summary();
  auto a_before = a.GetWeights();
  auto a_predictions = a.Predict(tasks.x);
  ASSERT_TRUE(a_before.ok() && a_predictions.ok());

  nn::Sequential b = ModelBOn(a);
  // Before B is compiled it already holds A's (shared) weights.
  auto b_uncompiled = b.GetWeights();
  ASSERT_TRUE(b_uncompiled.ok());
  EXPECT_TRUE(SameBits(b_uncompiled->at("dense/kernel"), a_before->at("dense/kernel")));
  ASSERT_TRUE(b.Compile(BinaryOptions()).ok());
  EXPECT_EQ(b.layers()[3]->name(), "dense_2") << "unique within B (A's own head is not in B)";
  ASSERT_TRUE(b.Fit(tasks.x, tasks.y_b, {.epochs = 2, .verbose = 0}).ok());

  auto a_after = a.GetWeights();
  ASSERT_TRUE(a_after.ok());
  for (const char* name : {"dense/kernel", "dense_1/kernel", "batch_normalization/gamma",
                           "batch_normalization/moving_mean"}) {
    EXPECT_FALSE(SameBits(a_before->at(name), a_after->at(name))) << name << " should have changed with B";
    EXPECT_TRUE(SameBits(a_after->at(name), b.GetWeights()->at(name))) << name;
  }
  EXPECT_TRUE(SameBits(a_before->at("dense_2/kernel"), a_after->at("dense_2/kernel")))
      << "A's own head is not part of B";
  auto a_predictions_after = a.Predict(tasks.x);
  ASSERT_TRUE(a_predictions_after.ok());
  EXPECT_FALSE(SameBits(*a_predictions, *a_predictions_after)) << "A's plans read the shared storage";
  EXPECT_EQ(a.Summary(), a_summary) << "A keeps its own view of its layers";
}

TEST(TransferLearningTest, CloneHasFreshVariablesSoTrainingItLeavesAIntact) {
  Tasks tasks = MakeTasks();
  nn::Sequential a = TrainedModelA(tasks);
  auto a_weights = a.GetWeights();
  auto a_predictions = a.Predict(tasks.x);
  ASSERT_TRUE(a_weights.ok() && a_predictions.ok());

  auto clone = nn::CloneModel(a);
  ASSERT_TRUE(clone.ok()) << clone.status();
  EXPECT_FALSE(clone->compiled());
  EXPECT_EQ(clone->name(), "model_a");
  for (size_t i = 0; i < a.layers().size(); ++i) {
    EXPECT_NE(clone->layers()[i], a.layers()[i]) << "fresh layer objects";
    EXPECT_EQ(clone->layers()[i]->name(), a.layers()[i]->name());
    EXPECT_TRUE(clone->layers()[i]->weights().empty()) << "fresh variables";
  }
  // Keras: clone_model, then set_weights (before compiling works too).
  ASSERT_TRUE(clone->SetWeights(*a_weights).ok());
  ASSERT_TRUE(clone->Compile(BinaryOptions()).ok());
  auto clone_predictions = clone->Predict(tasks.x);
  ASSERT_TRUE(clone_predictions.ok());
  EXPECT_TRUE(SameBits(*a_predictions, *clone_predictions));

  nn::Sequential b = ModelBOn(*clone);
  ASSERT_TRUE(b.Compile(BinaryOptions()).ok());
  ASSERT_TRUE(b.Fit(tasks.x, tasks.y_b, {.epochs = 2, .verbose = 0}).ok());
  EXPECT_FALSE(SameBits(b.GetWeights()->at("dense/kernel"), a_weights->at("dense/kernel")));
  auto a_after = a.GetWeights();
  for (const auto& [name, value] : *a_weights) {
    EXPECT_TRUE(SameBits(value, a_after->at(name))) << name << " changed: the clone shares it";
  }
  EXPECT_TRUE(SameBits(*a_predictions, *a.Predict(tasks.x)));
}

TEST(TransferLearningTest, FrozenLayersStayBitIdenticalWhileTheHeadLearnsThenUnfreeze) {
  Tasks tasks = MakeTasks();
  nn::Sequential a = TrainedModelA(tasks);
  auto clone = nn::CloneModel(a);
  ASSERT_TRUE(clone.ok());
  ASSERT_TRUE(clone->SetWeights(*a.GetWeights()).ok());
  nn::Sequential b = ModelBOn(*clone);
  for (size_t i = 0; i + 1 < b.layers().size(); ++i) b.layers()[i]->trainable = false;
  ASSERT_TRUE(b.Compile(BinaryOptions()).ok());
  EXPECT_EQ(b.CountParams(/*trainable=*/true), 9) << "only the new head (8 + 1)";
  auto frozen = b.GetWeights();
  ASSERT_TRUE(frozen.ok());
  ASSERT_TRUE(b.Fit(tasks.x, tasks.y_b, {.epochs = 2, .verbose = 0}).ok());
  auto after_frozen = b.GetWeights();
  for (const auto& [name, value] : *frozen) {
    const bool head = name.rfind("dense_2/", 0) == 0;
    EXPECT_EQ(SameBits(value, after_frozen->at(name)), !head)
        << name << (head ? " (the head) did not learn" : " changed while frozen");
  }
  // Frozen batch norm runs in inference mode: its moving statistics did not
  // move (checked above) and training-mode outputs equal inference outputs.

  // Unfreeze, recompile with a lower learning rate: the weights carry over.
  auto before_recompile = b.Evaluate(tasks.x, tasks.y_b);
  for (const nn::LayerPtr& layer : b.layers()) layer->trainable = true;
  ASSERT_TRUE(b.Compile(BinaryOptions(/*learning_rate=*/1e-3)).ok());
  EXPECT_EQ(*b.learning_rate(), 1e-3f);
  auto after_recompile = b.Evaluate(tasks.x, tasks.y_b);
  ASSERT_TRUE(before_recompile.ok() && after_recompile.ok());
  EXPECT_EQ(before_recompile->at("loss"), after_recompile->at("loss")) << "recompiling lost the weights";
  ASSERT_TRUE(b.Fit(tasks.x, tasks.y_b, {.epochs = 1, .verbose = 0}).ok());
  auto unfrozen = b.GetWeights();
  for (const char* name : {"dense/kernel", "dense_1/kernel", "batch_normalization/gamma",
                           "batch_normalization/moving_mean"}) {
    EXPECT_FALSE(SameBits(after_frozen->at(name), unfrozen->at(name))) << name << " should train once unfrozen";
  }
}

TEST(TransferLearningTest, FrozenBatchNormUsesItsMovingStatisticsInTraining) {
  // With one batch per epoch, Fit reports the training-plan loss before the
  // update. A frozen BN layer normalizes with its moving statistics there, so
  // that loss equals Evaluate's (inference) loss; a trainable one uses the
  // batch statistics and differs.
  Tasks tasks = MakeTasks(64);
  nn::Sequential model({nn::BatchNormalization({.input_shape = Shape{6}}), nn::Dense(1, {.activation = "sigmoid"})});
  ASSERT_TRUE(model.Compile(BinaryOptions()).ok());
  ASSERT_TRUE(model.Fit(tasks.x, tasks.y_b, {.epochs = 3, .batch_size = 16, .verbose = 0}).ok());
  const nn::FitOptions one_step{.epochs = 1, .batch_size = 64, .shuffle = false, .verbose = 0};
  constexpr double kTolerance = 1e-6;

  auto trainable_eval = model.Evaluate(tasks.x, tasks.y_b, 64);
  auto trainable_fit = model.Fit(tasks.x, tasks.y_b, one_step);
  ASSERT_TRUE(trainable_eval.ok() && trainable_fit.ok());
  EXPECT_GT(std::abs(trainable_fit->history.at("loss")[0] - trainable_eval->at("loss")), 100 * kTolerance)
      << "a trainable BN layer should train on batch statistics";

  model.layers()[0]->trainable = false;
  ASSERT_TRUE(model.Compile(BinaryOptions()).ok());
  auto before = model.GetWeights();
  auto frozen_eval = model.Evaluate(tasks.x, tasks.y_b, 64);
  auto frozen_fit = model.Fit(tasks.x, tasks.y_b, one_step);
  ASSERT_TRUE(frozen_eval.ok() && frozen_fit.ok());
  EXPECT_NEAR(frozen_fit->history.at("loss")[0], frozen_eval->at("loss"), kTolerance);
  auto after = model.GetWeights();
  for (const char* name : {"batch_normalization/gamma", "batch_normalization/beta",
                           "batch_normalization/moving_mean", "batch_normalization/moving_variance"}) {
    EXPECT_TRUE(SameBits(before->at(name), after->at(name))) << name;
  }
  EXPECT_FALSE(SameBits(before->at("dense/kernel"), after->at("dense/kernel")));
}

TEST(TransferLearningTest, LayerSharingMistakesAreErrors) {
  Tasks tasks = MakeTasks(30);
  nn::Sequential a = TrainedModelA(tasks);
  // A built layer keeps its input size.
  nn::Sequential wrong_input({nn::Dense(4, {.input_shape = Shape{5}}), a.layers()[2]});
  absl::Status s = wrong_input.Compile({.loss = "mse"});
  EXPECT_THAT(s.message(), HasSubstr("layer 'dense_1' holds 'kernel' as f32[16, 8]"));
  EXPECT_THAT(s.message(), HasSubstr("builds it as f32[4, 8]"));

  nn::LayerPtr dense = nn::Dense(6, {.input_shape = Shape{6}});
  nn::Sequential twice({dense, dense});
  EXPECT_THAT(twice.Compile({.loss = "mse"}).message(), HasSubstr("is the same object as layer 0"));

  nn::Sequential same_name({nn::Dense(6, {.name = "d", .input_shape = Shape{6}}), nn::Dense(6, {.name = "d"})});
  EXPECT_THAT(same_name.Compile({.loss = "mse"}).message(), HasSubstr("two layers are named 'd'"));

  auto clone = nn::CloneModel(a);
  ASSERT_TRUE(clone.ok());
  std::map<std::string, Tensor> bad = {{"nope/kernel", Tensor(DType::kF32, {1})}};
  EXPECT_EQ(clone->SetWeights(bad).code(), absl::StatusCode::kNotFound);
  std::map<std::string, Tensor> wrong_weight = {{"dense/gamma", Tensor(DType::kF32, {1})}};
  ASSERT_TRUE(clone->SetWeights(wrong_weight).ok()) << "held until Compile";
  EXPECT_THAT(clone->Compile({}).message(), HasSubstr("was given a weight 'gamma' that it does not have"));
}

}  // namespace
}  // namespace gradflow
