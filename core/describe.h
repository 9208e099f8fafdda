#ifndef GRADFLOW_CORE_DESCRIBE_H_
#define GRADFLOW_CORE_DESCRIBE_H_

// Described components: a struct that names itself and lists its fields
// once, so its name lookups, config readers and writers, error messages that
// list the valid names and its range checks are all derived (optimizers,
// schedules). A described struct declares
//
//   static constexpr const char* kName = "Adam";           // its Keras class name
//   template <typename Self, typename F>
//   static void Fields(Self& self, F&& f) {                 // every field, in order
//     f(Field::InRange("beta_1", 0, 1), self.beta_1);
//     ...
//   }
//
// and keeps its Keras defaults as default member initializers: a
// default-constructed struct is the component with Keras's defaults.
// Initializers, regularizers and constraints are also known by their Keras
// snake_case alias ("he_normal"), derived from kName as Keras derives it
// (KerasAlias); a struct whose alias Keras spells otherwise declares
// `static constexpr const char* kAlias = "l1_l2";`.

#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow {

// Another name a config may give an enum field's value `index` (Keras's
// VarianceScaling reads distribution "normal" as "truncated_normal"); writers
// use the choices' own names.
struct ChoiceAlias {
  const char* name;
  size_t index;
};

// One field's name and the range its value must lie in (numbers), or the
// names of an enum field's values (kChoice: value i is choices[i], as configs
// spell it).
struct Field {
  enum class Check { kNone, kRange, kNonNegative, kPositive, kChoice };
  const char* name;
  Check check = Check::kNone;
  double lo = 0, hi = 0;
  bool lo_inclusive = true, hi_inclusive = false;
  std::span<const char* const> choices = {};
  std::span<const ChoiceAlias> aliases = {};  // kChoice: other names readers accept
  // The symbol a formula gives the field ("s" in lr0 / (1 + t/s)^c), shown
  // in messages beside the name.
  const char* symbol = nullptr;
  // false: a gradflow option Keras 3 has no key for (tf.keras 2.x's Nadam
  // schedule): Keras files leave it out, so there it must hold its default.
  bool in_keras = true;

  static Field Any(const char* name) { return {name}; }
  // lo <= v < hi (or <= hi, or lo < v with lo_inclusive false).
  static Field InRange(const char* name, double lo, double hi, bool hi_inclusive = false,
                       bool lo_inclusive = true) {
    return {name, Check::kRange, lo, hi, lo_inclusive, hi_inclusive};
  }
  static Field NonNegative(const char* name) { return {name, Check::kNonNegative}; }  // finite, >= 0
  static Field Positive(const char* name) { return {name, Check::kPositive}; }        // finite, > 0
  // An enum field: its value names, in the enum's order.
  static Field OneOf(const char* name, std::span<const char* const> choices) {
    return {.name = name, .check = Check::kChoice, .choices = choices};
  }
  Field Aliases(std::span<const ChoiceAlias> a) const {
    Field f = *this;
    f.aliases = a;
    return f;
  }
  Field Symbol(const char* s) const {
    Field f = *this;
    f.symbol = s;
    return f;
  }
  Field NotInKeras() const {
    Field f = *this;
    f.in_keras = false;
    return f;
  }

  // OK, or "<owner> <name> must be in [0, 1), got 1.5".
  absl::Status Validate(std::string_view owner, double v) const {
    auto error = [&](const std::string& want) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(owner), " ", name,
                                                     symbol ? absl::StrCat(" (", symbol, ")") : "",
                                                     " must be ", want, ", got ", v));
    };
    switch (check) {
      case Check::kNone: return absl::OkStatus();
      case Check::kNonNegative: return v >= 0 && std::isfinite(v) ? absl::OkStatus() : error(">= 0");
      case Check::kPositive: return v > 0 && std::isfinite(v) ? absl::OkStatus() : error("> 0");
      case Check::kChoice:
        return v >= 0 && v < double(choices.size()) ? absl::OkStatus()
                                                     : error(absl::StrCat("one of ", absl::StrJoin(choices, ", ")));
      case Check::kRange: break;
    }
    const bool above = lo_inclusive ? v >= lo : v > lo;
    const bool below = hi_inclusive ? v <= hi : v < hi;
    if (above && below) return absl::OkStatus();
    return error(absl::StrCat("in ", lo_inclusive ? "[" : "(", lo, ", ", hi, hi_inclusive ? "]" : ")"));
  }
};

// A key Keras writes in a described struct's config that gradflow has no
// field for, harmless at its default (null): readers accept it when null and
// refuse any other value with `why`; writers leave it out, so older Keras
// versions, which lack the key, still load the file. A struct lists them as
// `static constexpr std::span<const NullOnlyKey> kNullOnlyKeys`.
struct NullOnlyKey {
  const char* key;
  const char* why;
};

// f(const Field&, value&) for every field of a described struct (const or not).
template <typename T, typename F>
void VisitFields(T& value, F&& f) {
  std::remove_const_t<T>::Fields(value, f);
}

// Every numeric field's range, then the struct's own cross-field check
// (`absl::Status Check() const`) if it has one. Messages start with `owner`.
template <typename T>
absl::Status ValidateFields(const T& value, std::string_view owner = T::kName) {
  absl::Status status;
  VisitFields(value, [&](const Field& field, const auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr ((std::is_arithmetic_v<V> && !std::is_same_v<V, bool>) || std::is_enum_v<V>) {
      if (status.ok()) status = field.Validate(owner, static_cast<double>(v));
    }
  });
  if constexpr (requires { value.Check(); }) {
    if (status.ok()) status = value.Check();
  }
  return status;
}

// The kName of the alternative a variant of described structs holds.
template <typename Variant>
std::string VariantName(const Variant& v) {
  return std::visit([](const auto& alternative) { return std::string(alternative.kName); }, v);
}

// Every alternative's kName, in variant order.
template <typename Variant>
std::vector<std::string> VariantNames() {
  std::vector<std::string> names;
  [&]<size_t... I>(std::index_sequence<I...>) {
    (names.push_back(std::variant_alternative_t<I, Variant>::kName), ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return names;
}

// "SGD, Adagrad, ..." for messages that list the valid names.
template <typename Variant>
std::string VariantNamesList() {
  return absl::StrJoin(VariantNames<Variant>(), ", ");
}

// The alternative called `name`, with its defaults; nullopt if none is.
template <typename Variant>
std::optional<Variant> VariantFromName(std::string_view name) {
  std::optional<Variant> found;
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((name == std::variant_alternative_t<I, Variant>::kName ? (void)(found = Variant(std::in_place_index<I>))
                                                             : (void)0),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return found;
}

// Keras's to_snake_case: "HeNormal" -> "he_normal", "MaxNorm" -> "max_norm"
// (an underscore before each capital that starts a lowercase run or follows
// a lowercase letter).
inline std::string KerasSnakeCase(std::string_view name) {
  std::string out;
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool starts_word = i > 0 && upper(c) && i + 1 < name.size() && lower(name[i + 1]);
    if (starts_word || (i > 0 && upper(c) && lower(name[i - 1]))) out += '_';
    out += upper(c) ? char(c - 'A' + 'a') : c;
  }
  return out;
}

// T's Keras alias: its declared kAlias, else KerasSnakeCase(kName).
template <typename T>
std::string KerasAlias() {
  if constexpr (requires { T::kAlias; }) {
    return T::kAlias;
  } else {
    return KerasSnakeCase(T::kName);
  }
}

// Every name VariantFromKerasName accepts, in variant order: each
// alternative's kName, then its alias.
template <typename Variant>
std::vector<std::string> VariantKerasNames() {
  std::vector<std::string> names;
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((names.push_back(std::variant_alternative_t<I, Variant>::kName),
      names.push_back(KerasAlias<std::variant_alternative_t<I, Variant>>())),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return names;
}

// The alternative whose kName or Keras alias is `name`, with its defaults
// (Keras accepts both: "HeNormal" and "he_normal"); nullopt if none is.
template <typename Variant>
std::optional<Variant> VariantFromKerasName(std::string_view name) {
  std::optional<Variant> found;
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((name == std::variant_alternative_t<I, Variant>::kName ||
              name == KerasAlias<std::variant_alternative_t<I, Variant>>()
          ? (void)(found = Variant(std::in_place_index<I>))
          : (void)0),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return found;
}

// One default-constructed value of every alternative, in variant order (for
// tests that must cover every optimizer or schedule).
template <typename Variant>
std::vector<Variant> EveryAlternative() {
  std::vector<Variant> all;
  [&]<size_t... I>(std::index_sequence<I...>) {
    (all.push_back(Variant(std::in_place_index<I>)), ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return all;
}

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DESCRIBE_H_
