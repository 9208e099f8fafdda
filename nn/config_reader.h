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
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "core/describe.h"
#include "core/initializers.h"
#include "core/shape.h"
#include "nn/layers.h"
#include "optimizers/constraints.h"
#include "optimizers/regularizers.h"

namespace gradflow::nn {

// A JSON value for an error message: short, and never throwing on bad UTF-8.
std::string DescribeJson(const nlohmann::json& value);
// "'x' is not known; known: a, b".
std::string UnknownNameMessage(std::string_view name, const std::vector<std::string>& known);

class ConfigReader {
 public:
  using Json = nlohmann::json;
  // The longest list a config may hold (metrics, schedule boundaries, axes).
  static constexpr size_t kMaxListLength = 100000;

  // `notes` (optional) collects what was read but changes nothing in
  // gradflow (Note below): Keras fields such as BatchNormalization's `fused`.
  ConfigReader(const Json& object, std::string where, absl::Status& status,
               std::vector<std::string>* notes = nullptr);

  bool ok() const { return status_.ok(); }
  const std::string& where() const { return where_; }
  // A reader of the object under `key` (which must be present), sharing
  // this reader's status.
  ConfigReader Sub(std::string_view key);
  // A reader of another object (which must outlive it), sharing this
  // reader's status and notes.
  ConfigReader Over(const Json& object, std::string where) { return ConfigReader(object, std::move(where), status_, notes_); }
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

  // One of `choices` or `aliases` (an enum field, core/describe.h): its index.
  size_t Choice(std::string_view key, std::span<const char* const> choices, size_t fallback,
                std::span<const ChoiceAlias> aliases = {});

  // Names checked against their registries, so a bad name fails when the
  // file is read rather than when the model is compiled.
  // An activation (nn/layers.h ActivationOption): an ops::ActivationNames()
  // entry, "linear" or "", or an activation layer object as Keras 3 writes
  // one ({"module": "keras.layers", "class_name": "LeakyReLU", "config": {...}},
  // read by LayerFromJson, so every registered layer type is known).
  ActivationOption Activation(std::string_view key, std::optional<std::string> fallback);
  // Keras's object form ({"class_name": "HeNormal", "config": {...}}) or a
  // plain name ("he_normal" or "HeNormal"), fields range-checked; absent
  // (keep the default) or bad: nullopt.
  std::optional<gradflow::Initializer> Initializer(std::string_view key);
  // The same forms, or the {"l1": .., "l2": ..} / {"max_value": .., "axis":
  // ..} objects of files written before they were described; null or absent:
  // none.
  std::optional<optimizers::Regularizer> Regularizer(std::string_view key);
  std::optional<optimizers::Constraint> Constraint(std::string_view key);

  // Keras fields gradflow has no counterpart for. Unsupported: absent, or
  // holding `keras_default` (what Keras does without it), else an error
  // saying `why` ("gradflow has no batch renormalization"). Ignored: any
  // value, noted (when not `keras_default`) with `why` ("gradflow draws its
  // own dropout masks"), for fields that change nothing numerically.
  void Unsupported(std::string_view key, const Json& keras_default, const std::string& why);
  void Ignored(std::string_view key, const Json& keras_default, const std::string& why);
  void Note(const std::string& message);

  // A layer's sample shape: "input_shape" (gradflow), or Keras's
  // "batch_shape" / "batch_input_shape" whose first (batch) entry is null;
  // bounded by nn/model_config.h's limits. nullopt when absent.
  std::optional<Shape> InputShape();
  // Keras's "dtype" of a layer or model: a policy name or a DTypePolicy
  // object naming one (nn/dtype_policy.h). Returns the name, "" when absent
  // (a layer then follows its model's policy; Keras writes every layer's).
  std::string KerasDTypePolicy();
  // Keras's "dtype" where gradflow computes in float32 only (metrics,
  // inputs): "float32" or a DTypePolicy naming it; anything else fails.
  void KerasDType();

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
  std::vector<std::string>* notes_;
  std::set<std::string> used_;
};

// The writers matching ConfigReader::Initializer / Regularizer / Constraint:
// Keras 3's object form (null for none).
nlohmann::json InitializerToJson(const Initializer& init);
nlohmann::json RegularizerToJson(const std::optional<optimizers::Regularizer>& regularizer);
nlohmann::json ConstraintToJson(const std::optional<optimizers::Constraint>& constraint);

// ---------------------------------------------------------------- described structs
// The one reader and writer of described structs (core/describe.h):
// optimizers, schedules, initializers, regularizers, constraints.

// A field's value as JSON: enums by their Field::OneOf name, unset optionals
// as null.
template <typename V>
nlohmann::json FieldToJson(const Field& field, const V& value) {
  if constexpr (std::is_enum_v<V>) {
    const size_t i = static_cast<size_t>(value);
    return i < field.choices.size() ? nlohmann::json(field.choices[i]) : nlohmann::json(i);
  } else if constexpr (requires { value.has_value(); }) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  } else {
    return value;
  }
}

// Reads r[field.name] into `value`; absent keeps its value (the default).
template <typename V>
void ReadField(ConfigReader& r, const Field& field, V& value) {
  if constexpr (std::is_same_v<V, bool>) {
    value = r.Bool(field.name, value);
  } else if constexpr (std::is_same_v<V, double>) {
    value = r.Number(field.name, value);
  } else if constexpr (std::is_integral_v<V>) {
    static_assert(std::is_signed_v<V>, "Integer reads int64_t ranges");
    value = static_cast<V>(r.Integer(field.name, value, std::numeric_limits<V>::min(), std::numeric_limits<V>::max()));
  } else if constexpr (std::is_enum_v<V>) {
    value = static_cast<V>(r.Choice(field.name, field.choices, static_cast<size_t>(value), field.aliases));
  } else if constexpr (std::is_same_v<V, std::optional<uint64_t>>) {
    const nlohmann::json* given = r.Find(field.name);
    if (given != nullptr) value = given->is_null() ? std::nullopt : std::optional(r.Unsigned(field.name, std::nullopt));
  } else if constexpr (std::is_same_v<V, std::optional<double>>) {
    const nlohmann::json* given = r.Find(field.name);
    if (given != nullptr) value = given->is_null() ? std::nullopt : std::optional(r.Number(field.name, std::nullopt));
  } else {
    value = r.List<typename V::value_type>(field.name, value);
  }
}

// {"class_name": kName, "config": {every field}}, with Keras 3's "module"
// and "registered_name" when `module` is given.
template <typename Variant>
nlohmann::json DescribedToJson(const Variant& value, const char* module = nullptr) {
  nlohmann::json config = nlohmann::json::object();
  std::visit([&](const auto& alternative) {
    VisitFields(alternative, [&](const Field& field, const auto& v) { config[field.name] = FieldToJson(field, v); });
  }, value);
  nlohmann::json out = {{"class_name", VariantName(value)}, {"config", std::move(config)}};
  if (module != nullptr) {
    out["module"] = module;
    out["registered_name"] = nullptr;
  }
  return out;
}

// How a family of described structs may appear in a config.
struct DescribedForm {
  bool keras_names = false;           // a plain name, or a class_name, may be a Keras alias
  std::optional<size_t> legacy;       // an object without "class_name" is this alternative's config
  bool validate = false;              // range-check the fields (ValidateFields)
};

// The alternative r[key] names, its fields read from "config" (absent
// fields keep their Keras defaults); nullopt (and r failed) if it is
// missing or bad.
template <typename Variant>
std::optional<Variant> ReadDescribed(ConfigReader& r, std::string_view key, const DescribedForm& form);

namespace config_reader_internal {

// The alternative of that name, or nullopt and r failed naming the valid names.
template <typename Variant>
std::optional<Variant> DescribedByName(ConfigReader& r, std::string_view key, const std::string& name,
                                       const DescribedForm& form) {
  std::optional<Variant> found = form.keras_names ? VariantFromKerasName<Variant>(name) : VariantFromName<Variant>(name);
  if (!found && r.ok()) {
    const std::vector<std::string> names = form.keras_names ? VariantKerasNames<Variant>() : VariantNames<Variant>();
    r.FailField(key, UnknownNameMessage(name, names));
  }
  return found;
}

template <typename Variant>
void ReadDescribedFields(ConfigReader& fields, Variant& value, const DescribedForm& form) {
  std::visit([&](auto& alternative) {
    VisitFields(alternative, [&](const Field& field, auto& v) { ReadField(fields, field, v); });
    if constexpr (requires { alternative.kNullOnlyKeys; }) {
      for (const NullOnlyKey& key : alternative.kNullOnlyKeys) fields.Unsupported(key.key, nullptr, key.why);
    }
    if (form.validate && fields.ok()) {
      absl::Status valid = ValidateFields(alternative);
      if (!valid.ok()) fields.Fail(std::string(valid.message()));
    }
  }, value);
  fields.Finish();
}

template <typename Variant>
Variant DefaultAlternative(size_t index) {
  return EveryAlternative<Variant>()[index];
}

}  // namespace config_reader_internal

template <typename Variant>
std::optional<Variant> ReadDescribed(ConfigReader& r, std::string_view key, const DescribedForm& form) {
  namespace internal = config_reader_internal;
  const nlohmann::json* given = r.Required(key);
  if (given == nullptr) return std::nullopt;
  if (given->is_string() && form.keras_names) {
    // A name means Keras's defaults, which are valid.
    std::optional<Variant> named = internal::DescribedByName<Variant>(r, key, given->get<std::string>(), form);
    return r.ok() ? named : std::nullopt;
  }
  ConfigReader outer = r.Sub(key);
  std::optional<Variant> result;
  if (form.legacy && given->is_object() && !given->contains("class_name")) {
    result = internal::DefaultAlternative<Variant>(*form.legacy);
    internal::ReadDescribedFields(outer, *result, form);
    return r.ok() ? result : std::nullopt;
  }
  const std::string class_name = outer.String("class_name", std::nullopt);
  if (outer.ok()) result = internal::DescribedByName<Variant>(outer, "class_name", class_name, form);
  if (result && !outer.IsNull("config")) {
    ConfigReader fields = outer.Sub("config");
    internal::ReadDescribedFields(fields, *result, form);
  }
  outer.Accept({"module", "registered_name"});  // Keras 3 writes them; their values do not matter here
  outer.Finish();
  return r.ok() ? result : std::nullopt;
}

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
