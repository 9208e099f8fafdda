// Issue 13, the nn-side items: one model used from two threads (9), weights
// changed behind the executor's back (16), Add after Compile (17), unloadable
// parameters and names (18, 27), learning rates outside f32 (19), optimizer
// state from a file (20), an enormous batch size (21), MC dropout names (22).

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/checkpoint.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/normalization.h"
#include "nn/saving.h"
#include "optimizers/optimizers.h"
#include "tests/util/files.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

Tensor Inputs(int64_t n, int64_t features = 4, uint64_t seed = 3) {
  Tensor x(DType::kF32, {n, features});
  Rng rng(seed);
  for (float& v : x.flat<float>()) v = static_cast<float>(rng.Normal());
  return x;
}

Tensor Labels(int64_t n, int classes = 3) {
  Tensor y(DType::kI32, {n});
  for (int64_t i = 0; i < n; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(i % classes);
  return y;
}

Sequential Classifier(std::vector<LayerPtr> middle = {}) {
  std::vector<LayerPtr> layers = {Dense(16, {.activation = "relu", .input_shape = Shape{4}})};
  layers.insert(layers.end(), middle.begin(), middle.end());
  layers.push_back(Dense(3, {.activation = "softmax"}));
  return Sequential(std::move(layers));
}

// ------------------------------------------------------------ item 9

TEST(ModelThreadsTest, ConcurrentPredictOnOneModelGivesEveryThreadItsOwnResult) {
  // Wide inputs, so a batch takes a while to gather into the plan's feed buffer.
  Sequential model({Dense(8, {.input_shape = Shape{4096}}), Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  constexpr int kThreads = 3, kCalls = 40;
  std::vector<Tensor> inputs, expected;
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(Inputs(64, 4096, 10 + t));
    expected.push_back(*model.Predict(inputs.back()));
  }
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        absl::StatusOr<Tensor> got = model.Predict(inputs[t], /*batch_size=*/16);
        wrong[t] += !got.ok() || got->ToVector<float>() != expected[t].ToVector<float>();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

TEST(ModelThreadsTest, ConcurrentFitAndPredictOnOneModelComplete) {
  Sequential model({Dense(64, {.activation = "relu", .input_shape = Shape{256}}), Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.01}}).ok());
  const Tensor x = Inputs(1000, 256), y = Labels(1000);
  std::vector<absl::Status> fits(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {  // 30 does not divide 1000: two batch sizes per epoch
    threads.emplace_back([&, t] { fits[t] = model.Fit(x, y, {.epochs = 3, .batch_size = 30, .verbose = 0}).status(); });
  }
  int predicted = 0;
  for (int c = 0; c < 20; ++c) predicted += model.Predict(x).ok();
  for (std::thread& th : threads) th.join();
  EXPECT_TRUE(fits[0].ok()) << fits[0];
  EXPECT_TRUE(fits[1].ok()) << fits[1];
  EXPECT_EQ(predicted, 20);
}

// ------------------------------------------------------------ item 16

static_assert(std::is_const_v<std::remove_reference_t<decltype(std::declval<Layer&>().weights())>>,
              "Layer::weights() is a read-only view; SetWeights changes weights");

TEST(LayerWeightsTest, SetWeightsIsSeenByTheFoldedPredictAndByEvaluate) {
  LayerPtr bn = BatchNormalization();
  Sequential model({Dense(8, {.input_shape = Shape{4}}), bn, Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({.metrics = {"accuracy"}}).ok());
  const Tensor x = Inputs(32);
  auto before = model.Predict(x);
  ASSERT_TRUE(before.ok());
  std::map<std::string, Tensor> weights = bn->GetWeights();
  ASSERT_TRUE(weights.count("gamma"));
  for (float& g : weights["gamma"].flat<float>()) g *= 3.0f;
  ASSERT_TRUE(bn->SetWeights({{"gamma", weights["gamma"]}}).ok());
  auto after = model.Predict(x);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->ToVector<float>(), before->ToVector<float>()) << "Predict must refold the new gamma";
  // The same values through a fresh, unfused model: Predict agrees with it.
  Sequential reference({Dense(8, {.input_shape = Shape{4}}), BatchNormalization(), Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(reference.Compile({.fuse_ops = false}).ok());
  ASSERT_TRUE(reference.SetWeights(*model.GetWeights()).ok());
  auto want = reference.Predict(x);
  ASSERT_TRUE(want.ok());
  for (int64_t i = 0; i < want->num_elements(); ++i) {
    EXPECT_NEAR(after->data<float>()[i], want->data<float>()[i], 1e-5) << i;
  }
  // GetWeights returns copies: writing them changes nothing.
  std::map<std::string, Tensor> copy = bn->GetWeights();
  copy["gamma"].data<float>()[0] = 1e6f;
  EXPECT_NE(bn->weights().at("gamma").data<float>()[0], 1e6f);
}

TEST(LayerWeightsTest, SetWeightsRefusesUnknownNamesAndWrongShapesAndChangesNothing) {
  LayerPtr dense = Dense(3, {.input_shape = Shape{4}});
  Sequential model({dense});
  ASSERT_TRUE(model.Compile({}).ok());
  const std::vector<float> kernel = dense->weights().at("kernel").ToVector<float>();
  absl::Status unknown = dense->SetWeights({{"kernel", Tensor(DType::kF32, {4, 3})}, {"gamma", Tensor(DType::kF32, {3})}});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("'gamma'"));
  absl::Status shape = dense->SetWeights({{"kernel", Tensor(DType::kF32, {3, 4})}});
  EXPECT_EQ(shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(shape.message(), HasSubstr("f32[4, 3]"));
  EXPECT_EQ(dense->weights().at("kernel").ToVector<float>(), kernel);
}

// ------------------------------------------------------------ item 17

TEST(ModelAddTest, AddAfterCompileMarksTheModelUncompiledAndSaveRefuses) {
  Sequential model = Classifier();
  ASSERT_TRUE(model.Compile({}).ok());
  ASSERT_TRUE(model.compiled());
  model.Add(Dense(5));
  EXPECT_FALSE(model.compiled());
  EXPECT_EQ(model.Predict(Inputs(2)).status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string path = testing_util::TempDir("add_after_compile") + "/m.safetensors";
  EXPECT_EQ(model.Save(path).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(path));
  // Compiling again builds the new layer; the file then loads back.
  ASSERT_TRUE(model.Compile({}).ok());
  auto out = model.Predict(Inputs(2));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape(), (Shape{2, 5}));
  ASSERT_TRUE(model.Save(path).ok());
  EXPECT_TRUE(LoadModel(path).ok());
}

// ------------------------------------------------------------ item 18

TEST(UnloadableModelTest, NonFiniteActivationParametersAreRefusedAtCompile) {
  struct Case {
    LayerPtr layer;
    const char* field;
  };
  for (Case c : {Case{LeakyReLU(std::nan("")), "'negative_slope'"}, Case{ELU(INFINITY), "'alpha'"},
                 Case{RReLU(0.1, INFINITY), "'upper'"}}) {
    Sequential model = Classifier({c.layer});
    absl::Status s = model.Compile({});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.layer->type();
    EXPECT_THAT(s.message(), HasSubstr(c.field)) << s;
    EXPECT_THAT(s.message(), HasSubstr("finite")) << s;
  }
}

TEST(UnloadableModelTest, LayerNamedLikeAnOptimizerVariableIsRefused) {
  Sequential model({Dense(3, {.name = "optimizer", .input_shape = Shape{4}})});
  absl::Status s = model.Compile({});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'optimizer'"));
  EXPECT_THAT(s.message(), HasSubstr("'optimizer/learning_rate'"));
  EXPECT_THAT(s.message(), HasSubstr("rename the layer"));
}

TEST(UnloadableModelTest, SaveRefusesAFileLoadModelWouldMisreadAndWritesNothing) {
  LayerPtr first = Dense(3, {.input_shape = Shape{4}});
  Sequential model({first});
  ASSERT_TRUE(model.Compile({}).ok());
  first->set_name("optimizer");  // after Compile: its variables are still "dense/..."
  const std::string path = testing_util::TempDir("unloadable") + "/m.safetensors";
  absl::Status s = model.Save(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("was not written"));
  EXPECT_THAT(s.message(), HasSubstr("would be read back as"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// ------------------------------------------------------------ item 19

TEST(LearningRateRangeTest, RatesThatF32CannotHoldAreRefused) {
  for (double rate : {1e-50, 1e-39, 1e39, 1e300}) {
    Sequential model = Classifier();
    absl::Status s = model.Compile({.optimizer = optimizers::SGD{.learning_rate = rate}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(s.message(), HasSubstr("f32 range")) << s;
  }
  Sequential model = Classifier();
  ASSERT_TRUE(model.Compile({}).ok());
  for (double rate : {1e-50, 1e39, 1e300}) {
    absl::Status s = model.SetLearningRate(rate);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(s.message(), HasSubstr("f32 range")) << s;
  }
  EXPECT_TRUE(model.SetLearningRate(1e-30).ok());
  EXPECT_TRUE(model.SetLearningRate(1e30).ok());
}

// ------------------------------------------------------------ item 20

TEST(OptimizerStateFileTest, BadLearningRateOrStepInAFileIsRefusedNamingTheTensor) {
  const std::string dir = testing_util::TempDir("optimizer_state");
  Sequential model = Classifier();
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::Adam{}}).ok());
  ASSERT_TRUE(model.Fit(Inputs(16), Labels(16), {.batch_size = 8, .verbose = 0}).ok());
  const std::string good = dir + "/good.safetensors";
  ASSERT_TRUE(model.Save(good).ok());
  ASSERT_TRUE(LoadModel(good).ok());
  auto file = LoadCheckpoint(good);
  ASSERT_TRUE(file.ok());
  struct Case {
    std::string tensor;
    Tensor value;
  };
  auto step = [](int64_t s) {
    Tensor t(DType::kI64, {});
    t.data<int64_t>()[0] = s;
    return t;
  };
  for (const Case& c : {Case{optimizers::kLearningRateName, Tensor::Scalar(0.0f)},
                        Case{optimizers::kLearningRateName, Tensor::Scalar(-1.0f)},
                        Case{optimizers::kLearningRateName, Tensor::Scalar(std::nanf(""))},
                        Case{optimizers::kStepName, step(-5)},
                        Case{optimizers::kStepName, step(std::numeric_limits<int64_t>::max())}}) {
    std::map<std::string, Tensor> tensors = file->tensors;
    ASSERT_TRUE(tensors.count(c.tensor)) << c.tensor;
    if (c.tensor == optimizers::kStepName) {
      ASSERT_EQ(tensors[c.tensor].shape(), c.value.shape());
    }
    tensors[c.tensor] = c.value;
    const std::string bad = dir + "/bad.safetensors";
    ASSERT_TRUE(SaveCheckpoint(bad, tensors, file->metadata).ok());
    absl::StatusOr<Model> loaded = LoadModel(bad);
    ASSERT_FALSE(loaded.ok()) << c.tensor;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(loaded.status().message(), HasSubstr("'" + c.tensor + "'")) << loaded.status();
    EXPECT_THAT(loaded.status().message(), HasSubstr("bad.safetensors"));
  }
}

// ------------------------------------------------------------ item 21

TEST(HugeBatchTest, BatchSizeInt64MaxTrainsOnTheWholeDataAsOneBatch) {
  Sequential model = Classifier();
  ASSERT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.1}}).ok());
  const Tensor x = Inputs(40), y = Labels(40);
  const std::vector<float> kernel = model.layers()[0]->weights().at("kernel").ToVector<float>();
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  auto history = model.Fit(x, y, {.epochs = 2, .batch_size = kHuge, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_GT(history->history.at("loss")[0], 0.0);
  EXPECT_NE(model.layers()[0]->weights().at("kernel").ToVector<float>(), kernel) << "it trained";
  auto metrics = model.Evaluate(x, y, kHuge);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GT(metrics->at("loss"), 0.0);
  auto predicted = model.Predict(x, kHuge);
  ASSERT_TRUE(predicted.ok());
  EXPECT_EQ(predicted->shape(), (Shape{40, 3}));
}

// ------------------------------------------------------------ item 22

TEST(McDropoutNamesTest, SeveralMcDropoutLayersGetUniqueDefaultNames) {
  Sequential model({Dense(8, {.activation = "relu", .input_shape = Shape{4}}), MCDropout(0.2),
                    Dense(8, {.activation = "relu"}), MCDropout(0.2), MCAlphaDropout(0.1), MCAlphaDropout(0.1),
                    Dense(3, {.activation = "softmax"})});
  ASSERT_TRUE(model.Compile({}).ok());
  EXPECT_EQ(model.layers()[1]->name(), "mc_dropout");
  EXPECT_EQ(model.layers()[3]->name(), "mc_dropout_1");
  EXPECT_EQ(model.layers()[4]->name(), "mc_alpha_dropout");
  EXPECT_EQ(model.layers()[5]->name(), "mc_alpha_dropout_1");
}

// ------------------------------------------------------------ item 27

TEST(NameValidationTest, ModelAndLayerNamesMustBePrintableUtf8OfBoundedLength) {
  struct Case {
    std::string name;
    const char* reason;
  };
  const std::vector<Case> cases = {{"bad\xff\xfe", "not valid UTF-8"},
                                   {"two\nlines", "control character"},
                                   {std::string(15 << 20, 'a'), "longer than 256 bytes"},
                                   {"", "is empty"}};
  for (const Case& c : cases) {
    Sequential model({Dense(3, {.input_shape = Shape{4}})}, c.name);
    absl::Status s = model.Compile({});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.reason;
    EXPECT_THAT(s.message(), HasSubstr("model name")) << c.reason;
    EXPECT_THAT(s.message(), HasSubstr(c.reason)) << s;
    EXPECT_LT(s.message().size(), 400u) << "the message quotes a capped name";
  }
  for (const Case& c : cases) {
    if (c.name.empty()) continue;  // an empty layer name means "give me the default"
    Sequential model({Dense(3, {.name = c.name, .input_shape = Shape{4}})});
    absl::Status s = model.Compile({});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.reason;
    EXPECT_THAT(s.message(), HasSubstr("layer name")) << c.reason;
    EXPECT_THAT(s.message(), HasSubstr(c.reason)) << s;
  }
  // Printable UTF-8 is fine.
  Sequential model({Dense(3, {.name = "schicht_\xc3\xbc", .input_shape = Shape{4}})}, "mod\xc3\xa8le");
  EXPECT_TRUE(model.Compile({}).ok());
}

}  // namespace
}  // namespace gradflow::nn
