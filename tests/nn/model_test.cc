// Tests of nn/model.cc and nn/layers.cc: Sequential compile / fit / evaluate /
// predict / summary on a small synthetic problem, its error messages, and one
// short end-to-end run of the chapter's MLP on a Fashion-MNIST subset.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <limits>
#include <string>
#include <vector>

#include "core/fashion_mnist.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/progress_bar.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------- data

// Three well-separated 2-D Gaussian blobs (centres 6 apart, stddev 0.7), one
// class each. Samples are interleaved (sample i has class i % 3) so any tail
// taken by validation_split is balanced.
constexpr int kNumClasses = 3;
constexpr int64_t kNumSamples = 300;
constexpr double kBlobStddev = 0.7;
constexpr double kCentres[kNumClasses][2] = {{0.0, 3.5}, {-3.0, -1.75}, {3.0, -1.75}};
constexpr uint64_t kDataSeed = 7;

struct Blobs {
  Tensor x;  // f32 [N, 2]
  Tensor y;  // i32 [N]
};

Blobs MakeBlobs(int64_t n = kNumSamples, uint64_t seed = kDataSeed) {
  Blobs b{Tensor(DType::kF32, {n, 2}), Tensor(DType::kI32, {n})};
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    int label = static_cast<int>(i % kNumClasses);
    b.y.data<int32_t>()[i] = label;
    for (int d = 0; d < 2; ++d) {
      b.x.data<float>()[2 * i + d] = static_cast<float>(kCentres[label][d] + kBlobStddev * rng.Normal());
    }
  }
  return b;
}

// The brief's model: Dense(16, relu) on 2 features, then a 3-way softmax.
nn::Sequential BlobModel() {
  return nn::Sequential({
      nn::Dense(16, {.activation = "relu", .input_shape = Shape{2}}),
      nn::Dense(kNumClasses, {.activation = "softmax"}),
  });
}

nn::CompileOptions BlobCompileOptions(uint64_t seed = 42) {
  return {.loss = "sparse_categorical_crossentropy",
          .optimizer = optimizers::SGD{.learning_rate = 0.1, .momentum = 0.9},
          .metrics = {"accuracy"},
          .seed = seed};
}

constexpr int kEpochs = 5;

nn::FitOptions BlobFitOptions() {
  return {.epochs = kEpochs, .batch_size = 32, .validation_split = 0.2, .verbose = 0};
}

// ---------------------------------------------------------------- training

TEST(SequentialTest, FitsSeparableBlobsWithHistoryPerEpoch) {
  Blobs data = MakeBlobs();
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  auto history = model.Fit(data.x, data.y, BlobFitOptions());
  ASSERT_TRUE(history.ok()) << history.status();

  const auto& h = history->history;
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) {
    ASSERT_TRUE(h.count(key)) << "history has no '" << key << "'";
    EXPECT_EQ(h.at(key).size(), size_t{kEpochs}) << key;
    for (double v : h.at(key)) EXPECT_TRUE(std::isfinite(v)) << key;
  }
  EXPECT_EQ(h.size(), 4u) << "no other keys";
  EXPECT_EQ(history->seconds_per_epoch.size(), size_t{kEpochs});

  EXPECT_LT(h.at("loss").back(), h.at("loss").front());
  EXPECT_LT(h.at("loss").back(), 0.5 * h.at("loss").front());
  EXPECT_LT(h.at("val_loss").back(), h.at("val_loss").front());
  EXPECT_GE(h.at("accuracy").back(), 0.95);
  EXPECT_GE(h.at("val_accuracy").back(), 0.95);
  for (const char* key : {"accuracy", "val_accuracy"}) {
    for (double v : h.at(key)) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
  }

  // The step counter counts every batch: 240 training samples in 8 batches
  // of 32 (the last one of 16) per epoch.
  auto step = model.session()->variables().Get(optimizers::kStepName);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->data<int64_t>()[0], kEpochs * 8);
}

TEST(SequentialTest, SameSeedGivesBitIdenticalHistory) {
  Blobs data = MakeBlobs();
  auto train = [&](uint64_t seed) {
    nn::Sequential model = BlobModel();  // a fresh model each time
    EXPECT_TRUE(model.Compile(BlobCompileOptions(seed)).ok());
    auto history = model.Fit(data.x, data.y, BlobFitOptions());
    EXPECT_TRUE(history.ok()) << history.status();
    return history.ok() ? history->history : std::map<std::string, std::vector<double>>{};
  };
  auto a = train(42), b = train(42), c = train(43);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b) << "same seed, same data: the histories must be bit-identical";
  EXPECT_NE(a.at("loss"), c.at("loss")) << "the seed must change the initial weights";
}

TEST(SequentialTest, EvaluateAndPredictAgreeWithFit) {
  Blobs data = MakeBlobs();
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  auto history = model.Fit(data.x, data.y, BlobFitOptions());
  ASSERT_TRUE(history.ok()) << history.status();

  // validation_split 0.2 validates on the last 60 samples with the same
  // batch size: Evaluate on them reproduces the last epoch's val_ metrics.
  Tensor x_val = data.x.Slice(240, kNumSamples).value(), y_val = data.y.Slice(240, kNumSamples).value();
  auto val = model.Evaluate(x_val, y_val, /*batch_size=*/32);
  ASSERT_TRUE(val.ok()) << val.status();
  ASSERT_TRUE(val->count("loss"));
  ASSERT_TRUE(val->count("accuracy"));
  EXPECT_EQ(val->size(), 2u);
  EXPECT_DOUBLE_EQ(val->at("loss"), history->history.at("val_loss").back());
  EXPECT_DOUBLE_EQ(val->at("accuracy"), history->history.at("val_accuracy").back());

  auto all = model.Evaluate(data.x, data.y);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_GE(all->at("accuracy"), 0.95);
  EXPECT_GT(all->at("loss"), 0.0);

  // Predict: [N, 3] probabilities; batch 64 leaves a last batch of 44.
  auto probs = model.Predict(data.x, /*batch_size=*/64);
  ASSERT_TRUE(probs.ok()) << probs.status();
  ASSERT_EQ(probs->shape(), (Shape{kNumSamples, kNumClasses}));
  const float* p = probs->data<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < kNumSamples; ++i) {
    double sum = 0;
    for (int k = 0; k < kNumClasses; ++k) {
      EXPECT_GE(p[i * kNumClasses + k], 0.0f);
      sum += p[i * kNumClasses + k];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << i;
    int argmax = static_cast<int>(std::max_element(p + i * kNumClasses, p + (i + 1) * kNumClasses) -
                                  (p + i * kNumClasses));
    correct += argmax == data.y.data<int32_t>()[i];
  }
  EXPECT_DOUBLE_EQ(double(correct) / kNumSamples, all->at("accuracy"));

  // The batch size of Predict does not change the values.
  auto probs_one_batch = model.Predict(data.x, /*batch_size=*/kNumSamples);
  ASSERT_TRUE(probs_one_batch.ok()) << probs_one_batch.status();
  for (int64_t i = 0; i < probs->num_elements(); ++i) {
    EXPECT_NEAR(probs_one_batch->data<float>()[i], p[i], 1e-6) << i;
  }
}

TEST(SequentialTest, ValidationDataIsUsedWhenGiven) {
  Blobs train = MakeBlobs(150, 1), valid = MakeBlobs(60, 2);
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  auto history = model.Fit(train.x, train.y,
                           {.epochs = 2,
                            .validation_data = nn::ValidationData{valid.x, valid.y},
                            .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->history.at("val_loss").size(), 2u);
  auto val = model.Evaluate(valid.x, valid.y);
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_DOUBLE_EQ(val->at("loss"), history->history.at("val_loss").back());
}

TEST(SequentialTest, InitialEpochAndValidationFreqAsKeras) {
  Blobs train = MakeBlobs(150, 1), valid = MakeBlobs(60, 2);
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  auto epochs_seen = std::make_shared<std::vector<int>>();
  struct Recorder : nn::Callback {
    std::shared_ptr<std::vector<int>> seen;
    absl::Status OnEpochBegin(nn::Model&, int epoch) override {
      seen->push_back(epoch);
      return absl::OkStatus();
    }
  };
  auto recorder = std::make_shared<Recorder>();
  recorder->seen = epochs_seen;
  // Resume at epoch 2 of 6, validating after epochs 3 and 6 (1-based) only.
  auto history = model.Fit(train.x, train.y,
                           {.epochs = 6, .validation_data = nn::ValidationData{valid.x, valid.y}, .verbose = 0,
                            .callbacks = {recorder}, .initial_epoch = 2, .validation_freq = 3});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(*epochs_seen, (std::vector<int>{2, 3, 4, 5}));
  EXPECT_EQ(history->history.at("loss").size(), 4u);
  EXPECT_EQ(history->history.at("val_loss").size(), 2u);  // after epochs 3 and 6
  EXPECT_FALSE(model.Fit(train.x, train.y, {.verbose = 0, .validation_freq = 0}).ok());
  EXPECT_FALSE(model.Fit(train.x, train.y, {.verbose = 0, .initial_epoch = -1}).ok());
}

TEST(SequentialTest, SummaryListsLayersShapesAndParamCounts) {
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  std::string summary = model.Summary();
  // Dense(16) on 2 features: 2 * 16 + 16 = 48; Dense(3): 16 * 3 + 3 = 51.
  EXPECT_THAT(summary, HasSubstr("Model: \"sequential\""));
  EXPECT_THAT(summary, HasSubstr("dense (Dense)"));
  EXPECT_THAT(summary, HasSubstr("dense_1 (Dense)"));
  EXPECT_THAT(summary, HasSubstr("(None, 16)"));
  EXPECT_THAT(summary, HasSubstr("(None, 3)"));
  EXPECT_THAT(summary, testing::ContainsRegex("dense \\(Dense\\) +\\(None, 16\\) +48\n"));
  EXPECT_THAT(summary, testing::ContainsRegex("dense_1 \\(Dense\\) +\\(None, 3\\) +51\n"));
  EXPECT_THAT(summary, HasSubstr("Total params: 99\n"));
  EXPECT_THAT(summary, HasSubstr("Trainable params: 99\n"));
  EXPECT_THAT(summary, HasSubstr("Non-trainable params: 0\n"));
  EXPECT_EQ(model.CountParams(/*trainable=*/true), 99);
  EXPECT_EQ(model.CountParams(/*trainable=*/false), 0);
}

TEST(SequentialTest, SummaryColumnsWidenForLongLayerNames) {
  nn::Sequential model({nn::Dense(4, {.name = "a_layer_name_longer_than_the_column", .input_shape = Shape{2}}),
                        nn::Dense(3)});
  ASSERT_TRUE(model.Compile({}).ok());
  std::vector<std::string> lines = absl::StrSplit(model.Summary(), '\n');
  // Every row's shape column starts where the header's "Output Shape" does.
  const size_t column = lines[2].find("Output Shape");
  ASSERT_NE(column, std::string::npos);
  int rows = 0;
  for (const std::string& line : lines) {
    if (line.find("(None, ") == std::string::npos) continue;
    EXPECT_EQ(line.find("(None, "), column) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 2);
  EXPECT_EQ(lines[1].size(), lines[3].size());  // the rules match the widened table
  EXPECT_GT(lines[1].size(), 65u);
}

TEST(SequentialTest, SummaryOfTheChapterMlpUsesThousandsSeparators) {
  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::Dense(300, {.activation = "relu"}),
      nn::Dense(100, {.activation = "relu"}),
      nn::Dense(10, {.activation = "softmax"}),
  });
  ASSERT_TRUE(model.Compile({}).ok());
  std::string summary = model.Summary();
  // As in the book: 235,500 + 30,100 + 1,010 = 266,610.
  EXPECT_THAT(summary, HasSubstr("flatten (Flatten)"));
  EXPECT_THAT(summary, HasSubstr("(None, 784)"));
  EXPECT_THAT(summary, HasSubstr("235,500"));
  EXPECT_THAT(summary, HasSubstr("30,100"));
  EXPECT_THAT(summary, HasSubstr("1,010"));
  EXPECT_THAT(summary, HasSubstr("Total params: 266,610"));
}

// Keras builds a layer once its input shape is known: the chapter's MLP
// shows the same table (names, shapes, counts) before and after Compile, and
// summarizing allocates and builds nothing the model keeps.
TEST(SequentialTest, SummaryBeforeCompileIsTheTableAfterIt) {
  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::Dense(300, {.activation = "relu"}),
      nn::Dense(100, {.activation = "relu"}),
      nn::Dense(10, {.activation = "softmax"}),
  });
  const std::string before = model.Summary();
  EXPECT_EQ(model.CountParams(/*trainable=*/true), 266610);
  EXPECT_TRUE(model.layers()[1]->variables().empty());
  EXPECT_TRUE(model.layers()[1]->weights().empty());
  ASSERT_TRUE(model.Compile({}).ok());
  EXPECT_EQ(before, model.Summary());
  EXPECT_THAT(before, HasSubstr("dense_2 (Dense)"));
  EXPECT_THAT(before, HasSubstr("Total params: 266,610"));
  // Without an input shape nothing can be built: shapes stay unknown.
  nn::Sequential shapeless({nn::Dense(3)});
  EXPECT_THAT(shapeless.Summary(), HasSubstr("dense (Dense)"));
  EXPECT_THAT(shapeless.Summary(), HasSubstr(" ? "));
  EXPECT_EQ(shapeless.CountParams(true), 0);
}

TEST(SequentialTest, GetLayerFindsALayerByNameOrListsTheNames) {
  nn::Sequential model = BlobModel();
  absl::StatusOr<nn::LayerPtr> layer = model.GetLayer("dense_1");
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_EQ(*layer, model.layers()[1]);
  absl::StatusOr<nn::LayerPtr> missing = model.GetLayer("output");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("its layers: dense, dense_1"));
  model.Add(nn::Dense(2));
  EXPECT_TRUE(model.GetLayer("dense_2").ok()) << "a layer added later is named at once";
}

TEST(SequentialTest, FrozenLayerCountsAsNonTrainableAndKeepsItsWeights) {
  Blobs data = MakeBlobs();
  nn::Sequential model = BlobModel();
  model.layers()[0]->trainable = false;
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  EXPECT_EQ(model.CountParams(/*trainable=*/true), 51);
  EXPECT_EQ(model.CountParams(/*trainable=*/false), 48);
  EXPECT_THAT(model.Summary(), HasSubstr("Non-trainable params: 48\n"));
  auto before = model.session()->variables().Get("dense/kernel");
  ASSERT_TRUE(before.ok()) << before.status();
  Tensor kernel_before = before->Clone();
  ASSERT_TRUE(model.Fit(data.x, data.y, {.epochs = 1, .verbose = 0}).ok());
  auto after = model.session()->variables().Get("dense/kernel");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->ToVector<float>(), kernel_before.ToVector<float>());
}

// categorical_crossentropy on one-hot labels is the same loss as
// sparse_categorical_crossentropy on class indices: same training, up to
// rounding.
TEST(SequentialTest, OneHotLabelsTrainLikeSparseLabels) {
  Blobs data = MakeBlobs();
  Tensor one_hot(DType::kF32, {kNumSamples, kNumClasses});
  for (int64_t i = 0; i < kNumSamples; ++i) {
    one_hot.data<float>()[i * kNumClasses + data.y.data<int32_t>()[i]] = 1.0f;
  }
  nn::Sequential sparse = BlobModel(), dense = BlobModel();
  ASSERT_TRUE(sparse.Compile(BlobCompileOptions()).ok());
  nn::CompileOptions options = BlobCompileOptions();
  options.loss = "categorical_crossentropy";
  ASSERT_TRUE(dense.Compile(options).ok());
  nn::FitOptions fit = BlobFitOptions();
  fit.epochs = 2;
  auto a = sparse.Fit(data.x, data.y, fit);
  auto b = dense.Fit(data.x, one_hot, fit);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  for (const char* key : {"loss", "val_loss"}) {
    for (int e = 0; e < 2; ++e) {
      double x = a->history.at(key)[e], y = b->history.at(key)[e];
      EXPECT_NEAR(x, y, 1e-4 * std::max(std::abs(x), 1e-3)) << key << " epoch " << e;
    }
  }
  EXPECT_EQ(a->history.at("accuracy"), b->history.at("accuracy"));
}

// Keras 3 (squeeze_or_expand_to_same_rank): binary targets [N] for an
// output [N, 1] are the same targets as [N, 1], and class labels [N, 1] the
// same as [N]. Two models with one seed train to bit-identical histories.
TEST(SequentialTest, TargetsWithOrWithoutATrailingOneTrainAlike) {
  Blobs data = MakeBlobs();
  Tensor flat(DType::kF32, {kNumSamples}), column(DType::kF32, {kNumSamples, 1});
  for (int64_t i = 0; i < kNumSamples; ++i) flat.data<float>()[i] = column.data<float>()[i] = data.y.data<int32_t>()[i] == 0;
  auto binary_model = [] {
    return nn::Sequential({nn::Dense(8, {.activation = "relu", .input_shape = Shape{2}}),
                           nn::Dense(1, {.activation = "sigmoid"})});
  };
  nn::Sequential a = binary_model(), b = binary_model();
  const nn::CompileOptions options{.loss = "binary_crossentropy", .optimizer = optimizers::SGD{.learning_rate = 0.1},
                                   .metrics = {"accuracy", "auc"}};
  ASSERT_TRUE(a.Compile(options).ok());
  ASSERT_TRUE(b.Compile(options).ok());
  nn::FitOptions fit = BlobFitOptions();
  fit.epochs = 2;
  fit.validation_split = 0.2;
  auto ha = a.Fit(data.x, flat, fit);
  auto hb = b.Fit(data.x, column, fit);
  ASSERT_TRUE(ha.ok()) << ha.status();
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(ha->history, hb->history);
  EXPECT_GT(ha->history.at("accuracy").back(), 0.6);
  auto ea = a.Evaluate(data.x, flat), eb = b.Evaluate(data.x, column);
  ASSERT_TRUE(ea.ok()) << ea.status();
  ASSERT_TRUE(eb.ok()) << eb.status();
  EXPECT_EQ(*ea, *eb);
  // Class labels [N, 1] for sparse categorical cross-entropy.
  Tensor labels(DType::kI32, {kNumSamples, 1});
  std::memcpy(labels.raw(), data.y.raw(), data.y.num_bytes());
  nn::Sequential c = BlobModel();
  ASSERT_TRUE(c.Compile(BlobCompileOptions()).ok());
  auto sparse_flat = c.Evaluate(data.x, data.y), sparse_column = c.Evaluate(data.x, labels);
  ASSERT_TRUE(sparse_column.ok()) << sparse_column.status();
  EXPECT_EQ(*sparse_flat, *sparse_column);
  // Any other difference is still an error naming both shapes.
  Tensor wide(DType::kF32, {kNumSamples, 2});
  EXPECT_THAT(a.Evaluate(data.x, wide).status().message(), HasSubstr("y is f32[" + std::to_string(kNumSamples) + ", 2] but the model expects f32[-1, 1]"));
}

// Keras: "validation_data will override validation_split" (Model.fit docs).
// With both given, every sample trains and validation uses validation_data.
TEST(SequentialTest, ValidationDataOverridesValidationSplit) {
  Blobs train = MakeBlobs(96, 1), valid = MakeBlobs(30, 2);
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  auto history = model.Fit(train.x, train.y,
                           {.epochs = 1,
                            .batch_size = 32,
                            .validation_data = nn::ValidationData{valid.x, valid.y},
                            .validation_split = 0.5,
                            .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  auto step = model.session()->variables().Get(optimizers::kStepName);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->data<int64_t>()[0], 3) << "all 96 samples train: 3 batches of 32";
  auto val = model.Evaluate(valid.x, valid.y);
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_DOUBLE_EQ(history->history.at("val_loss").back(), val->at("loss"))
      << "val_loss must be measured on validation_data";
}

// Keras keeps a model's weights when it is compiled again (the chapter
// freezes the reused layers, compiles, trains, unfreezes and compiles again);
// only the optimizer starts afresh. A layer still holds one kernel and one bias.
TEST(SequentialTest, CompilingAgainKeepsWeightsAndLayerVariables) {
  Blobs data = MakeBlobs();
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  ASSERT_TRUE(model.Fit(data.x, data.y, BlobFitOptions()).ok());
  auto before = model.Evaluate(data.x, data.y);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(model.layers()[0]->variables().size(), 2u);

  model.layers()[0]->trainable = false;  // freeze, then compile again
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  EXPECT_EQ(model.layers()[0]->variables().size(), 2u)
      << "Build must not append to the variables of an earlier build";
  EXPECT_EQ(model.layers()[1]->variables().size(), 2u);
  auto after = model.Evaluate(data.x, data.y);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_DOUBLE_EQ(after->at("loss"), before->at("loss")) << "the trained weights were lost";
}

TEST(SequentialTest, LabelOutOfRangeIsAnErrorNotACrash) {
  Blobs data = MakeBlobs(30);
  data.y.data<int32_t>()[3] = 7;
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  absl::Status st = model.Fit(data.x, data.y, {.verbose = 0}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("label 7"));
  EXPECT_THAT(model.Evaluate(data.x, data.y).status().message(), HasSubstr("label 7"));
}

TEST(ProgressBarTest, FormatsValuesLikeKeras) {
  EXPECT_EQ(nn::FormatValues({{"loss", 0.53612}, {"accuracy", 0.81349}}),
            " - loss: 0.5361 - accuracy: 0.8135");
  EXPECT_EQ(nn::FormatValues({}), "");
}

// ---------------------------------------------------------------- errors

absl::Status FitStatus(nn::Model& model, const Tensor& x, const Tensor& y,
                       nn::FitOptions options = {.verbose = 0}) {
  return model.Fit(x, y, options).status();
}

TEST(SequentialErrorsTest, FitBeforeCompile) {
  Blobs data = MakeBlobs(30);
  nn::Sequential model = BlobModel();
  absl::Status st = FitStatus(model, data.x, data.y);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("Compile"));
  EXPECT_THAT(model.Evaluate(data.x, data.y).status().message(), HasSubstr("Compile"));
  EXPECT_THAT(model.Predict(data.x).status().message(), HasSubstr("Compile"));
}

class FitErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = MakeBlobs(30);
    ASSERT_TRUE(model_.Compile(BlobCompileOptions()).ok());
  }
  Blobs data_;
  nn::Sequential model_ = BlobModel();
};

TEST_F(FitErrorsTest, WrongFeatureShapeNamesBothShapes) {
  absl::Status st = FitStatus(model_, Tensor(DType::kF32, {30, 3}), data_.y);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("x"));
  EXPECT_THAT(st.message(), HasSubstr("f32[30, 3]"));
  EXPECT_THAT(st.message(), HasSubstr("f32[-1, 2]"));
  // Evaluate and Predict check x the same way.
  EXPECT_THAT(model_.Evaluate(Tensor(DType::kF32, {30, 3}), data_.y).status().message(),
              HasSubstr("f32[30, 3]"));
  EXPECT_THAT(model_.Predict(Tensor(DType::kF32, {30, 2, 1})).status().message(),
              HasSubstr("f32[30, 2, 1]"));
}

TEST_F(FitErrorsTest, WrongLabelDtype) {
  Tensor float_labels(DType::kF32, {30});
  absl::Status st = FitStatus(model_, data_.x, float_labels);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("y is f32[30]"));
  EXPECT_THAT(st.message(), HasSubstr("i32[-1]"));
}

TEST_F(FitErrorsTest, LabelCountMismatch) {
  absl::Status st = FitStatus(model_, data_.x, data_.y.Slice(0, 29).value());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("29"));
  EXPECT_THAT(st.message(), HasSubstr("30"));
}

TEST_F(FitErrorsTest, ZeroBatchSize) {
  absl::Status st = FitStatus(model_, data_.x, data_.y, {.batch_size = 0, .verbose = 0});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("batch_size must be > 0, got 0"));
  EXPECT_FALSE(model_.Evaluate(data_.x, data_.y, /*batch_size=*/0).ok());
  EXPECT_FALSE(model_.Predict(data_.x, /*batch_size=*/0).ok());
}

TEST_F(FitErrorsTest, ValidationSplitOutsideUnitInterval) {
  for (double split : {1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    SCOPED_TRACE(split);
    absl::Status st =
        FitStatus(model_, data_.x, data_.y, {.validation_split = split, .verbose = 0});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("validation_split must be in [0, 1)"));
  }
}

TEST_F(FitErrorsTest, BadValidationDataNamesIt) {
  absl::Status st = FitStatus(
      model_, data_.x, data_.y,
      {.validation_data = nn::ValidationData{Tensor(DType::kF32, {5, 4}), Tensor(DType::kI32, {5})},
       .verbose = 0});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("validation x"));
  EXPECT_THAT(st.message(), HasSubstr("f32[5, 4]"));
}

TEST(SequentialErrorsTest, UnknownLoss) {
  nn::Sequential model = BlobModel();
  nn::CompileOptions options = BlobCompileOptions();
  options.loss = "hinge_loss";
  absl::Status st = model.Compile(options);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown loss 'hinge_loss'"));
  EXPECT_THAT(st.message(), HasSubstr("sparse_categorical_crossentropy"));  // lists valid ones
  Blobs data = MakeBlobs(30);
  EXPECT_FALSE(model.Fit(data.x, data.y, {.verbose = 0}).ok()) << "a failed Compile is not compiled";
}

TEST(SequentialErrorsTest, UnknownMetric) {
  nn::Sequential model = BlobModel();
  nn::CompileOptions options = BlobCompileOptions();
  options.metrics = {"accuracy", "f1_score"};
  absl::Status st = model.Compile(options);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown metric 'f1_score'"));
  EXPECT_THAT(st.message(), HasSubstr("accuracy"));
}

TEST(SequentialErrorsTest, UnknownActivation) {
  nn::Sequential model({
      nn::Dense(16, {.activation = "rleu", .input_shape = Shape{2}}),
      nn::Dense(kNumClasses, {.activation = "softmax"}),
  });
  absl::Status st = model.Compile(BlobCompileOptions());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown activation 'rleu'"));
  EXPECT_THAT(st.message(), HasSubstr("dense"));  // which layer
  EXPECT_THAT(st.message(), HasSubstr("relu"));   // the valid names
}

TEST(SequentialErrorsTest, UnknownActivationLayer) {
  nn::Sequential model({
      nn::Dense(16, {.input_shape = Shape{2}}),
      nn::Activation("sigmoidd"),
      nn::Dense(kNumClasses, {.activation = "softmax"}),
  });
  absl::Status st = model.Compile(BlobCompileOptions());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown activation 'sigmoidd'"));
  EXPECT_THAT(st.message(), HasSubstr("activation"));  // the layer's scope
}

TEST(SequentialErrorsTest, UnknownInitializer) {
  nn::Sequential model({
      nn::Dense(16, {.activation = "relu", .kernel_initializer = "he_normall",
                     .input_shape = Shape{2}}),
      nn::Dense(kNumClasses, {.activation = "softmax"}),
  });
  absl::Status st = model.Compile(BlobCompileOptions());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown initializer 'he_normall'"));
  EXPECT_THAT(st.message(), HasSubstr("Dense layer 'dense'"));
  EXPECT_THAT(st.message(), HasSubstr("he_normal"));  // the valid names

  nn::Sequential bias_model({
      nn::Dense(4, {.bias_initializer = "zero", .input_shape = Shape{2}}),
  });
  st = bias_model.Compile(BlobCompileOptions());
  EXPECT_THAT(st.message(), HasSubstr("unknown initializer 'zero'"));
}

TEST(SequentialErrorsTest, DenseOnRank3InputNeedsFlatten) {
  nn::Sequential model({
      nn::Dense(10, {.activation = "softmax", .input_shape = Shape{28, 28}}),
  });
  absl::Status st = model.Compile({});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("Dense layer 'dense'"));
  EXPECT_THAT(st.message(), HasSubstr("rank-2"));
  EXPECT_THAT(st.message(), HasSubstr("f32[-1, 28, 28]"));
  EXPECT_THAT(st.message(), HasSubstr("Flatten"));
}

TEST(SequentialErrorsTest, FirstLayerWithoutInputShape) {
  nn::Sequential model({nn::Dense(10)});
  absl::Status st = model.Compile({});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("input shape"));
  nn::Sequential empty;
  EXPECT_THAT(empty.Compile({}).message(), HasSubstr("no layers"));
}

// Issue 13 item 7: a null first layer used to be dereferenced (segfault).
TEST(SequentialErrorsTest, NullFirstLayerIsAnError) {
  nn::Sequential model({nullptr});
  absl::Status st = model.Compile({});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("layer 0 is null"));
  nn::Sequential second({nullptr, nn::Dense(2, {.input_shape = Shape{2}})});
  EXPECT_THAT(second.Compile({}).message(), HasSubstr("layer 0 is null"));
}

// Issue 13 item 24: an empty input dimension used to compile and then fail
// in Fit with oneDNN's INTERNAL "could not create a descriptor".
TEST(SequentialErrorsTest, ZeroInputDimensionNamesTheShape) {
  for (const Shape& bad : {Shape{0}, Shape{4, 0}}) {
    nn::Sequential model({nn::Flatten(bad), nn::Dense(kNumClasses, {.activation = "softmax"})});
    absl::Status st = model.Compile(BlobCompileOptions());
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_THAT(st.message(), HasSubstr("input_shape " + bad.ToString()));
    EXPECT_THAT(st.message(), HasSubstr(">= 1"));
  }
  nn::Sequential dense({nn::Dense(3, {.input_shape = Shape{0}})});
  EXPECT_THAT(dense.Compile(BlobCompileOptions()).message(), HasSubstr("input_shape [0]"));
}

// Issue 13 item 26: a failed re-Compile used to leave a working model
// uncompiled; it keeps the previous compiled state (plans, options, weights).
TEST(SequentialErrorsTest, FailedRecompileKeepsThePreviousModel) {
  Blobs data = MakeBlobs(60);
  nn::Sequential model = BlobModel();
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  ASSERT_TRUE(model.Fit(data.x, data.y, {.epochs = 2, .verbose = 0}).ok());
  const std::vector<Output> variables = model.layers()[0]->variables();

  for (auto bad : {std::function<void(nn::CompileOptions&)>([](auto& o) { o.loss = "hinge_loss"; }),
                   std::function<void(nn::CompileOptions&)>([](auto& o) { o.metrics = {"f1_score"}; })}) {
    auto before = model.Predict(data.x);
    ASSERT_TRUE(before.ok());
    nn::CompileOptions options = BlobCompileOptions();
    bad(options);
    ASSERT_FALSE(model.Compile(options).ok());
    ASSERT_TRUE(model.compiled());
    EXPECT_EQ(model.compile_options()->loss, "sparse_categorical_crossentropy");
    EXPECT_EQ(model.compile_options()->metrics, std::vector<nn::Metric>{"accuracy"});
    auto after = model.Predict(data.x);
    ASSERT_TRUE(after.ok()) << after.status();
    for (int64_t i = 0; i < before->num_elements(); ++i) {
      ASSERT_EQ(before->data<float>()[i], after->data<float>()[i]) << "element " << i;
    }
    // The layer points into the model's own graph again, not the discarded one.
    ASSERT_EQ(model.layers()[0]->variables().size(), variables.size());
    EXPECT_EQ(model.layers()[0]->variables()[0].node, variables[0].node);
    auto evaluated = model.Evaluate(data.x, data.y);
    ASSERT_TRUE(evaluated.ok()) << evaluated.status();
    EXPECT_TRUE(evaluated->count("accuracy"));
    EXPECT_TRUE(model.Fit(data.x, data.y, {.epochs = 1, .verbose = 0}).ok());
  }
}

// A softmax output (from Dense or from an Activation layer) makes the
// cross-entropy use its logits, as Keras does; other outputs do not.
TEST(SequentialTest, CrossEntropyOfASoftmaxOutputUsesTheLogits) {
  auto from_logits = [](nn::Model& model) -> std::optional<bool> {
    for (const Node& node : model.graph()->nodes()) {
      if (node.op_name() == "SparseCategoricalCrossentropy") return node.attr<bool>("from_logits");
    }
    return std::nullopt;
  };
  nn::Sequential dense = BlobModel();
  ASSERT_TRUE(dense.Compile(BlobCompileOptions()).ok());
  EXPECT_EQ(from_logits(dense), true);
  nn::Sequential activation({nn::Dense(kNumClasses, {.input_shape = Shape{2}}), nn::Activation("softmax")});
  ASSERT_TRUE(activation.Compile(BlobCompileOptions()).ok());
  EXPECT_EQ(from_logits(activation), true);
  nn::Sequential sigmoid({nn::Dense(kNumClasses, {.activation = "sigmoid", .input_shape = Shape{2}})});
  ASSERT_TRUE(sigmoid.Compile(BlobCompileOptions()).ok());
  EXPECT_EQ(from_logits(sigmoid), false);
}

// The small-step thread policy gives the caller its OpenMP setting back.
TEST(SequentialTest, FitAndPredictRestoreTheCallersThreadCount) {
  Blobs data = MakeBlobs(40);
  nn::Sequential model = BlobModel();  // small: every step runs on one thread
  ASSERT_TRUE(model.Compile(BlobCompileOptions()).ok());
  const int caller = omp_get_max_threads();
  ASSERT_TRUE(model.Fit(data.x, data.y, {.epochs = 1, .batch_size = 7, .verbose = 0}).ok());
  EXPECT_EQ(omp_get_max_threads(), caller);
  ASSERT_TRUE(model.Predict(data.x, 3).ok());
  EXPECT_EQ(omp_get_max_threads(), caller);
}

// ---------------------------------------------------------------- end to end

// The chapter's MLP (Flatten, Dense 300 relu, Dense 100 relu, Dense 10
// softmax, He init, SGD lr 0.01) on the first 3,000 training images for 3
// epochs: well above chance (0.10) on the first 1,000 test images.
TEST(SequentialEndToEndTest, ChapterMlpLearnsFashionMnistSubset) {
  auto train = LoadFashionMnist("train");
  ASSERT_TRUE(train.ok()) << train.status();
  auto test = LoadFashionMnist("test");
  ASSERT_TRUE(test.ok()) << test.status();
  Tensor x_train = train->images.Slice(0, 3000).value(), y_train = train->labels.Slice(0, 3000).value();
  Tensor x_test = test->images.Slice(0, 1000).value(), y_test = test->labels.Slice(0, 1000).value();

  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::Dense(300, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::Dense(100, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::Dense(10, {.activation = "softmax"}),
  });
  ASSERT_TRUE(model
                  .Compile({.loss = "sparse_categorical_crossentropy",
                            .optimizer = optimizers::SGD{.learning_rate = 0.01},
                            .metrics = {"accuracy"}})
                  .ok());
  auto history = model.Fit(x_train, y_train, {.epochs = 3, .batch_size = 32, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  const auto& loss = history->history.at("loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_LT(loss.back(), loss.front());

  auto result = model.Evaluate(x_test, y_test);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->at("accuracy"), 0.70);
  EXPECT_LT(result->at("loss"), 1.0);
}

}  // namespace
}  // namespace gradflow
