#include "nn/model_config.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/initializers.h"
#include "core/status.h"
#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/normalization.h"
#include "ops/activations.h"

namespace gradflow::nn {
namespace {

using Json = nlohmann::json;

// A JSON value for an error message: short, and never throwing on bad UTF-8.
std::string Describe(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return absl::StrCat(value.type_name(), " ", text);
}

// Reads the fields of one JSON object, recording the first problem in
// `status` (later reads return their fallback quietly, as graph builders do).
// `where` names the object in messages ("layers[2] (Dense).config").
class Reader {
 public:
  Reader(const Json& object, std::string where, absl::Status& status)
      : object_(object), where_(std::move(where)), status_(status) {
    if (!object_.is_object()) Fail(absl::StrCat("must be a JSON object, got ", Describe(object_)));
  }

  bool ok() const { return status_.ok(); }
  const std::string& where() const { return where_; }
  // A reader of the object under `key` (which must be present), sharing this
  // reader's status.
  Reader Sub(std::string_view key) {
    const Json* value = Find(key);
    return Reader(value ? *value : Null(), absl::StrCat(where_, ".", std::string(key)), status_);
  }
  void Fail(const std::string& message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat(where_, ": ", message));
  }
  void FailField(std::string_view key, const std::string& message) {
    Fail(absl::StrCat("'", std::string(key), "' ", message));
  }

  // The field's value, or nullptr when absent (or when the reader failed).
  const Json* Find(std::string_view key) {
    used_.insert(std::string(key));
    if (!ok() || !object_.is_object()) return nullptr;
    auto it = object_.find(std::string(key));
    return it == object_.end() ? nullptr : &*it;
  }
  const Json* Required(std::string_view key) {
    const Json* value = Find(key);
    if (value == nullptr) FailField(key, "is missing");
    return value;
  }
  // Absent or null.
  bool IsNull(std::string_view key) {
    const Json* value = Find(key);
    return value == nullptr || value->is_null();
  }

  std::string String(std::string_view key, std::optional<std::string> fallback) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or("");
    if (!value->is_string()) {
      FailField(key, absl::StrCat("must be a string, got ", Describe(*value)));
      return fallback.value_or("");
    }
    return value->get<std::string>();
  }
  bool Bool(std::string_view key, std::optional<bool> fallback) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or(false);
    if (!value->is_boolean()) {
      FailField(key, absl::StrCat("must be true or false, got ", Describe(*value)));
      return fallback.value_or(false);
    }
    return value->get<bool>();
  }
  // An integer in [lo, hi]; 300.0 or 1e12 are not integers.
  int64_t Integer(std::string_view key, std::optional<int64_t> fallback, int64_t lo, int64_t hi) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or(lo);
    std::optional<int64_t> v = AsInteger(*value, lo, hi);
    if (!v) {
      FailField(key, absl::StrCat("must be an integer in [", lo, ", ", hi, "], got ", Describe(*value)));
      return fallback.value_or(lo);
    }
    return *v;
  }
  uint64_t Unsigned(std::string_view key, std::optional<uint64_t> fallback) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or(0);
    if (value->is_number_unsigned()) return value->get<uint64_t>();
    if (value->is_number_integer() && value->get<int64_t>() >= 0) return value->get<int64_t>();
    FailField(key, absl::StrCat("must be a non-negative integer, got ", Describe(*value)));
    return fallback.value_or(0);
  }
  // A finite number.
  double Number(std::string_view key, std::optional<double> fallback) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or(0);
    if (!value->is_number() || !std::isfinite(value->get<double>())) {
      FailField(key, absl::StrCat("must be a finite number, got ", Describe(*value)));
      return fallback.value_or(0);
    }
    return value->get<double>();
  }
  // A finite number in [lo, hi] (or [lo, hi) with hi_open).
  double NumberIn(std::string_view key, std::optional<double> fallback, double lo, double hi,
                  bool hi_open = false) {
    double v = Number(key, fallback);
    if (ok() && !(v >= lo && (hi_open ? v < hi : v <= hi))) {
      FailField(key, absl::StrCat("must be in [", lo, ", ", hi, hi_open ? ")" : "]", ", got ", v));
    }
    return v;
  }
  template <typename T>
  std::vector<T> List(std::string_view key, std::optional<std::vector<T>> fallback) {
    const Json* value = fallback ? Find(key) : Required(key);
    if (value == nullptr) return fallback.value_or(std::vector<T>{});
    std::vector<T> out;
    if (!value->is_array() || value->size() > kMaxConfigListLength) {
      FailField(key, absl::StrCat("must be an array of at most ", kMaxConfigListLength,
                                  " elements, got ", Describe(*value)));
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
        std::optional<int64_t> v = AsInteger(element, std::numeric_limits<T>::min(),
                                             std::numeric_limits<T>::max());
        good = v.has_value();
        if (good) out.push_back(static_cast<T>(*v));
      }
      if (!good) {
        FailField(key, absl::StrCat("has an element of the wrong type: ", Describe(element)));
        return {};
      }
    }
    return out;
  }

  // Marks keys read elsewhere (e.g. by LayerFromJson) as known.
  void Accept(std::initializer_list<const char*> keys) {
    for (const char* k : keys) used_.insert(k);
  }
  // Unknown keys are errors: a typo in a hand-edited file should not be
  // silently ignored.
  void Finish() {
    if (!ok() || !object_.is_object()) return;
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!used_.count(it.key())) {
        std::vector<std::string> known(used_.begin(), used_.end());
        Fail(absl::StrCat("unknown field '", it.key(), "' (known: ", absl::StrJoin(known, ", "), ")"));
        return;
      }
    }
  }

 private:
  static std::optional<int64_t> AsInteger(const Json& value, int64_t lo, int64_t hi) {
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

  static const Json& Null() {
    static const Json* null = new Json(nullptr);
    return *null;
  }

  const Json& object_;
  std::string where_;
  absl::Status& status_;
  std::set<std::string> used_;
};

// ------------------------------------------------------------ value checks

void CheckInitializer(Reader& r, std::string_view key, const std::string& name) {
  if (!r.ok()) return;
  auto init = InitializerFromName(name);
  if (!init.ok()) r.Fail(absl::StrCat("'", std::string(key), "': ", init.status().message()));
}

void CheckActivation(Reader& r, std::string_view key, const std::string& name) {
  if (!r.ok() || name.empty() || name == "linear") return;
  std::vector<std::string> names = ops::ActivationNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    r.FailField(key, absl::StrCat("is the unknown activation '", name, "'; valid names: ",
                                  absl::StrJoin(names, ", ")));
  }
}

std::optional<optimizers::Regularizer> ReadRegularizer(Reader& r, std::string_view key) {
  if (r.IsNull(key)) return std::nullopt;
  Reader sub = r.Sub(key);
  optimizers::Regularizer reg{.l1 = sub.NumberIn("l1", 0.0, 0, 1e30), .l2 = sub.NumberIn("l2", 0.0, 0, 1e30)};
  sub.Finish();
  return reg;
}

std::optional<optimizers::MaxNorm> ReadConstraint(Reader& r, std::string_view key) {
  if (r.IsNull(key)) return std::nullopt;
  Reader sub = r.Sub(key);
  optimizers::MaxNorm constraint;
  constraint.max_value = sub.NumberIn("max_value", optimizers::MaxNorm{}.max_value, 0, 1e30);
  if (sub.ok() && !(constraint.max_value > 0)) sub.FailField("max_value", "must be > 0");
  constraint.axis = static_cast<int>(sub.Integer("axis", optimizers::MaxNorm{}.axis,
                                                 -kMaxConfigInputRank, kMaxConfigInputRank));
  sub.Finish();
  return constraint;
}

// ------------------------------------------------------------ built-in layers

using BuiltinFactory = std::function<LayerPtr(Reader&)>;

LayerPtr DenseFromConfig(Reader& r) {
  const int64_t units = r.Integer("units", std::nullopt, 1, kMaxConfigUnits);
  DenseOptions o;
  o.activation = r.String("activation", "linear");
  CheckActivation(r, "activation", o.activation);
  if (o.activation == "linear") o.activation = "";
  o.kernel_initializer = r.String("kernel_initializer", DenseOptions{}.kernel_initializer);
  CheckInitializer(r, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = r.String("bias_initializer", DenseOptions{}.bias_initializer);
  CheckInitializer(r, "bias_initializer", o.bias_initializer);
  o.use_bias = r.Bool("use_bias", true);
  o.kernel_regularizer = ReadRegularizer(r, "kernel_regularizer");
  o.bias_regularizer = ReadRegularizer(r, "bias_regularizer");
  o.kernel_constraint = ReadConstraint(r, "kernel_constraint");
  o.bias_constraint = ReadConstraint(r, "bias_constraint");
  return r.ok() ? Dense(units, std::move(o)) : nullptr;
}

LayerPtr ActivationFromConfig(Reader& r) {
  std::string name = r.String("activation", std::nullopt);
  CheckActivation(r, "activation", name);
  return r.ok() ? Activation(name) : nullptr;
}

BuiltinFactory DropoutFactory(LayerPtr (*make)(double)) {
  return [make](Reader& r) -> LayerPtr {
    double rate = r.NumberIn("rate", std::nullopt, 0, 1, /*hi_open=*/true);
    return r.ok() ? make(rate) : nullptr;
  };
}

LayerPtr BatchNormalizationFromConfig(Reader& r) {
  BatchNormalizationOptions o;
  o.momentum = r.NumberIn("momentum", o.momentum, 0, 1);
  o.epsilon = r.NumberIn("epsilon", o.epsilon, 0, 1e30);
  if (r.ok() && !(o.epsilon > 0)) r.FailField("epsilon", "must be > 0");
  o.center = r.Bool("center", o.center);
  o.scale = r.Bool("scale", o.scale);
  for (auto [key, field] : {std::pair{"beta_initializer", &o.beta_initializer},
                            std::pair{"gamma_initializer", &o.gamma_initializer},
                            std::pair{"moving_mean_initializer", &o.moving_mean_initializer},
                            std::pair{"moving_variance_initializer", &o.moving_variance_initializer}}) {
    *field = r.String(key, *field);
    CheckInitializer(r, key, *field);
  }
  return r.ok() ? BatchNormalization(std::move(o)) : nullptr;
}

LayerPtr PReLUFromConfig(Reader& r) {
  PReLUOptions o;
  o.alpha_initializer = r.String("alpha_initializer", o.alpha_initializer);
  CheckInitializer(r, "alpha_initializer", o.alpha_initializer);
  for (int64_t axis : r.List<int64_t>("shared_axes", std::vector<int64_t>{})) {
    if (axis < 1 || axis > kMaxConfigInputRank) {
      r.FailField("shared_axes", absl::StrCat("has axis ", axis, "; axes are in [1, ",
                                              kMaxConfigInputRank, "] (0 is the batch)"));
    }
    o.shared_axes.push_back(static_cast<int>(axis));
  }
  return r.ok() ? PReLU(std::move(o)) : nullptr;
}

LayerPtr RReLUFromConfig(Reader& r) {
  double lower = r.NumberIn("lower", ops::kRReluDefaultLower, 0, 1);
  double upper = r.NumberIn("upper", ops::kRReluDefaultUpper, 0, 1);
  if (r.ok() && lower > upper) r.Fail(absl::StrCat("'lower' (", lower, ") must be <= 'upper' (", upper, ")"));
  return r.ok() ? RReLU(lower, upper) : nullptr;
}

const std::map<std::string, BuiltinFactory>& Builtins() {
  static const auto* builtins = new std::map<std::string, BuiltinFactory>{
      {"Flatten", [](Reader&) { return Flatten(); }},
      {"Dense", DenseFromConfig},
      {"Activation", ActivationFromConfig},
      {"Dropout", DropoutFactory(&Dropout)},
      {"AlphaDropout", DropoutFactory(&AlphaDropout)},
      {"MCDropout", DropoutFactory(&MCDropout)},
      {"MCAlphaDropout", DropoutFactory(&MCAlphaDropout)},
      {"BatchNormalization", BatchNormalizationFromConfig},
      {"LeakyReLU", [](Reader& r) -> LayerPtr {
         double alpha = r.Number("alpha", kLeakyReLULayerDefaultAlpha);
         return r.ok() ? LeakyReLU(alpha) : nullptr;
       }},
      {"ELU", [](Reader& r) -> LayerPtr {
         double alpha = r.Number("alpha", 1.0);
         return r.ok() ? ELU(alpha) : nullptr;
       }},
      {"PReLU", PReLUFromConfig},
      {"RReLU", RReLUFromConfig},
  };
  return *builtins;
}

// The keys every layer config has; LayerFromJson reads them.
constexpr std::initializer_list<const char*> kCommonLayerKeys = {"name", "trainable", "input_shape"};

struct Registry {
  std::mutex mutex;
  std::map<std::string, LayerFactory> factories;
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    for (const auto& [name, builtin] : Builtins()) {
      BuiltinFactory make = builtin;
      std::string class_name = name;
      r->factories[name] = [make, class_name](const Json& config) -> absl::StatusOr<LayerPtr> {
        absl::Status status;
        Reader reader(config, "config", status);
        reader.Accept(kCommonLayerKeys);
        LayerPtr layer = make(reader);
        reader.Finish();
        if (!status.ok()) return status;
        if (layer == nullptr) return absl::InternalError(absl::StrCat(class_name, " factory returned null"));
        return layer;
      };
    }
    return r;
  }();
  return *registry;
}

std::optional<LayerFactory> FindFactory(const std::string& class_name) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.factories.find(class_name);
  if (it == registry.factories.end()) return std::nullopt;
  return it->second;
}

// ------------------------------------------------------------ optimizers

// Calls f(name, field) for every hyperparameter of an optimizer or schedule,
// so one list serves both directions.
// Structs described once (core/describe.h: optimizers, schedules) list their
// own fields.
template <typename T, typename F>
  requires requires { T::kName; }
void VisitFields(T& o, F&& f) {
  gradflow::VisitFields(o, [&](const Field& field, auto& value) { f(field.name, value); });
}
// A variant's alternative as {"class_name": name_of(v), "config": {fields}}.
template <typename Variant, typename NameOf>
Json VariantToJson(const Variant& value, NameOf name_of) {
  Json config = Json::object();
  std::visit([&](auto alternative) {
    VisitFields(alternative, [&](const char* key, auto& field) { config[key] = field; });
  }, value);
  return {{"class_name", name_of(value)}, {"config", config}};
}

template <typename Variant, size_t I = 0>
std::optional<Variant> VariantByIndex(size_t index) {
  if constexpr (I < std::variant_size_v<Variant>) {
    if (index == I) return Variant(std::in_place_index<I>);
    return VariantByIndex<Variant, I + 1>(index);
  } else {
    return std::nullopt;
  }
}

// The alternative whose name_of() is the object's "class_name", its fields
// read from "config" (absent fields keep their Keras defaults).
template <typename Variant, typename NameOf>
std::optional<Variant> VariantFromJson(Reader& r, std::string_view key, NameOf name_of) {
  const Json* value = r.Find(key);
  if (value == nullptr) {
    r.FailField(key, "is missing");
    return std::nullopt;
  }
  Reader outer = r.Sub(key);
  const std::string class_name = outer.String("class_name", std::nullopt);
  std::optional<Variant> result;
  std::vector<std::string> names;
  for (size_t i = 0; i < std::variant_size_v<Variant>; ++i) {
    Variant candidate = *VariantByIndex<Variant>(i);
    names.push_back(name_of(candidate));
    if (names.back() == class_name) result = candidate;
  }
  if (outer.ok() && !result) {
    outer.FailField("class_name", absl::StrCat("'", class_name, "' is not known; known: ",
                                               absl::StrJoin(names, ", ")));
  }
  if (result && !outer.IsNull("config")) {
    Reader fields = outer.Sub("config");
    std::visit([&](auto& alternative) {
      VisitFields(alternative, [&](const char* name, auto& field) {
        using T = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<T, bool>) {
          field = fields.Bool(name, field);
        } else if constexpr (std::is_same_v<T, double>) {
          field = fields.Number(name, field);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          field = fields.Integer(name, field, std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max());
        } else {
          field = fields.List<typename T::value_type>(name, field);
        }
      });
    }, *result);
    fields.Finish();
  }
  outer.Finish();
  if (!r.ok()) return std::nullopt;
  return result;
}

const char* ClipKindName(optimizers::GradientClipping::Kind kind) {
  switch (kind) {
    case optimizers::GradientClipping::Kind::kValue: return "value";
    case optimizers::GradientClipping::Kind::kNorm: return "norm";
    case optimizers::GradientClipping::Kind::kGlobalNorm: return "global_norm";
  }
  return "global_norm";
}

CompileOptions ReadCompileOptions(Reader& r) {
  CompileOptions o;
  o.loss = r.String("loss", o.loss);
  o.metrics = r.List<std::string>("metrics", std::vector<std::string>{});
  o.seed = r.Unsigned("seed", o.seed);
  if (auto optimizer = VariantFromJson<optimizers::Optimizer>(r, "optimizer", optimizers::OptimizerName)) {
    o.optimizer = *optimizer;
  }
  if (!r.IsNull("clip")) {
    Reader clip = r.Sub("clip");
    std::string kind = clip.String("kind", std::nullopt);
    double threshold = clip.Number("threshold", std::nullopt);
    if (clip.ok() && !(threshold > 0)) clip.FailField("threshold", absl::StrCat("must be > 0, got ", threshold));
    if (clip.ok()) {
      if (kind == "value") o.clip = optimizers::ClipByValue(threshold);
      else if (kind == "norm") o.clip = optimizers::ClipByNorm(threshold);
      else if (kind == "global_norm") o.clip = optimizers::ClipByGlobalNorm(threshold);
      else clip.FailField("kind", absl::StrCat("is '", kind, "'; use value, norm or global_norm"));
    }
    clip.Finish();
  }
  if (!r.IsNull("learning_rate_schedule")) {
    o.learning_rate_schedule =
        VariantFromJson<optimizers::Schedule>(r, "learning_rate_schedule", optimizers::ScheduleName);
  }
  if (r.ok()) {
    absl::Status valid = optimizers::ValidateOptimizer(
        o.optimizer, {.clip = o.clip, .schedule = o.learning_rate_schedule});
    if (!valid.ok()) r.Fail(std::string(valid.message()));
  }
  return o;
}

// Rejects nesting deeper than kMaxModelConfigDepth before the text is
// parsed, so no parser or destructor recursion depends on the input.
absl::Status CheckDepth(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxModelConfigDepth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model config: JSON nested deeper than ", kMaxModelConfigDepth, " levels"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLayerName(const std::string& name) {
  if (name.size() > kMaxConfigNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("'name' is longer than ", kMaxConfigNameLength, " characters"));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "'name' may not contain '/', ':' or control characters (it prefixes variable names)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ParseModelConfigImpl(std::string_view text) {
  if (text.size() > kMaxModelConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("model config: ", text.size(),
                                                   " bytes, more than the limit of ",
                                                   kMaxModelConfigBytes));
  }
  GF_RETURN_IF_ERROR(CheckDepth(text));
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model config is not valid JSON: ", e.what()));
  }
  absl::Status status;
  Reader r(root, "model config", status);
  const std::string format = r.String("format", std::nullopt);
  if (r.ok() && format != kModelConfigFormat) {
    r.FailField("format", absl::StrCat("is '", format, "', expected '", kModelConfigFormat, "'"));
  }
  const int64_t version = r.Integer("format_version", std::nullopt, 0, std::numeric_limits<int32_t>::max());
  if (r.ok() && version != kModelConfigFormatVersion) {
    r.FailField("format_version", absl::StrCat("is ", version, "; this gradflow reads version ",
                                               kModelConfigFormatVersion));
  }
  const std::string class_name = r.String("class_name", std::nullopt);
  if (r.ok() && class_name != "Sequential") {
    r.FailField("class_name", absl::StrCat("is '", class_name, "'; only Sequential models can be loaded"));
  }
  ModelConfig config;
  config.name = r.String("name", config.name);
  const Json* layers = r.Required("layers");
  if (layers != nullptr && (!layers->is_array() || layers->size() > size_t{kMaxModelConfigLayers})) {
    r.FailField("layers", absl::StrCat("must be an array of at most ", kMaxModelConfigLayers,
                                       " layers, got ", Describe(*layers)));
  }
  if (!r.IsNull("compile")) {
    Reader compile = r.Sub("compile");
    CompileOptions options = ReadCompileOptions(compile);
    compile.Finish();
    if (compile.ok()) config.compile = std::move(options);
  }
  r.Finish();
  if (!status.ok()) return status;
  for (size_t i = 0; i < layers->size(); ++i) {
    GF_ASSIGN_OR_RETURN(LayerPtr layer, LayerFromJson((*layers)[i], absl::StrCat("model config: layers[", i, "]")));
    config.layers.push_back(std::move(layer));
  }
  return config;
}

}  // namespace

absl::StatusOr<LayerPtr> LayerFromJson(const Json& layer, const std::string& where_in) {
  absl::Status status;
  Reader r(layer, where_in, status);
  const std::string class_name = r.String("class_name", std::nullopt);
  const Json* config = r.Required("config");
  r.Finish();
  if (!status.ok()) return status;
  const std::string where = absl::StrCat(where_in, " (", class_name, ")");
  std::optional<LayerFactory> factory = FindFactory(class_name);
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": unknown layer type '", class_name,
                                                   "'; known types: ", absl::StrJoin(LayerTypeNames(), ", ")));
  }
  Reader common(*config, absl::StrCat(where, ".config"), status);
  const std::string name = common.String("name", "");
  const bool trainable = common.Bool("trainable", true);
  std::optional<Shape> input_shape;
  if (!common.IsNull("input_shape")) {
    std::vector<int64_t> dims = common.List<int64_t>("input_shape", std::nullopt);
    int64_t elements = 1;
    bool good = common.ok() && !dims.empty() && dims.size() <= size_t{kMaxConfigInputRank};
    for (int64_t d : dims) {
      good = good && d >= 1 && d <= kMaxConfigInputElements;
      if (good) elements *= d;
      good = good && elements <= kMaxConfigInputElements;
    }
    if (common.ok() && !good) {
      common.FailField("input_shape", absl::StrCat("must list 1 to ", kMaxConfigInputRank,
                                                   " dimensions >= 1 with at most ", kMaxConfigInputElements,
                                                   " elements in all, got ", Describe(*common.Find("input_shape"))));
    }
    if (common.ok()) input_shape = Shape(dims);
  }
  if (common.ok()) {
    absl::Status name_ok = CheckLayerName(name);
    if (!name_ok.ok()) common.Fail(std::string(name_ok.message()));
  }
  if (!status.ok()) return status;
  absl::StatusOr<LayerPtr> made;
  try {
    made = (*factory)(*config);
  } catch (const std::exception& e) {  // a user factory that throws
    made = absl::InvalidArgumentError(absl::StrCat("the factory failed: ", e.what()));
  }
  if (!made.ok()) {
    return absl::Status(made.status().code(), absl::StrCat(where, ".", made.status().message()));
  }
  if (*made == nullptr) return absl::InternalError(absl::StrCat(where, ": the factory returned no layer"));
  LayerPtr result = *std::move(made);
  if (!name.empty()) result->set_name(name);
  result->trainable = trainable;
  if (input_shape) result->set_input_shape(input_shape);
  return result;
}

absl::StatusOr<Json> LayerToJson(const Layer& layer) {
  Json config = layer.Config();
  if (config.is_null()) {
    return absl::UnimplementedError(absl::StrCat(
        "layer '", layer.name(), "' (", layer.type(), ") has no Config(), so it cannot be saved"));
  }
  if (!config.is_object()) {
    return absl::InternalError(absl::StrCat("layer '", layer.name(), "' (", layer.type(),
                                            "): Config() must return a JSON object"));
  }
  if (!FindFactory(layer.type())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer '", layer.name(), "' (", layer.type(), ") has no registered factory "
        "(nn::RegisterLayerType), so a saved model could not be loaded back"));
  }
  if (absl::Status name_ok = CheckLayerName(layer.name()); !name_ok.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name(), "' (", layer.type(), "): ",
                                                   name_ok.message(), "; rename it to save the model"));
  }
  config["name"] = layer.name();
  config["trainable"] = layer.trainable;
  config["input_shape"] = nullptr;
  if (layer.input_shape()) config["input_shape"] = layer.input_shape()->dims();
  return Json{{"class_name", layer.type()}, {"config", std::move(config)}};
}

absl::StatusOr<LayerPtr> CloneLayer(const Layer& layer) {
  GF_ASSIGN_OR_RETURN(Json json, LayerToJson(layer));
  return LayerFromJson(json, absl::StrCat("layer '", layer.name(), "'"));
}

Json CompileOptionsToJson(const CompileOptions& options) {
  Json compile = {{"loss", options.loss},
                  {"metrics", options.metrics},
                  {"seed", options.seed},
                  {"optimizer", VariantToJson(options.optimizer, optimizers::OptimizerName)},
                  {"clip", nullptr},
                  {"learning_rate_schedule", nullptr}};
  if (options.clip) {
    compile["clip"] = {{"kind", ClipKindName(options.clip->kind)}, {"threshold", options.clip->threshold}};
  }
  if (options.learning_rate_schedule) {
    compile["learning_rate_schedule"] =
        VariantToJson(*options.learning_rate_schedule, optimizers::ScheduleName);
  }
  return compile;
}

absl::StatusOr<CompileOptions> CompileOptionsFromJson(const Json& compile) {
  absl::Status status;
  Reader r(compile, "compile", status);
  CompileOptions options = ReadCompileOptions(r);
  r.Finish();
  if (!status.ok()) return status;
  return options;
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text) {
  try {
    return ParseModelConfigImpl(json_text);
  } catch (const std::exception& e) {  // defensive: no input may escape as an exception
    return absl::InvalidArgumentError(absl::StrCat("model config: ", e.what()));
  }
}

absl::StatusOr<std::vector<LayerPtr>> ParseLayersConfig(std::string_view json_text) {
  GF_ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(json_text));
  return std::move(config.layers);
}

absl::StatusOr<std::string> ModelConfigToJson(const ModelConfig& config) {
  Json layers = Json::array();
  for (const LayerPtr& layer : config.layers) {
    if (layer == nullptr) return absl::InvalidArgumentError("the model has a null layer");
    GF_ASSIGN_OR_RETURN(Json json, LayerToJson(*layer));
    layers.push_back(std::move(json));
  }
  Json root = {{"format", kModelConfigFormat},
               {"format_version", kModelConfigFormatVersion},
               {"class_name", "Sequential"},
               {"name", config.name},
               {"layers", std::move(layers)}};
  if (config.compile) root["compile"] = CompileOptionsToJson(*config.compile);
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status RegisterLayerType(const std::string& class_name, LayerFactory factory) {
  if (class_name.empty() || !factory) {
    return absl::InvalidArgumentError("RegisterLayerType needs a class name and a factory");
  }
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  if (!registry.factories.emplace(class_name, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("layer type '", class_name, "' is already registered"));
  }
  return absl::OkStatus();
}

std::vector<std::string> LayerTypeNames() {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry.factories) names.push_back(name);
  return names;
}

}  // namespace gradflow::nn
