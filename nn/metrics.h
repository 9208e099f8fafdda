#ifndef GRADFLOW_NN_METRICS_H_
#define GRADFLOW_NN_METRICS_H_

// Keras's metrics, streamed over the batches of a pass as Keras's metric
// objects are. Each metric is one described struct below (core/describe.h:
// its Keras class, its settings with Keras 3's defaults) with
//   Statistics: the per-batch graph nodes (f32 tensors of a fixed shape,
//     ops/metric_statistics.h) that Fit / Evaluate SUM elementwise over the
//     batches of one pass, and
//   Result: the metric's value from those sums (and the sample count).
//   kDirection: which way the metric improves (MetricDirection).
// Mean metrics (accuracies, mae, mse) sum {per-sample values, count};
// RootMeanSquaredError takes the root at the end; Precision, Recall and AUC
// sum confusion counts per threshold. The registry (nn/metrics.cc: each
// struct and its Keras short aliases) is the one list of metric names:
// Compile's look-ups, MetricNames(), the messages listing valid names, the
// Keras config reader and writer and the tests derive from it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "core/describe.h"
#include "graph/graph.h"
#include "nn/losses.h"

namespace gradflow::nn {

// What a metric's statistics are built from.
struct MetricContext {
  const Scope& scope;
  Output targets;  // the model's "y" placeholder
  Output output;   // the model's output
  const LossInfo& loss;  // the compiled loss ("accuracy" resolves against it)
};

// Which way a metric improves: Keras 3's Metric._direction, "up" for the
// accuracies, top-k, precision, recall and AUC, "down" for the errors. The
// callbacks' mode "auto" reads it (MonitorDirection below).
enum class MetricDirection { kUp, kDown };

namespace metrics {

// Keras's "accuracy" / "acc": the accuracy that fits the loss (LossInfo::accuracy).
// Not a Keras class (compile resolves the name), so never written as one.
struct FitsLossAccuracy {
  static constexpr const char* kName = "FitsLossAccuracy";
  static constexpr const char* kKerasClass = nullptr;
  static constexpr MetricDirection kDirection = MetricDirection::kUp;  // every accuracy goes up
  template <typename Self, typename F> static void Fields(Self&, F&&) {}
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const FitsLossAccuracy&, const FitsLossAccuracy&) = default;
};

// Keras 3 metric classes. Results follow their result(): the sums below.
#define GF_MEAN_METRIC(Struct, KerasName, Direction)                                \
  struct Struct {                                                                   \
    static constexpr const char* kName = KerasName;                                \
    static constexpr MetricDirection kDirection = MetricDirection::Direction;      \
    template <typename Self, typename F> static void Fields(Self&, F&&) {}         \
    absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;  \
    double Result(std::span<const double> sums, int64_t samples) const;            \
    friend bool operator==(const Struct&, const Struct&) = default;                \
  }

GF_MEAN_METRIC(SparseCategoricalAccuracy, "SparseCategoricalAccuracy", kUp);  // argmax(y) == label
GF_MEAN_METRIC(CategoricalAccuracy, "CategoricalAccuracy", kUp);              // argmax(y) == argmax(t)
GF_MEAN_METRIC(MeanAbsoluteError, "MeanAbsoluteError", kDown);                  // mean |t - y|
GF_MEAN_METRIC(MeanSquaredError, "MeanSquaredError", kDown);                    // mean (t - y)^2
GF_MEAN_METRIC(MeanAbsolutePercentageError, "MeanAbsolutePercentageError", kDown);  // 100 mean |t - y| / max(|t|, 1e-7)
GF_MEAN_METRIC(RootMeanSquaredError, "RootMeanSquaredError", kDown);            // sqrt(sum (t - y)^2 / count)
#undef GF_MEAN_METRIC

// (y > threshold) == t, averaged over every element.
struct BinaryAccuracy {
  static constexpr const char* kName = "BinaryAccuracy";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  double threshold = 0.5;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::Any("threshold"), o.threshold);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const BinaryAccuracy&, const BinaryAccuracy&) = default;
};

// The rows whose target class (argmax of the one-hot row) is among the k
// largest predictions (ties with the k-th count in, as tf.math.in_top_k).
struct TopKCategoricalAccuracy {
  static constexpr const char* kName = "TopKCategoricalAccuracy";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  int64_t k = 5;  // Keras default; at most the number of classes
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::InRange("k", 1, 1 << 30), o.k);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const TopKCategoricalAccuracy&, const TopKCategoricalAccuracy&) = default;
};

// TopKCategoricalAccuracy with class-index labels (i32).
struct SparseTopKCategoricalAccuracy {
  static constexpr const char* kName = "SparseTopKCategoricalAccuracy";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  int64_t k = 5;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::InRange("k", 1, 1 << 30), o.k);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const SparseTopKCategoricalAccuracy&, const SparseTopKCategoricalAccuracy&) = default;
};

// tp / (tp + fp) over every element (0 when nothing is predicted positive,
// Keras's divide_no_nan); predicted positive: y > thresholds; a target != 0
// is positive. One threshold (Keras also takes a list, giving a list).
struct Precision {
  static constexpr const char* kName = "Precision";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  double thresholds = 0.5;  // Keras's default when thresholds=None
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::InRange("thresholds", 0, 1, /*hi_inclusive=*/true), o.thresholds);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const Precision&, const Precision&) = default;
};

// tp / (tp + fn), as Precision.
struct Recall {
  static constexpr const char* kName = "Recall";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  double thresholds = 0.5;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::InRange("thresholds", 0, 1, /*hi_inclusive=*/true), o.thresholds);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const Recall&, const Recall&) = default;
};

enum class AucCurve { kROC, kPR };
inline constexpr const char* kAucCurveNames[] = {"ROC", "PR"};
enum class AucSummation { kInterpolation, kMinoring, kMajoring };
inline constexpr const char* kAucSummationNames[] = {"interpolation", "minoring", "majoring"};

// Keras's AUC with multi_label false: confusion counts at num_thresholds
// thresholds, 0 - 1e-7, i / (num_thresholds - 1) for i = 1 .. n - 2, 1 + 1e-7
// (AucThresholds), summed over the batches; the area by the Riemann sum of
// `summation_method` over the ROC (x = fp rate, y = recall) or PR (x =
// recall, y = precision) points, PR with interpolation by Davis & Goadrich's
// formula (Keras's interpolate_pr_auc).
struct AUC {
  static constexpr const char* kName = "AUC";
  static constexpr MetricDirection kDirection = MetricDirection::kUp;
  int64_t num_thresholds = 200;
  AucCurve curve = AucCurve::kROC;
  AucSummation summation_method = AucSummation::kInterpolation;
  template <typename Self, typename F> static void Fields(Self& o, F&& f) {
    f(Field::InRange("num_thresholds", 2, 1 << 20, /*hi_inclusive=*/true), o.num_thresholds);
    f(Field::OneOf("curve", kAucCurveNames), o.curve);
    f(Field::OneOf("summation_method", kAucSummationNames), o.summation_method);
  }
  absl::StatusOr<std::vector<Output>> Statistics(const MetricContext& c) const;
  double Result(std::span<const double> sums, int64_t samples) const;
  friend bool operator==(const AUC&, const AUC&) = default;
};

using MetricConfig =
    std::variant<FitsLossAccuracy, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
                 TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanAbsoluteError, MeanSquaredError,
                 MeanAbsolutePercentageError, RootMeanSquaredError, Precision, Recall, AUC>;

// Keras's AUC thresholds for num_thresholds (>= 2), ascending.
std::vector<double> AucThresholds(int64_t num_thresholds);

// The metric's kDirection.
MetricDirection DirectionOf(const MetricConfig& config);

}  // namespace metrics

// A metric as CompileOptions::metrics lists it: a Keras name ("accuracy",
// "mae", "auc"; Keras's defaults) or a configured object
// (metrics::AUC{.curve = metrics::AucCurve::kPR}), reported under `name` (as
// Keras 3: the string the user gave, else the object's name, its class in
// snake case: "auc", "top_k_categorical_accuracy").
struct Metric {
  Metric(const char* name) : name(name) {}  // NOLINT: implicit, so {"accuracy"} lists work
  Metric(std::string name) : name(std::move(name)) {}  // NOLINT
  template <typename T>
    requires(std::is_constructible_v<metrics::MetricConfig, T> && !std::is_convertible_v<T, std::string>)
  Metric(T object) : name(KerasAlias<T>()), config(std::move(object)) {}  // NOLINT
  Metric(std::string name, metrics::MetricConfig object) : name(std::move(name)), config(std::move(object)) {}

  std::string name;
  std::optional<metrics::MetricConfig> config;  // nullopt: `name` is a Keras metric name
  friend bool operator==(const Metric&, const Metric&) = default;
};

// One registered metric class and the Keras names that mean it with its
// defaults: the snake_case alias and the class name, then Keras's short
// aliases ("mae", "MAE"). The first name is canonical.
struct MetricInfo {
  std::vector<std::string> names;
  metrics::MetricConfig config;
};

// The metric with that Keras name; an InvalidArgument error listing every
// valid name otherwise.
absl::StatusOr<const MetricInfo*> FindMetric(std::string_view name);
const std::vector<MetricInfo>& Metrics();  // in registration order
std::vector<std::string> MetricNames();    // every accepted name (aliases included)

// The metric's object: its config, or the defaults its name means. Errors
// name the metric and list the valid names, or the setting out of range.
absl::StatusOr<metrics::MetricConfig> ResolveMetric(const Metric& metric);

// A metric as a compiled model computes it.
struct CompiledMetric {
  std::string name;  // the reported name
  metrics::MetricConfig config;
  std::vector<Output> statistics;  // fetched every batch, summed over a pass
};
absl::StatusOr<CompiledMetric> BuildMetric(const Metric& metric, const MetricContext& context);
// Every metric of CompileOptions::metrics, named uniquely as Keras 3 does
// (ReportedMetricNames). Errors start "Compile: ".
absl::StatusOr<std::vector<CompiledMetric>> BuildMetrics(const std::vector<Metric>& list,
                                                         const MetricContext& context);
// The names the metrics of `list` are reported under, in order: each one's
// `name`, a repeated name as name_1, name_2, ... (Keras 3).
std::vector<std::string> ReportedMetricNames(const std::vector<Metric>& list);

// Keras 3's mode "auto" of the callbacks that watch one log entry
// (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint; Keras's
// MonitorCallback._set_monitor_op): which way `monitor` improves for a model
// compiled with `metrics` (CompileOptions::metrics). A "val_" prefix is
// dropped; then "loss", or a name ending in "_loss" (a multi-output model's
// per-output loss), goes down; a metric's reported name ("auc", "mae_1"),
// or a name ending in "_" and one ("main_output_auc", as multi-output
// models report their metrics; the longest such name wins), goes that
// metric's kDirection. Anything else is an InvalidArgument naming the
// monitor, the model's metric names and the fix (mode "max" or "min"), as
// Keras raises a ValueError.
absl::StatusOr<MetricDirection> MonitorDirection(const std::vector<Metric>& metrics, std::string_view monitor);

// The running sums of one metric's statistics over a pass.
class MetricSums {
 public:
  // Adds one batch: fetched[first ...], one tensor per statistic. Returns
  // the index after them.
  size_t Add(const CompiledMetric& metric, const std::vector<Tensor>& fetched, size_t first);
  double Result(const CompiledMetric& metric, int64_t samples) const;
  // The statistics' running sums (data parallel adds every rank's).
  std::vector<double>& sums() { return sums_; }
  const std::vector<double>& sums() const { return sums_; }

 private:
  std::vector<double> sums_;
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_METRICS_H_
