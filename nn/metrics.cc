#include "nn/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "ops/metric_statistics.h"
#include "ops/metrics.h"

namespace gradflow::nn {
namespace metrics {
namespace {

// Keras's backend.epsilon(): the AUC thresholds' ends lie this far outside [0, 1].
constexpr double kKerasEpsilon = 1e-7;

// Keras's divide_no_nan: 0 where the denominator is 0.
double DivNoNan(double a, double b) { return b == 0 ? 0.0 : a / b; }

// The mean metrics' statistics are {sum, count}.
double MeanOf(std::span<const double> sums) { return DivNoNan(sums[0], sums[1]); }

std::vector<Output> One(Output statistic) { return {statistic}; }

Tensor ThresholdTensor(const std::vector<double>& thresholds) {
  std::vector<float> values(thresholds.begin(), thresholds.end());
  return *Tensor::FromVector(Shape{static_cast<int64_t>(values.size())}, values);  // sizes agree
}

// Confusion counts {tp, fp, tn, fn} of threshold j in the [T, 4] sums.
struct Counts {
  std::span<const double> s;
  double tp(int64_t j) const { return s[4 * j]; }
  double fp(int64_t j) const { return s[4 * j + 1]; }
  double tn(int64_t j) const { return s[4 * j + 2]; }
  double fn(int64_t j) const { return s[4 * j + 3]; }
};

// Keras's interpolate_pr_auc (Davis & Goadrich 2006): between two thresholds
// precision is interpolated along the true positives, p = tp + fp:
// sum_j slope_j (dtp_j + intercept_j log(p_j / p_j+1)) / (tp_j+1 + fn_j+1),
// slope = dtp / dp, intercept = tp_j+1 - slope p_j+1.
double InterpolatedPrAuc(const Counts& c, int64_t n) {
  double area = 0;
  for (int64_t j = 0; j + 1 < n; ++j) {
    const double dtp = c.tp(j) - c.tp(j + 1);
    const double p0 = c.tp(j) + c.fp(j), p1 = c.tp(j + 1) + c.fp(j + 1);
    const double slope = DivNoNan(dtp, std::max(p0 - p1, 0.0));
    const double intercept = c.tp(j + 1) - slope * p1;
    const double ratio = p0 > 0 && p1 > 0 ? DivNoNan(p0, std::max(p1, 0.0)) : 1.0;
    area += DivNoNan(slope * (dtp + intercept * std::log(ratio)), std::max(c.tp(j + 1) + c.fn(j + 1), 0.0));
  }
  return area;
}

// The Riemann sum over the curve's points (x descending with the threshold).
double RiemannAuc(const Counts& c, int64_t n, AucCurve curve, AucSummation method) {
  std::vector<double> x(n), y(n);
  for (int64_t j = 0; j < n; ++j) {
    const double recall = DivNoNan(c.tp(j), c.tp(j) + c.fn(j));
    x[j] = curve == AucCurve::kROC ? DivNoNan(c.fp(j), c.fp(j) + c.tn(j)) : recall;
    y[j] = curve == AucCurve::kROC ? recall : DivNoNan(c.tp(j), c.tp(j) + c.fp(j));
  }
  double area = 0;
  for (int64_t j = 0; j + 1 < n; ++j) {
    const double height = method == AucSummation::kInterpolation ? (y[j] + y[j + 1]) / 2
                          : method == AucSummation::kMinoring    ? std::min(y[j], y[j + 1])
                                                                 : std::max(y[j], y[j + 1]);
    area += (x[j] - x[j + 1]) * height;
  }
  return area;
}

}  // namespace

std::vector<double> AucThresholds(int64_t num_thresholds) {
  std::vector<double> t = {0.0 - kKerasEpsilon};
  for (int64_t i = 0; i + 2 < num_thresholds; ++i) t.push_back(double(i + 1) / double(num_thresholds - 1));
  t.push_back(1.0 + kKerasEpsilon);
  return t;
}

absl::StatusOr<std::vector<Output>> FitsLossAccuracy::Statistics(const MetricContext& c) const {
  GF_ASSIGN_OR_RETURN(const MetricInfo* accuracy, FindMetric(c.loss.accuracy));
  return std::visit([&](const auto& m) { return m.Statistics(c); }, accuracy->config);
}
double FitsLossAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> SparseCategoricalAccuracy::Statistics(const MetricContext& c) const {
  return One(ops::SparseCategoricalAccuracy(c.scope, c.targets, c.output, /*statistics=*/true));
}
double SparseCategoricalAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> CategoricalAccuracy::Statistics(const MetricContext& c) const {
  return One(ops::CategoricalAccuracy(c.scope, c.targets, c.output, /*statistics=*/true));
}
double CategoricalAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> BinaryAccuracy::Statistics(const MetricContext& c) const {
  return One(ops::BinaryAccuracy(c.scope, c.targets, c.output, threshold, /*statistics=*/true));
}
double BinaryAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> TopKCategoricalAccuracy::Statistics(const MetricContext& c) const {
  return One(ops::TopKStatistics(c.scope, c.targets, c.output, k, /*sparse=*/false));
}
double TopKCategoricalAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> SparseTopKCategoricalAccuracy::Statistics(const MetricContext& c) const {
  return One(ops::TopKStatistics(c.scope, c.targets, c.output, k, /*sparse=*/true));
}
double SparseTopKCategoricalAccuracy::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> MeanAbsoluteError::Statistics(const MetricContext& c) const {
  return One(ops::MeanErrorStatistics(c.scope, c.targets, c.output, "absolute"));
}
double MeanAbsoluteError::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> MeanSquaredError::Statistics(const MetricContext& c) const {
  return One(ops::MeanErrorStatistics(c.scope, c.targets, c.output, "squared"));
}
double MeanSquaredError::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> MeanAbsolutePercentageError::Statistics(const MetricContext& c) const {
  return One(ops::MeanErrorStatistics(c.scope, c.targets, c.output, "absolute_percentage"));
}
double MeanAbsolutePercentageError::Result(std::span<const double> sums, int64_t) const { return MeanOf(sums); }

absl::StatusOr<std::vector<Output>> RootMeanSquaredError::Statistics(const MetricContext& c) const {
  return One(ops::MeanErrorStatistics(c.scope, c.targets, c.output, "squared"));
}
double RootMeanSquaredError::Result(std::span<const double> sums, int64_t) const { return std::sqrt(MeanOf(sums)); }

absl::StatusOr<std::vector<Output>> Precision::Statistics(const MetricContext& c) const {
  return One(ops::ConfusionStatistics(c.scope, c.targets, c.output, ThresholdTensor({thresholds}), false));
}
double Precision::Result(std::span<const double> sums, int64_t) const {
  const Counts c{sums};
  return DivNoNan(c.tp(0), c.tp(0) + c.fp(0));
}

absl::StatusOr<std::vector<Output>> Recall::Statistics(const MetricContext& c) const {
  return One(ops::ConfusionStatistics(c.scope, c.targets, c.output, ThresholdTensor({thresholds}), false));
}
double Recall::Result(std::span<const double> sums, int64_t) const {
  const Counts c{sums};
  return DivNoNan(c.tp(0), c.tp(0) + c.fn(0));
}

absl::StatusOr<std::vector<Output>> AUC::Statistics(const MetricContext& c) const {
  return One(ops::ConfusionStatistics(c.scope, c.targets, c.output, ThresholdTensor(AucThresholds(num_thresholds)),
                                      /*soft_labels=*/true));
}
double AUC::Result(std::span<const double> sums, int64_t) const {
  const Counts c{sums};
  if (curve == AucCurve::kPR && summation_method == AucSummation::kInterpolation) {
    return InterpolatedPrAuc(c, num_thresholds);
  }
  return RiemannAuc(c, num_thresholds, curve, summation_method);
}

MetricDirection DirectionOf(const MetricConfig& config) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kDirection; }, config);
}

}  // namespace metrics

namespace {

// One registration per metric class: Keras 3's short aliases
// (keras/src/metrics/__init__.py ALL_OBJECTS_DICT); the snake_case alias and
// the class name are derived, except for "accuracy", which Keras's compile
// resolves itself.
struct MetricEntry {
  metrics::MetricConfig config;
  std::vector<std::string> aliases;
  bool derive_names = true;
};

std::vector<MetricInfo> MakeMetrics() {
  using namespace metrics;  // NOLINT: the table reads as Keras's list
  const std::vector<MetricEntry> entries = {
      {FitsLossAccuracy{}, {"accuracy", "acc"}, /*derive_names=*/false},
      {SparseCategoricalAccuracy{}, {}},
      {CategoricalAccuracy{}, {}},
      {BinaryAccuracy{}, {}},
      {TopKCategoricalAccuracy{}, {}},
      {SparseTopKCategoricalAccuracy{}, {}},
      {MeanAbsoluteError{}, {"mae", "MAE"}},
      {MeanSquaredError{}, {"mse", "MSE"}},
      {MeanAbsolutePercentageError{}, {"mape", "MAPE"}},
      {RootMeanSquaredError{}, {}},
      {Precision{}, {}},
      {Recall{}, {}},
      {AUC{}, {}},
  };
  std::vector<MetricInfo> infos;
  for (const MetricEntry& e : entries) {
    MetricInfo info{.config = e.config};
    if (e.derive_names) {
      info.names.push_back(std::visit([](const auto& m) { return KerasAlias<std::decay_t<decltype(m)>>(); }, e.config));
      info.names.push_back(VariantName(e.config));  // Keras also takes the class name
    }
    info.names.insert(info.names.end(), e.aliases.begin(), e.aliases.end());
    infos.push_back(std::move(info));
  }
  return infos;
}

}  // namespace

const std::vector<MetricInfo>& Metrics() {
  static const auto* metrics = new std::vector<MetricInfo>(MakeMetrics());
  return *metrics;
}

std::vector<std::string> MetricNames() {
  std::vector<std::string> names;
  for (const MetricInfo& info : Metrics()) names.insert(names.end(), info.names.begin(), info.names.end());
  return names;
}

absl::StatusOr<const MetricInfo*> FindMetric(std::string_view name) {
  for (const MetricInfo& info : Metrics()) {
    if (std::find(info.names.begin(), info.names.end(), name) != info.names.end()) return &info;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown metric ", QuoteUserText(name),
                                                 "; valid names: ", absl::StrJoin(MetricNames(), ", ")));
}

absl::StatusOr<metrics::MetricConfig> ResolveMetric(const Metric& metric) {
  if (!metric.config) {
    GF_ASSIGN_OR_RETURN(const MetricInfo* info, FindMetric(metric.name));
    return info->config;
  }
  absl::Status valid = std::visit([](const auto& m) { return ValidateFields(m); }, *metric.config);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", QuoteUserText(metric.name), ": ", valid.message()));
  }
  return *metric.config;
}

absl::StatusOr<CompiledMetric> BuildMetric(const Metric& metric, const MetricContext& context) {
  GF_ASSIGN_OR_RETURN(metrics::MetricConfig config, ResolveMetric(metric));
  GF_ASSIGN_OR_RETURN(std::vector<Output> statistics,
                      std::visit([&](const auto& m) { return m.Statistics(context); }, config));
  return CompiledMetric{metric.name, std::move(config), std::move(statistics)};
}

absl::StatusOr<std::vector<CompiledMetric>> BuildMetrics(const std::vector<Metric>& list,
                                                         const MetricContext& context) {
  const std::vector<std::string> names = ReportedMetricNames(list);
  std::vector<CompiledMetric> built;
  for (size_t i = 0; i < list.size(); ++i) {
    absl::StatusOr<CompiledMetric> m = BuildMetric(list[i], context);
    if (!m.ok()) return absl::InvalidArgumentError(absl::StrCat("Compile: ", m.status().message()));
    m->name = names[i];
    built.push_back(*std::move(m));
  }
  return built;
}

std::vector<std::string> ReportedMetricNames(const std::vector<Metric>& list) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const Metric& metric : list) {
    const int n = seen[metric.name]++;
    names.push_back(n > 0 ? absl::StrCat(metric.name, "_", n) : metric.name);
  }
  return names;
}

namespace {

// The index of the reported name that `name` means: the name itself, else
// the longest one that `name` ends in after a "_" (a multi-output model
// reports "<output>_<metric>"); -1 for none.
int ReportedAs(const std::vector<std::string>& reported, std::string_view name) {
  int found = -1;
  for (size_t i = 0; i < reported.size(); ++i) {
    if (reported[i] == name) return static_cast<int>(i);
    const bool suffix = name.ends_with(absl::StrCat("_", reported[i]));
    if (suffix && (found < 0 || reported[i].size() > reported[found].size())) found = static_cast<int>(i);
  }
  return found;
}

}  // namespace

absl::StatusOr<MetricDirection> MonitorDirection(const std::vector<Metric>& metrics, std::string_view monitor) {
  std::string_view name = monitor;
  if (name.starts_with("val_")) name.remove_prefix(4);
  if (name == "loss" || name.ends_with("_loss")) return MetricDirection::kDown;
  const std::vector<std::string> reported = ReportedMetricNames(metrics);
  if (const int i = ReportedAs(reported, name); i >= 0) {
    GF_ASSIGN_OR_RETURN(const metrics::MetricConfig config, ResolveMetric(metrics[i]));
    return metrics::DirectionOf(config);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "mode \"auto\" cannot tell whether monitor ", QuoteUserText(monitor),
      " should be maximized or minimized: it is neither the loss nor one of the model's metrics (",
      reported.empty() ? "none" : absl::StrJoin(reported, ", "),
      "); pass mode \"max\" to keep the highest value or mode \"min\" to keep the lowest"));
}

size_t MetricSums::Add(const CompiledMetric& metric, const std::vector<Tensor>& fetched, size_t first) {
  size_t k = 0;
  for (size_t i = 0; i < metric.statistics.size(); ++i) {
    const Tensor& t = fetched[first + i];
    if (sums_.size() < k + t.num_elements()) sums_.resize(k + t.num_elements(), 0.0);
    for (int64_t j = 0; j < t.num_elements(); ++j) sums_[k++] += t.data<float>()[j];
  }
  return first + metric.statistics.size();
}

double MetricSums::Result(const CompiledMetric& metric, int64_t samples) const {
  return std::visit([&](const auto& m) { return m.Result(sums_, samples); }, metric.config);
}

}  // namespace gradflow::nn
