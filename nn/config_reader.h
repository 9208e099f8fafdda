#ifndef GRADFLOW_NN_CONFIG_READER_H_
#define GRADFLOW_NN_CONFIG_READER_H_

// Reading one JSON object of a model config (nn/model_config.h) field by
// field, for untrusted files: every problem becomes an InvalidArgument naming
// the place ("model config: layers[2] (Dense).config: 'units' ..."), never an
// exception or a crash. A layer's reader (its FromConfig, beside its
// Config() writer) uses it like this:
//
//   static LayerPtr FromConfig(ConfigReader& r) {
//     const double rate = r.NumberIn("rate", std::nullopt, 0, 1, /*hi_open=*/true);
//     return r.ok() ? Dropout(rate) : nullptr;
//   }
//
// The first problem is recorded in the shared status; later reads return
// their fallback quietly, as graph builders do. A fallback of std::nullopt
// makes the field required.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "optimizers/constraints.h"
#include "optimizers/regularizers.h"

namespace gradflow::nn {

// A JSON value for an error message: short, and never throwing on bad UTF-8.
std::string DescribeJson(const nlohmann::json& value);

class ConfigReader {
 public:
  using Json = nlohmann::json;
  // The longest list a config may hold (metrics, schedule boundaries, axes).
  static constexpr size_t kMaxListLength = 100000;

  ConfigReader(const Json& object, std::string where, absl::Status& status);

  bool ok() const { return status_.ok(); }
  const std::string& where() const { return where_; }
  // A reader of the object under `key` (which must be present), sharing
  // this reader's status.
  ConfigReader Sub(std::string_view key);
  void Fail(const std::string& message);
  void FailField(std::string_view key, const std::string& message);

  // The field's value, or nullptr when absent (or when the reader failed).
  const Json* Find(std::string_view key);
  const Json* Required(std::string_view key);
  // Absent or null.
  bool IsNull(std::string_view key);

  std::string String(std::string_view key, std::optional<std::string> fallback);
  bool Bool(std::string_view key, std::optional<bool> fallback);
  // An integer in [lo, hi]; 300.0 or 1e12 are not integers.
  int64_t Integer(std::string_view key, std::optional<int64_t> fallback, int64_t lo, int64_t hi);
  uint64_t Unsigned(std::string_view key, std::optional<uint64_t> fallback);
  // A finite number.
  double Number(std::string_view key, std::optional<double> fallback);
  // A finite number in [lo, hi] (or [lo, hi) with hi_open).
  double NumberIn(std::string_view key, std::optional<double> fallback, double lo, double hi,
                  bool hi_open = false);
  template <typename T>
  std::vector<T> List(std::string_view key, std::optional<std::vector<T>> fallback);

  // Names checked against their registries, so a bad name fails when the
  // file is read rather than when the model is compiled.
  std::string InitializerName(std::string_view key, std::optional<std::string> fallback);
  // An ops::ActivationNames() entry, "linear" or "".
  std::string ActivationName(std::string_view key, std::optional<std::string> fallback);
  // Null or absent: none.
  std::optional<optimizers::Regularizer> Regularizer(std::string_view key);
  std::optional<optimizers::MaxNorm> Constraint(std::string_view key);

  // Marks keys read elsewhere (e.g. by LayerFromJson) as known.
  void Accept(std::initializer_list<const char*> keys);
  // Unknown keys are errors: a typo in a hand-edited file should not be
  // silently ignored.
  void Finish();

 private:
  static std::optional<int64_t> AsInteger(const Json& value, int64_t lo, int64_t hi);
  static const Json& Null();

  const Json& object_;
  std::string where_;
  absl::Status& status_;
  std::set<std::string> used_;
};

// The writers matching ConfigReader::Regularizer / Constraint (null for none).
nlohmann::json RegularizerToJson(const std::optional<optimizers::Regularizer>& regularizer);
nlohmann::json ConstraintToJson(const std::optional<optimizers::MaxNorm>& constraint);

template <typename T>
std::vector<T> ConfigReader::List(std::string_view key, std::optional<std::vector<T>> fallback) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or(std::vector<T>{});
  std::vector<T> out;
  if (!value->is_array() || value->size() > kMaxListLength) {
    FailField(key, "must be an array of at most " + std::to_string(kMaxListLength) +
                       " elements, got " + DescribeJson(*value));
    return out;
  }
  for (const Json& element : *value) {
    bool good;
    if constexpr (std::is_same_v<T, std::string>) {
      good = element.is_string();
      if (good) out.push_back(element.get<std::string>());
    } else if constexpr (std::is_same_v<T, double>) {
      good = element.is_number() && std::isfinite(element.get<double>());
      if (good) out.push_back(element.get<double>());
    } else {
      std::optional<int64_t> v =
          AsInteger(element, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
      good = v.has_value();
      if (good) out.push_back(static_cast<T>(*v));
    }
    if (!good) {
      FailField(key, "has an element of the wrong type: " + DescribeJson(element));
      return {};
    }
  }
  return out;
}

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_CONFIG_READER_H_
