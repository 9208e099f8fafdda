#include "nn/monitor.h"

#include "absl/strings/str_cat.h"

namespace gradflow::nn {

absl::StatusOr<bool> MonitorMaximizes(const char* callback, const std::string& mode,
                                      const std::string& monitor) {
  if (mode == "max") return true;
  if (mode == "min") return false;
  if (mode == "auto") {
    return monitor.find("acc") != std::string::npos || monitor.find("auc") != std::string::npos;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(callback, ": mode must be \"auto\", \"min\" or \"max\", got \"", mode, "\""));
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
