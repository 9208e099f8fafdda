#include "nn/config_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/initializers.h"
#include "core/status.h"
#include "nn/dtype_policy.h"
#include "nn/layer_registry.h"
#include "nn/model_config.h"
#include "ops/activations.h"

namespace gradflow::nn {

using Json = nlohmann::json;

std::string DescribeJson(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return absl::StrCat(value.type_name(), " ", text);
}

ConfigReader::ConfigReader(const Json& object, std::string where, absl::Status& status,
                           std::vector<std::string>* notes)
    : object_(object), where_(std::move(where)), status_(status), notes_(notes) {
  if (!object_.is_object()) Fail(absl::StrCat("must be a JSON object, got ", DescribeJson(object_)));
}

ConfigReader ConfigReader::Sub(std::string_view key) {
  const Json* value = Find(key);
  return ConfigReader(value ? *value : Null(), absl::StrCat(where_, ".", std::string(key)), status_, notes_);
}

void ConfigReader::Unsupported(std::string_view key, const Json& keras_default, const std::string& why) {
  const Json* value = Find(key);
  if (value != nullptr && *value != keras_default) {
    FailField(key, absl::StrCat("is ", DescribeJson(*value), ": ", why, " (only ", DescribeJson(keras_default),
                                " can be loaded)"));
  }
}

void ConfigReader::Ignored(std::string_view key, const Json& keras_default, const std::string& why) {
  const Json* value = Find(key);
  if (value != nullptr && *value != keras_default) {
    Note(absl::StrCat("'", std::string(key), "' = ", DescribeJson(*value), " ignored: ", why));
  }
}

// The sample shape: "input_shape" (gradflow, tf.keras 1.x), or Keras's
// "batch_shape" / "batch_input_shape", whose first (batch) entry is null.
std::optional<Shape> ConfigReader::InputShape() {
  const char* key = "input_shape";
  bool batched = false;
  for (const char* keras_key : {"batch_shape", "batch_input_shape"}) {
    if (!IsNull(keras_key)) key = keras_key, batched = true;
  }
  if (IsNull(key)) return std::nullopt;
  const Json& given = *Find(key);
  const size_t first = batched ? 1 : 0;
  bool good = given.is_array() && given.size() > first && given.size() - first <= size_t{kMaxConfigInputRank} &&
              (!batched || given[0].is_null());
  std::vector<int64_t> dims;
  int64_t elements = 1;
  for (size_t i = first; good && i < given.size(); ++i) {
    good = given[i].is_number_integer() && given[i].get<int64_t>() >= 1 &&
           given[i].get<int64_t>() <= kMaxConfigInputElements;
    if (good) dims.push_back(given[i].get<int64_t>());
    if (good) elements *= dims.back();
    good = good && elements <= kMaxConfigInputElements;
  }
  if (!good) {
    FailField(key, absl::StrCat("must list ", batched ? "null (the batch) and " : "", "1 to ",
                                       kMaxConfigInputRank, " dimensions >= 1 with at most ", kMaxConfigInputElements,
                                       " elements in all, got ", DescribeJson(given)));
    return std::nullopt;
  }
  return Shape(dims);
}

namespace {

// The policy name of Keras's "dtype": a string, or an object whose
// config.name is one (Keras 3's DTypePolicy, FloatDTypePolicy); "" if neither.
std::string PolicyName(const Json& dtype) {
  if (dtype.is_string()) return dtype.get<std::string>();
  if (dtype.is_object() && dtype.contains("config") && dtype["config"].is_object() &&
      dtype["config"].contains("name") && dtype["config"]["name"].is_string()) {
    return dtype["config"]["name"].get<std::string>();
  }
  return "";
}

}  // namespace

std::string ConfigReader::KerasDTypePolicy() {
  const Json* dtype = Find("dtype");
  if (dtype == nullptr || dtype->is_null()) return "";
  const std::string name = PolicyName(*dtype);
  absl::StatusOr<DTypePolicyInfo> policy = FindDTypePolicy(name, absl::StrCat("is ", DescribeJson(*dtype)));
  if (!policy.ok()) {
    FailField("dtype", std::string(policy.status().message()));
    return "";
  }
  return name;
}

void ConfigReader::KerasDType() {
  const Json* dtype = Find("dtype");
  if (dtype == nullptr || dtype->is_null()) return;
  if (PolicyName(*dtype) != "float32") {
    FailField("dtype", absl::StrCat("is ", DescribeJson(*dtype), "; gradflow computes this in float32, ",
                                    "so only \"float32\" (Keras's default policy) can be loaded"));
  }
}

void ConfigReader::Note(const std::string& message) {
  if (notes_ != nullptr && ok()) notes_->push_back(absl::StrCat(where_, ": ", message));
}

void ConfigReader::Fail(const std::string& message) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat(where_, ": ", message));
}

void ConfigReader::FailField(std::string_view key, const std::string& message) {
  Fail(absl::StrCat("'", std::string(key), "' ", message));
}

const Json* ConfigReader::Find(std::string_view key) {
  used_.insert(std::string(key));
  if (!ok() || !object_.is_object()) return nullptr;
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &*it;
}

const Json* ConfigReader::Required(std::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) FailField(key, "is missing");
  return value;
}

bool ConfigReader::IsNull(std::string_view key) {
  const Json* value = Find(key);
  return value == nullptr || value->is_null();
}

std::string ConfigReader::String(std::string_view key, std::optional<std::string> fallback) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or("");
  if (!value->is_string()) {
    FailField(key, absl::StrCat("must be a string, got ", DescribeJson(*value)));
    return fallback.value_or("");
  }
  return value->get<std::string>();
}

bool ConfigReader::Bool(std::string_view key, std::optional<bool> fallback) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or(false);
  if (!value->is_boolean()) {
    FailField(key, absl::StrCat("must be true or false, got ", DescribeJson(*value)));
    return fallback.value_or(false);
  }
  return value->get<bool>();
}

int64_t ConfigReader::Integer(std::string_view key, std::optional<int64_t> fallback, int64_t lo,
                              int64_t hi) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or(lo);
  std::optional<int64_t> v = AsInteger(*value, lo, hi);
  if (!v) {
    FailField(key, absl::StrCat("must be an integer in [", lo, ", ", hi, "], got ", DescribeJson(*value)));
    return fallback.value_or(lo);
  }
  return *v;
}

uint64_t ConfigReader::Unsigned(std::string_view key, std::optional<uint64_t> fallback) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or(0);
  if (value->is_number_unsigned()) return value->get<uint64_t>();
  if (value->is_number_integer() && value->get<int64_t>() >= 0) return value->get<int64_t>();
  FailField(key, absl::StrCat("must be a non-negative integer, got ", DescribeJson(*value)));
  return fallback.value_or(0);
}

double ConfigReader::Number(std::string_view key, std::optional<double> fallback) {
  const Json* value = fallback ? Find(key) : Required(key);
  if (value == nullptr) return fallback.value_or(0);
  if (!value->is_number() || !std::isfinite(value->get<double>())) {
    FailField(key, absl::StrCat("must be a finite number, got ", DescribeJson(*value)));
    return fallback.value_or(0);
  }
  return value->get<double>();
}

double ConfigReader::NumberIn(std::string_view key, std::optional<double> fallback, double lo,
                              double hi, bool hi_open) {
  double v = Number(key, fallback);
  if (ok() && !(v >= lo && (hi_open ? v < hi : v <= hi))) {
    FailField(key, absl::StrCat("must be in [", lo, ", ", hi, hi_open ? ")" : "]", ", got ", v));
  }
  return v;
}

size_t ConfigReader::Choice(std::string_view key, std::span<const char* const> choices, size_t fallback,
                            std::span<const ChoiceAlias> aliases) {
  const std::string name = String(key, choices[fallback]);
  for (size_t i = 0; i < choices.size(); ++i) {
    if (name == choices[i]) return i;
  }
  for (const ChoiceAlias& alias : aliases) {
    if (name == alias.name && alias.index < choices.size()) return alias.index;
  }
  if (ok()) FailField(key, absl::StrCat("is ", QuoteUserText(name), "; use one of ", absl::StrJoin(choices, ", ")));
  return fallback;
}

std::string UnknownNameMessage(std::string_view name, const std::vector<std::string>& known) {
  return absl::StrCat(QuoteUserText(name), " is not known; known: ", absl::StrJoin(known, ", "));
}

ActivationOption ConfigReader::Activation(std::string_view key, std::optional<std::string> fallback) {
  const Json* given = Find(key);
  if (given != nullptr && given->is_null()) return std::string("linear");  // Keras's activations.get(None)
  if (given != nullptr && given->is_object()) {
    const Json* object = given;
    const std::string class_name = object->contains("class_name") && (*object)["class_name"].is_string()
                                       ? (*object)["class_name"].get<std::string>() : "";
    if (FindLayerType(class_name) == nullptr) {
      FailField(key, absl::StrCat("is a ", QuoteUserText(class_name), " object, a class gradflow does not have; give ",
                                  "an activation name (", absl::StrJoin(ops::ActivationNames(), ", "), ") or an ",
                                  "object of a gradflow layer class such as LeakyReLU, PReLU, ELU or ReLU (",
                                  absl::StrJoin(LayerTypeNames(), ", "), ")"));
      return ActivationOption();
    }
    absl::StatusOr<LayerPtr> layer = LayerFromJson(*object, absl::StrCat(where_, ".", std::string(key)), notes_);
    if (!layer.ok() && status_.ok()) status_ = layer.status();  // its message names the place
    return layer.ok() ? ActivationOption(*std::move(layer)) : ActivationOption();
  }
  std::string name = String(key, std::move(fallback));
  if (!ok() || name.empty() || name == "linear") return name;
  std::vector<std::string> names = ops::ActivationNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    FailField(key, absl::StrCat("is the unknown activation '", name, "'; valid names: ",
                                absl::StrJoin(names, ", ")));
  }
  return name;
}

namespace {

// Keras's module of each family, as Keras 3 writes it beside class_name.
constexpr char kInitializersModule[] = "keras.initializers";
constexpr char kRegularizersModule[] = "keras.regularizers";
constexpr char kConstraintsModule[] = "keras.constraints";

// Before they were described, gradflow wrote a regularizer as the fields of
// an L1L2 and a constraint as those of a MaxNorm, without a class_name.
template <typename Variant, typename Legacy>
DescribedForm ComponentForm() {
  return {.keras_names = true, .legacy = Variant(Legacy{}).index(), .validate = true};
}

}  // namespace

std::optional<gradflow::Initializer> ConfigReader::Initializer(std::string_view key) {
  if (Find(key) == nullptr) return std::nullopt;
  auto read = ReadDescribed<gradflow::Initializer::Variant>(*this, key, {.keras_names = true, .validate = true});
  if (!read) return std::nullopt;
  return gradflow::Initializer(*std::move(read));
}

std::optional<optimizers::Regularizer> ConfigReader::Regularizer(std::string_view key) {
  if (IsNull(key)) return std::nullopt;
  using Described = optimizers::DescribedRegularizer;
  auto read = ReadDescribed<Described>(*this, key, ComponentForm<Described, optimizers::regularizers::L1L2>());
  if (!read) return std::nullopt;
  return optimizers::PenaltyOf(*read);
}

std::optional<optimizers::Constraint> ConfigReader::Constraint(std::string_view key) {
  if (IsNull(key)) return std::nullopt;
  using Described = optimizers::Constraint;
  return ReadDescribed<Described>(*this, key, ComponentForm<Described, optimizers::MaxNorm>());
}

Json InitializerToJson(const Initializer& init) { return DescribedToJson(init.alternative(), kInitializersModule); }

Json RegularizerToJson(const std::optional<optimizers::Regularizer>& regularizer) {
  if (!regularizer) return nullptr;
  return DescribedToJson(optimizers::DescribeRegularizer(*regularizer), kRegularizersModule);
}

Json ConstraintToJson(const std::optional<optimizers::Constraint>& constraint) {
  if (!constraint) return nullptr;
  return DescribedToJson(*constraint, kConstraintsModule);
}

void ConfigReader::Accept(std::initializer_list<const char*> keys) {
  for (const char* k : keys) used_.insert(k);
}

void ConfigReader::Finish() {
  if (!ok() || !object_.is_object()) return;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!used_.count(it.key())) {
      std::vector<std::string> known(used_.begin(), used_.end());
      Fail(absl::StrCat("unknown field '", it.key(), "' (known: ", absl::StrJoin(known, ", "), ")"));
      return;
    }
  }
}

std::optional<int64_t> ConfigReader::AsInteger(const Json& value, int64_t lo, int64_t hi) {
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    if (static_cast<int64_t>(v) < lo || static_cast<int64_t>(v) > hi) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v < lo || v > hi) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

const Json& ConfigReader::Null() {
  static const Json* null = new Json(nullptr);
  return *null;
}

}  // namespace gradflow::nn
