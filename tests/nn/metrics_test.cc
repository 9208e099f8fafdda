// Streaming metrics (nn/metrics.h): every metric's value from Evaluate, from
// Fit's History and from the per-batch logs, over 37 samples in uneven
// batches of 8, against references written out here from the metrics'
// definitions (sklearn's precision and recall, the trapezoid rule over
// Keras's AUC thresholds, Davis & Goadrich's PR interpolation as Keras's
// interpolate_pr_auc), computed on the model's own predictions.

#include "nn/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/keras_config.h"
#include "nn/model.h"
#include "nn/saving.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSamples = 37, kBatch = 8, kFeatures = 3, kClasses = 6;
// Float32 statistics summed in double: values agree to float rounding.
constexpr double kTolerance = 2e-5;
// Fit's metrics must describe the predictions the test computes after it:
// so small a rate leaves the weights (and the predictions) as they were.
constexpr double kFrozenRate = 1e-9;

Tensor Features() {
  Tensor x(DType::kF32, {kSamples, kFeatures});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = std::sin(0.7 * double(i * i % 23)) * 1.5f;
  return x;
}

// 0/1 labels that the random initial model gets partly right.
Tensor BinaryTargets() {
  Tensor y(DType::kF32, {kSamples, 1});
  for (int64_t i = 0; i < kSamples; ++i) y.data<float>()[i] = (i * 5 % 7) < 3 ? 1.0f : 0.0f;
  return y;
}

Tensor ClassLabels() {
  Tensor y(DType::kI32, {kSamples});
  for (int64_t i = 0; i < kSamples; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(i * 4 % kClasses);
  return y;
}

Tensor OneHot(const Tensor& labels) {
  Tensor t(DType::kF32, {kSamples, kClasses});
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = 0.0f;
  for (int64_t i = 0; i < kSamples; ++i) t.data<float>()[i * kClasses + labels.data<int32_t>()[i]] = 1.0f;
  return t;
}

// ------------------------------------------------------------ references

std::vector<double> Column(const Tensor& t) { return std::vector<double>(t.data<float>(), t.data<float>() + t.num_elements()); }

double MeanOver(const std::vector<double>& t, const std::vector<double>& p, double (*error)(double, double)) {
  double sum = 0;
  for (size_t i = 0; i < t.size(); ++i) sum += error(t[i], p[i]);
  return sum / double(t.size());
}

struct Confusion {
  double tp = 0, fp = 0, tn = 0, fn = 0;
};
Confusion CountAt(const std::vector<double>& t, const std::vector<double>& p, double threshold) {
  Confusion c;
  for (size_t i = 0; i < t.size(); ++i) {
    const bool predicted = p[i] > threshold, positive = t[i] == 1;
    (predicted ? (positive ? c.tp : c.fp) : (positive ? c.fn : c.tn)) += 1;
  }
  return c;
}
// sklearn: precision = tp / (tp + fp), recall = tp / (tp + fn), 0 when undefined.
double SafeDiv(double a, double b) { return b == 0 ? 0 : a / b; }
double PrecisionAt(const std::vector<double>& t, const std::vector<double>& p, double threshold) {
  const Confusion c = CountAt(t, p, threshold);
  return SafeDiv(c.tp, c.tp + c.fp);
}
double RecallAt(const std::vector<double>& t, const std::vector<double>& p, double threshold) {
  const Confusion c = CountAt(t, p, threshold);
  return SafeDiv(c.tp, c.tp + c.fn);
}

// Keras's default AUC thresholds for n = 200: -1e-7, 1/199, ..., 198/199, 1 + 1e-7.
std::vector<double> KerasThresholds(int n) {
  std::vector<double> t(n);
  for (int i = 0; i < n; ++i) t[i] = i == 0 ? -1e-7 : i == n - 1 ? 1 + 1e-7 : double(i) / (n - 1);
  return t;
}

// ROC AUC: the trapezoid rule over the (fp rate, tp rate) points.
double RocAuc(const std::vector<double>& t, const std::vector<double>& p, int n) {
  std::vector<double> fpr, tpr;
  for (double threshold : KerasThresholds(n)) {
    const Confusion c = CountAt(t, p, threshold);
    fpr.push_back(SafeDiv(c.fp, c.fp + c.tn));
    tpr.push_back(SafeDiv(c.tp, c.tp + c.fn));
  }
  double area = 0;
  for (int i = 0; i + 1 < n; ++i) area += (fpr[i] - fpr[i + 1]) * (tpr[i] + tpr[i + 1]) / 2;
  return area;
}

// PR AUC, Davis & Goadrich: between thresholds i and i+1 precision follows
// tp / (tp + fp) with tp linear in the positive count P = tp + fp:
// tp(P) = tp1 + s (P - P1), s = dtp / dP, and the area over recall tp / Pos
// is the integral of s + (tp1 - s P1) / P over P, divided by Pos:
// (s dtp + (tp1 - s P1) ln(P0 / P1)) / Pos.
double PrAuc(const std::vector<double>& t, const std::vector<double>& p, int n) {
  std::vector<Confusion> c;
  for (double threshold : KerasThresholds(n)) c.push_back(CountAt(t, p, threshold));
  double area = 0;
  for (int i = 0; i + 1 < n; ++i) {
    const double p0 = c[i].tp + c[i].fp, p1 = c[i + 1].tp + c[i + 1].fp, dtp = c[i].tp - c[i + 1].tp;
    const double slope = p0 - p1 > 0 ? dtp / (p0 - p1) : 0;
    const double log_ratio = p0 > 0 && p1 > 0 ? std::log(p0 / p1) : 0;
    const double positives = c[i + 1].tp + c[i + 1].fn;
    if (positives > 0) area += slope * (dtp + (c[i + 1].tp - slope * p1) * log_ratio) / positives;
  }
  return area;
}

std::map<std::string, double> BinaryReferences(const Tensor& targets, const Tensor& predictions) {
  const std::vector<double> t = Column(targets), p = Column(predictions);
  const double mse = MeanOver(t, p, [](double a, double b) { return (a - b) * (a - b); });
  return {
      {"binary_accuracy", MeanOver(t, p, [](double a, double b) { return double((b > 0.5) == (a == 1)); })},
      {"mae", MeanOver(t, p, [](double a, double b) { return std::abs(a - b); })},
      {"mse", mse},
      {"root_mean_squared_error", std::sqrt(mse)},
      {"mape", MeanOver(t, p, [](double a, double b) { return 100 * std::abs(a - b) / std::max(std::abs(a), 1e-7); })},
      {"precision", PrecisionAt(t, p, 0.5)},
      {"recall", RecallAt(t, p, 0.5)},
      {"precision_at_0.3", PrecisionAt(t, p, 0.3)},
      {"recall_at_0.7", RecallAt(t, p, 0.7)},
      {"auc", RocAuc(t, p, 200)},
      {"pr_auc", PrAuc(t, p, 200)},
      {"roc_50", RocAuc(t, p, 50)},
  };
}

std::vector<nn::Metric> BinaryMetrics() {
  return {"binary_accuracy",
          "mae",
          "mse",
          "root_mean_squared_error",
          "mape",
          "precision",
          "recall",
          nn::Metric("precision_at_0.3", nn::metrics::Precision{.thresholds = 0.3}),
          nn::Metric("recall_at_0.7", nn::metrics::Recall{.thresholds = 0.7}),
          "auc",
          nn::Metric("pr_auc", nn::metrics::AUC{.curve = nn::metrics::AucCurve::kPR}),
          nn::Metric("roc_50", nn::metrics::AUC{.num_thresholds = 50})};
}

nn::Sequential BinaryModel() {
  return nn::Sequential({nn::Dense(4, {.activation = "tanh", .input_shape = Shape{kFeatures}}),
                         nn::Dense(1, {.activation = "sigmoid"})});
}

void ExpectNear(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, kTolerance * std::max(1.0, std::abs(want))) << what;
}

// Records the logs of every training batch.
class BatchLogs : public nn::Callback {
 public:
  absl::Status OnTrainBatchEnd(nn::Model&, int64_t, nn::Logs& logs) override {
    batches.push_back(logs);
    return absl::OkStatus();
  }
  std::vector<nn::Logs> batches;
};

// ------------------------------------------------------------ values

TEST(MetricsTest, EvaluateMatchesTheDefinitionsOverUnevenBatches) {
  nn::Sequential model = BinaryModel();
  ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .metrics = BinaryMetrics()}).ok());
  auto predictions = model.Predict(Features());
  ASSERT_TRUE(predictions.ok());
  auto values = model.Evaluate(Features(), BinaryTargets(), kBatch);
  ASSERT_TRUE(values.ok()) << values.status();
  const auto references = BinaryReferences(BinaryTargets(), *predictions);
  for (const auto& [name, want] : references) ExpectNear(values->at(name), want, name);
  // The data make every metric informative (neither 0 nor 1 throughout).
  EXPECT_GT(references.at("auc"), 0.05);
  EXPECT_LT(references.at("auc"), 0.95);
  EXPECT_GT(references.at("precision"), 0);
  EXPECT_LT(references.at("recall"), 1);
}

TEST(MetricsTest, FitHistoryAndBatchLogsStreamOverTheBatchesSoFar) {
  nn::Sequential model = BinaryModel();
  ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .optimizer = optimizers::SGD{.learning_rate = kFrozenRate},
                             .metrics = BinaryMetrics()})
                  .ok());
  auto logs = std::make_shared<BatchLogs>();
  auto history = model.Fit(Features(), BinaryTargets(),
                           {.epochs = 1, .batch_size = kBatch, .validation_data = nn::ValidationData{Features(), BinaryTargets()},
                            .shuffle = false, .verbose = 0, .callbacks = {logs}});
  ASSERT_TRUE(history.ok()) << history.status();
  auto predictions = model.Predict(Features());
  ASSERT_TRUE(predictions.ok());
  for (const auto& [name, want] : BinaryReferences(BinaryTargets(), *predictions)) {
    ExpectNear(history->history.at(name).back(), want, name);
    ExpectNear(history->history.at("val_" + name).back(), want, "val_" + name);
  }
  // 37 samples in batches of 8: 5 batches; the last batch's running value is the epoch's.
  ASSERT_EQ(logs->batches.size(), 5u);
  for (const auto& [name, value] : logs->batches.back()) EXPECT_EQ(value, history->history.at(name).back()) << name;
  // After the first batch the running value covers its 8 samples alone.
  Tensor x8 = *Features().Slice(0, kBatch), y8 = *BinaryTargets().Slice(0, kBatch);
  const auto first = BinaryReferences(y8, *model.Predict(x8));
  ExpectNear(logs->batches.front().at("mae"), first.at("mae"), "mae after batch 1");
  ExpectNear(logs->batches.front().at("auc"), first.at("auc"), "auc after batch 1");
}

TEST(MetricsTest, TopKAccuraciesCountTheTargetAmongTheKLargest) {
  const Tensor labels = ClassLabels(), onehot = OneHot(labels);
  for (bool sparse : {true, false}) {
    SCOPED_TRACE(sparse ? "sparse" : "one-hot");
    nn::Sequential model({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
    std::vector<nn::Metric> list = {"accuracy", sparse ? "sparse_top_k_categorical_accuracy" : "top_k_categorical_accuracy"};
    if (sparse) list.push_back(nn::metrics::SparseTopKCategoricalAccuracy{.k = 2});
    if (!sparse) list.push_back(nn::metrics::TopKCategoricalAccuracy{.k = 3});
    ASSERT_TRUE(model.Compile({.loss = sparse ? "sparse_categorical_crossentropy" : "categorical_crossentropy",
                               .metrics = list})
                    .ok());
    auto values = model.Evaluate(Features(), sparse ? labels : onehot, kBatch);
    ASSERT_TRUE(values.ok()) << values.status();
    auto p = model.Predict(Features());
    ASSERT_TRUE(p.ok());
    // In the top k: fewer than k classes score strictly higher than the target.
    auto top_k = [&](int k) {
      int hits = 0;
      for (int64_t i = 0; i < kSamples; ++i) {
        const float* row = p->data<float>() + i * kClasses;
        const int target = labels.data<int32_t>()[i];
        hits += std::count_if(row, row + kClasses, [&](float v) { return v > row[target]; }) < k;
      }
      return double(hits) / kSamples;
    };
    const std::string prefix = sparse ? "sparse_" : "";
    ExpectNear(values->at("accuracy"), top_k(1), "accuracy");
    ExpectNear(values->at(prefix + "top_k_categorical_accuracy"), top_k(5), "k = 5");
    ExpectNear(values->at(prefix + "top_k_categorical_accuracy_1"), top_k(sparse ? 2 : 3), "configured k");
    EXPECT_LT(top_k(1), top_k(sparse ? 2 : 3));
    EXPECT_LT(top_k(5), 1.0);
  }
}

// ------------------------------------------------------------ names and errors

TEST(MetricsTest, NamesFollowKeras3) {
  EXPECT_EQ(nn::Metric(nn::metrics::AUC{}).name, "auc");
  EXPECT_EQ(nn::Metric(nn::metrics::TopKCategoricalAccuracy{}).name, "top_k_categorical_accuracy");
  EXPECT_EQ(nn::Metric(nn::metrics::RootMeanSquaredError{}).name, "root_mean_squared_error");
  for (const char* name : {"mae", "MAE", "mean_absolute_error", "MeanAbsoluteError"}) {
    auto info = nn::FindMetric(name);
    ASSERT_TRUE(info.ok()) << name;
    EXPECT_TRUE(std::holds_alternative<nn::metrics::MeanAbsoluteError>((*info)->config)) << name;
  }
  // History keys are the names the user gave; a repeated name gets _1.
  nn::Sequential model = BinaryModel();
  ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .metrics = {"mae", "MeanAbsoluteError", "mae"}}).ok());
  auto values = model.Evaluate(Features(), BinaryTargets(), kBatch);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(values->count("mae"), 1u);
  EXPECT_EQ(values->count("MeanAbsoluteError"), 1u);
  EXPECT_EQ(values->count("mae_1"), 1u);
  EXPECT_EQ(values->at("mae"), values->at("mae_1"));
}

// ------------------------------------------------------------ directions

// Keras 3's _direction of each class (keras/src/metrics/*.py), by canonical
// name; a metric registered without an entry here fails.
TEST(MetricsTest, EveryMetricHasKeras3sDirection) {
  using enum nn::MetricDirection;
  const std::map<std::string, nn::MetricDirection> keras = {
      {"accuracy", kUp},
      {"sparse_categorical_accuracy", kUp},
      {"categorical_accuracy", kUp},
      {"binary_accuracy", kUp},
      {"top_k_categorical_accuracy", kUp},
      {"sparse_top_k_categorical_accuracy", kUp},
      {"mean_absolute_error", kDown},
      {"mean_squared_error", kDown},
      {"mean_absolute_percentage_error", kDown},
      {"root_mean_squared_error", kDown},
      {"precision", kUp},
      {"recall", kUp},
      {"auc", kUp},
  };
  EXPECT_EQ(nn::Metrics().size(), keras.size());
  for (const nn::MetricInfo& info : nn::Metrics()) {
    const std::string& name = info.names.front();
    ASSERT_EQ(keras.count(name), 1u) << name << " has no expected direction here";
    EXPECT_EQ(nn::metrics::DirectionOf(info.config), keras.at(name)) << name;
  }
}

// Mode "auto": the loss goes down, a compiled metric its own way, found by
// its reported name or as the end of a multi-output name.
TEST(MetricsTest, MonitorDirectionFollowsTheCompiledMetrics) {
  using enum nn::MetricDirection;
  const std::vector<nn::Metric> compiled = {"accuracy", "mae", nn::metrics::AUC{}, "precision", "precision",
                                            nn::metrics::TopKCategoricalAccuracy{},
                                            nn::Metric("a_mae", nn::metrics::Recall{})};
  const std::vector<std::pair<std::string, nn::MetricDirection>> cases = {
      {"loss", kDown}, {"val_loss", kDown}, {"main_output_loss", kDown}, {"val_main_output_loss", kDown},
      {"accuracy", kUp}, {"val_accuracy", kUp}, {"mae", kDown}, {"val_mae", kDown},
      {"auc", kUp}, {"val_auc", kUp}, {"precision", kUp}, {"val_precision_1", kUp},
      {"top_k_categorical_accuracy", kUp}, {"main_output_mae", kDown}, {"val_main_output_auc", kUp},
      {"out_a_mae", kUp},  // the longest name it ends in: a_mae (a Recall), not mae
  };
  for (const auto& [monitor, want] : cases) {
    absl::StatusOr<nn::MetricDirection> got = nn::MonitorDirection(compiled, monitor);
    ASSERT_TRUE(got.ok()) << monitor << ": " << got.status();
    EXPECT_EQ(*got, want) << monitor;
  }
  EXPECT_EQ(nn::ReportedMetricNames(compiled),
            (std::vector<std::string>{"accuracy", "mae", "auc", "precision", "precision_1",
                                      "top_k_categorical_accuracy", "a_mae"}));
}

TEST(MetricsTest, MonitorDirectionOfAnUnknownNameNamesTheFix) {
  absl::StatusOr<nn::MetricDirection> recall = nn::MonitorDirection({"accuracy", "auc"}, "val_recall");
  EXPECT_EQ(recall.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(recall.status().message(), HasSubstr("'val_recall'"));
  EXPECT_THAT(recall.status().message(), HasSubstr("the model's metrics (accuracy, auc)"));
  EXPECT_THAT(recall.status().message(), HasSubstr("pass mode \"max\""));
  EXPECT_THAT(recall.status().message(), HasSubstr("mode \"min\""));
  // "val_" is only a prefix, and a name must end in "_" + a metric's name.
  EXPECT_FALSE(nn::MonitorDirection({"auc"}, "my_val_f1").ok());
  EXPECT_FALSE(nn::MonitorDirection({"auc"}, "xauc").ok());
  EXPECT_THAT(nn::MonitorDirection({}, "accuracy").status().message(), HasSubstr("metrics (none)"));
  EXPECT_EQ(*nn::MonitorDirection({}, "val_loss"), nn::MetricDirection::kDown);
}

TEST(MetricsTest, BadMetricsAreCompileErrorsNamingTheFix) {
  nn::Sequential model = BinaryModel();
  absl::Status typo = model.Compile({.loss = "binary_crossentropy", .metrics = {"aucc"}});
  EXPECT_EQ(typo.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(typo.message(), HasSubstr("unknown metric 'aucc'"));
  for (const std::string& name : nn::MetricNames()) EXPECT_THAT(typo.message(), HasSubstr(name));

  absl::Status threshold = model.Compile({.loss = "binary_crossentropy", .metrics = {nn::metrics::Precision{.thresholds = 1.5}}});
  EXPECT_THAT(threshold.message(), HasSubstr("Precision thresholds must be in [0, 1], got 1.5"));
  threshold = model.Compile({.loss = "binary_crossentropy", .metrics = {nn::metrics::Recall{.thresholds = -0.1}}});
  EXPECT_THAT(threshold.message(), HasSubstr("Recall thresholds must be in [0, 1]"));
  absl::Status few = model.Compile({.loss = "binary_crossentropy", .metrics = {nn::metrics::AUC{.num_thresholds = 1}}});
  EXPECT_THAT(few.message(), HasSubstr("num_thresholds must be in [2"));

  nn::Sequential classifier({nn::Dense(kClasses, {.activation = "softmax", .input_shape = Shape{kFeatures}})});
  absl::Status k = classifier.Compile({.loss = "categorical_crossentropy",
                                       .metrics = {nn::metrics::TopKCategoricalAccuracy{.k = 7}}});
  EXPECT_EQ(k.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(k.message(), HasSubstr("k = 7 is more than the 6 classes"));
  EXPECT_TRUE(classifier.Compile({.loss = "categorical_crossentropy",
                                  .metrics = {nn::metrics::TopKCategoricalAccuracy{.k = 6}}}).ok());
}

// ------------------------------------------------------------ configs

TEST(MetricsTest, KerasMetricObjectsReadAndWriteBack) {
  const nlohmann::json keras = nlohmann::json::parse(R"([
      "mae",
      {"module": "keras.metrics", "class_name": "AUC", "registered_name": null,
       "config": {"name": "pr_auc", "dtype": "float32", "num_thresholds": 50, "curve": "PR",
                  "summation_method": "interpolation", "multi_label": false, "num_labels": null,
                  "label_weights": null, "from_logits": false}},
      {"class_name": "Precision", "config": {"name": "precision", "dtype": "float32", "thresholds": null,
                                             "top_k": null, "class_id": null}},
      {"class_name": "TopKCategoricalAccuracy", "config": {"name": "top3", "dtype": "float32", "k": 3}}])");
  std::vector<nn::Metric> read;
  ASSERT_TRUE(nn::keras_config::ReadMetrics(keras, "compile_config", nullptr, read).ok());
  const std::vector<nn::Metric> want = {
      "mae", nn::Metric("pr_auc", nn::metrics::AUC{.num_thresholds = 50, .curve = nn::metrics::AucCurve::kPR}),
      nn::Metric("precision", nn::metrics::Precision{}),
      nn::Metric("top3", nn::metrics::TopKCategoricalAccuracy{.k = 3})};
  EXPECT_EQ(read, want);
  auto written = nn::keras_config::WriteMetrics(read, /*legacy_h5=*/false);
  ASSERT_TRUE(written.ok());
  std::vector<nn::Metric> again;
  ASSERT_TRUE(nn::keras_config::ReadMetrics(*written, "written", nullptr, again).ok());
  EXPECT_EQ(again, want);
  EXPECT_EQ((*written)[1]["config"]["curve"], "PR");

  nlohmann::json multi = keras;
  multi[1]["config"]["multi_label"] = true;
  std::vector<nn::Metric> refused;
  absl::Status s = nn::keras_config::ReadMetrics(multi, "compile_config", nullptr, refused);
  EXPECT_THAT(s.message(), HasSubstr("multi_label"));
}

TEST(MetricsTest, SavedModelKeepsConfiguredMetrics) {
  nn::Sequential model = BinaryModel();
  ASSERT_TRUE(model.Compile({.loss = "binary_crossentropy", .metrics = BinaryMetrics()}).ok());
  const std::string path = testing_util::TempDir("metrics_test") + "/m.safetensors";
  ASSERT_TRUE(model.Save(path).ok());
  auto loaded = nn::LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->compile_options()->metrics, BinaryMetrics());
  auto a = model.Evaluate(Features(), BinaryTargets(), kBatch), b = loaded->Evaluate(Features(), BinaryTargets(), kBatch);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

}  // namespace
}  // namespace gradflow
