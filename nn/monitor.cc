#include "nn/monitor.h"

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "nn/metrics.h"
#include "nn/model.h"

namespace gradflow::nn {

absl::Status CheckMonitorMode(const char* callback, const std::string& mode) {
  if (mode == "auto" || mode == "min" || mode == "max") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(callback, ": mode must be \"auto\", \"min\" or \"max\", got \"", mode, "\""));
}

absl::StatusOr<bool> MonitorMaximizes(const char* callback, const std::string& mode, const std::string& monitor,
                                      const CompileOptions* compiled) {
  GF_RETURN_IF_ERROR(CheckMonitorMode(callback, mode));
  if (mode != "auto") return mode == "max";
  const std::vector<Metric> none;
  absl::StatusOr<MetricDirection> direction = MonitorDirection(compiled ? compiled->metrics : none, monitor);
  if (!direction.ok()) return absl::InvalidArgumentError(absl::StrCat(callback, ": ", direction.status().message()));
  return *direction == MetricDirection::kUp;
}

absl::StatusOr<double> MonitoredValue(const char* callback, const std::string& monitor, const Logs& logs) {
  auto it = logs.find(monitor);
  if (it != logs.end()) return it->second;
  return absl::InvalidArgumentError(absl::StrCat(callback, ": the logs have no '", monitor,
                                                 "' (available: ", LogNames(logs),
                                                 "); validation metrics need validation_data or validation_split"));
}

std::string LogNames(const Logs& logs) {
  std::string names;
  for (const auto& [name, value] : logs) absl::StrAppend(&names, names.empty() ? "" : ", ", name);
  return names;
}

}  // namespace gradflow::nn
