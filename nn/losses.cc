#include "nn/losses.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "ops/losses.h"
#include "ops/metrics.h"

namespace gradflow::nn {
namespace {

// Each entry is one loss: adding a loss is one entry here (plus its op in
// ops/losses.cc).
std::vector<LossInfo> MakeLosses() {
  return {
      {.names = {"sparse_categorical_crossentropy"},
       .class_index_targets = true,
       .build = [](const Scope& s, Output labels, Output output, Output logits) {
         return logits.valid() ? ops::SparseCategoricalCrossentropy(s, labels, logits, /*from_logits=*/true)
                               : ops::SparseCategoricalCrossentropy(s, labels, output, /*from_logits=*/false);
       },
       .accuracy = "sparse_categorical_accuracy"},
      {.names = {"categorical_crossentropy"},
       .build = [](const Scope& s, Output onehot, Output output, Output logits) {
         return logits.valid() ? ops::CategoricalCrossentropy(s, onehot, logits, /*from_logits=*/true)
                               : ops::CategoricalCrossentropy(s, onehot, output, /*from_logits=*/false);
       },
       .accuracy = "categorical_accuracy"},
      // From probabilities, as Keras's string "binary_crossentropy" (a
      // sigmoid output is not turned back into logits).
      {.names = {"binary_crossentropy"},
       .build = [](const Scope& s, Output targets, Output output, Output) {
         return ops::BinaryCrossentropy(s, targets, output, /*from_logits=*/false);
       },
       .accuracy = "binary_accuracy"},
      {.names = {"mean_squared_error", "mse"},
       .build = [](const Scope& s, Output targets, Output output, Output) {
         return ops::MeanSquaredError(s, targets, output);
       },
       .accuracy = "categorical_accuracy"},
  };
}

// Each entry is one metric.
std::vector<MetricInfo> MakeMetrics() {
  return {
      // Keras's "accuracy": the accuracy that fits the loss.
      {.names = {"accuracy", "acc"},
       .build = [](const Scope& s, Output targets, Output output, const LossInfo& loss) -> Output {
         absl::StatusOr<const MetricInfo*> metric = FindMetric(loss.accuracy);
         return metric.ok() ? (*metric)->build(s, targets, output, loss) : Output{};
       }},
      {.names = {"sparse_categorical_accuracy"},
       .build = [](const Scope& s, Output labels, Output output, const LossInfo&) {
         return ops::SparseCategoricalAccuracy(s, labels, output);
       }},
      {.names = {"categorical_accuracy"},
       .build = [](const Scope& s, Output onehot, Output output, const LossInfo&) {
         return ops::CategoricalAccuracy(s, onehot, output);
       }},
      {.names = {"binary_accuracy"},
       .build = [](const Scope& s, Output targets, Output output, const LossInfo&) {
         return ops::BinaryAccuracy(s, targets, output);
       }},
  };
}

template <typename Info>
std::vector<std::string> AllNames(const std::vector<Info>& entries) {
  std::vector<std::string> names;
  for (const Info& info : entries) names.insert(names.end(), info.names.begin(), info.names.end());
  return names;
}

template <typename Info>
absl::StatusOr<const Info*> FindByName(const std::vector<Info>& entries, std::string_view name,
                                       const char* what) {
  for (const Info& info : entries) {
    if (std::find(info.names.begin(), info.names.end(), name) != info.names.end()) return &info;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", what, " ", QuoteUserText(name), "; valid names: ",
                                                 absl::StrJoin(AllNames(entries), ", ")));
}

}  // namespace

const std::vector<LossInfo>& Losses() {
  static const auto* losses = new std::vector<LossInfo>(MakeLosses());
  return *losses;
}

const std::vector<MetricInfo>& Metrics() {
  static const auto* metrics = new std::vector<MetricInfo>(MakeMetrics());
  return *metrics;
}

absl::StatusOr<const LossInfo*> FindLoss(std::string_view name) { return FindByName(Losses(), name, "loss"); }
absl::StatusOr<const MetricInfo*> FindMetric(std::string_view name) {
  return FindByName(Metrics(), name, "metric");
}

std::vector<std::string> LossNames() { return AllNames(Losses()); }
std::vector<std::string> MetricNames() { return AllNames(Metrics()); }

}  // namespace gradflow::nn
