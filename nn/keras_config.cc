#include "nn/keras_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/describe.h"
#include "core/status.h"
#include "nn/config_reader.h"
#include "nn/layer_graph_json.h"
#include "nn/layer_registry.h"
#include "nn/losses.h"
#include "nn/metrics.h"

namespace gradflow::nn::keras_config {
namespace {

using Json = nlohmann::json;

// ------------------------------------------------------------------ reading

// An InputLayer entry: its sample shape.
// "layers[2] 'dense_1'": a layer's place in messages.
std::string LayerPlace(const std::string& where, size_t i, const Json& layer) {
  std::string place = absl::StrCat(where, " layers[", i, "]");
  if (layer.is_object() && layer.contains("config") && layer["config"].is_object() &&
      layer["config"].contains("name") && layer["config"]["name"].is_string()) {
    absl::StrAppend(&place, " ", QuoteUserText(layer["config"]["name"].get<std::string>()));
  }
  return place;
}


absl::Status ReadLayers(const Json& layers, const std::string& where, const std::optional<Shape>& build_shape,
                        std::vector<std::string>* notes, ModelConfig& out) {
  std::optional<Shape> input_shape = build_shape;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string place = LayerPlace(where, i, layers[i]);
    if (IsInputLayerEntry(layers[i])) {
      absl::Status status;
      ConfigReader r(layers[i], place + " (InputLayer)", status, notes);
      std::optional<Shape> shape = ReadInputLayer(r);
      GF_RETURN_IF_ERROR(status);
      if (!out.layers.empty()) return absl::InvalidArgumentError(place + ": an InputLayer after other layers");
      input_shape = shape;
      continue;
    }
    GF_ASSIGN_OR_RETURN(LayerPtr layer, LayerFromJson(layers[i], place, notes));
    if (out.layers.empty() && !layer->input_shape()) layer->set_input_shape(input_shape);
    out.layers.push_back(std::move(layer));
  }
  if (out.layers.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": the model has no layers"));
  return absl::OkStatus();
}

// ------------------------------------------------------------ described structs
// Losses, optimizers and schedules are described once (core/describe.h);
// Keras objects {"class_name": ..., "config": {...}} map onto those
// descriptions, with the Keras keys that are not a field handled around them.

// T's Keras class: kKerasClass where gradflow's config name differs (the
// schedules' "exponential" is Keras's ExponentialDecay), else kName;
// nullptr: Keras has no such class.
template <typename T>
constexpr const char* KerasClass() {
  if constexpr (requires { T::kKerasClass; }) {
    return T::kKerasClass;
  } else {
    return T::kName;
  }
}

template <typename Variant>
std::vector<std::string> KerasClassNames() {
  std::vector<std::string> names;
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((KerasClass<std::variant_alternative_t<I, Variant>>() != nullptr
          ? names.push_back(KerasClass<std::variant_alternative_t<I, Variant>>())
          : void()),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return names;
}

// gradflow's config name (kName) of the alternative Keras calls `keras_class`.
template <typename Variant>
std::optional<std::string> NameOfKerasClass(const std::string& keras_class) {
  std::optional<std::string> found;
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((KerasClass<std::variant_alternative_t<I, Variant>>() != nullptr &&
              keras_class == KerasClass<std::variant_alternative_t<I, Variant>>()
          ? (void)(found = std::variant_alternative_t<I, Variant>::kName)
          : (void)0),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Variant>>());
  return found;
}

// Reads the Keras object `object` (r's field `key`) into the alternative its
// class names; `dropped` config keys are Keras's own, read by the caller.
template <typename Variant>
std::optional<Variant> ReadKerasObject(ConfigReader& r, const std::string& key, const Json& object,
                                       std::initializer_list<const char*> dropped) {
  ConfigReader outer = r.Over(object, absl::StrCat(r.where(), ".", key));
  std::string keras_class = outer.String("class_name", std::nullopt);
  if (absl::StartsWith(keras_class, "Custom>")) keras_class = keras_class.substr(7);  // tf.keras 2.11+
  outer.Accept({"module", "registered_name", "config"});
  const std::optional<std::string> name = NameOfKerasClass<Variant>(keras_class);
  if (outer.ok() && !name) outer.FailField("class_name", UnknownNameMessage(keras_class, KerasClassNames<Variant>()));
  outer.Finish();
  if (!outer.ok()) return std::nullopt;
  Json fields = object.contains("config") && object["config"].is_object() ? object["config"] : Json::object();
  for (const char* k : dropped) fields.erase(k);
  const Json holder = {{key, {{"class_name", *name}, {"config", std::move(fields)}}}};
  ConfigReader described = r.Over(holder, r.where());
  return ReadDescribed<Variant>(described, key, {.validate = true});
}

// The object's "config" (absent: an empty one), to check Keras's own keys.
ConfigReader KerasConfigOf(ConfigReader& r, const Json& object, const std::string& key) {
  static const Json kEmpty = Json::object();
  const Json& config = object.is_object() && object.contains("config") ? object["config"] : kEmpty;
  return r.Over(config, absl::StrCat(r.where(), ".", key, ".config"));
}

// Keras metric keys that are not settings of gradflow's metric structs.
constexpr std::initializer_list<const char*> kMetricBaseKeys = {
    "name", "dtype", "multi_label", "num_labels", "label_weights", "from_logits", "top_k", "class_id"};

// A Keras metric object of a class gradflow describes (nn/metrics.h), with
// its config's name.
std::optional<Metric> ReadMetricObject(ConfigReader& r, const Json& object) {
  ConfigReader c = KerasConfigOf(r, object, "metrics");
  c.KerasDType();
  c.Unsupported("multi_label", false, "gradflow's AUC flattens every label (multi_label false)");
  c.Unsupported("num_labels", nullptr, "gradflow's AUC flattens every label");
  c.Unsupported("label_weights", nullptr, "gradflow's AUC weighs every label alike");
  c.Unsupported("from_logits", false, "gradflow's confusion metrics take probabilities");
  c.Unsupported("top_k", nullptr, "gradflow's precision and recall threshold every prediction");
  c.Unsupported("class_id", nullptr, "gradflow's precision and recall count every class");
  Json copy = object;
  Json& config = copy["config"];
  if (!config.is_object()) config = Json::object();
  const std::string class_name = copy.value("class_name", "");
  if (class_name == "AUC") c.Unsupported("thresholds", nullptr, "gradflow's AUC spaces num_thresholds evenly");
  if (class_name == "AUC" || (config.contains("thresholds") && config["thresholds"].is_null())) {
    config.erase("thresholds");  // Precision / Recall: null means 0.5
  }
  if (!r.ok()) return std::nullopt;
  std::optional<metrics::MetricConfig> read = ReadKerasObject<metrics::MetricConfig>(r, "metrics", copy, kMetricBaseKeys);
  if (!read) return std::nullopt;
  const std::string name = config.contains("name") && config["name"].is_string()
                               ? config["name"].get<std::string>()
                               : KerasSnakeCase(class_name);
  return Metric(name, *read);
}

// A metric entry: a name ("accuracy", "mae"), a Keras metric object (a
// described class, read with its settings; another class by its config's
// name or its class), or tf.keras 2.x's nested lists of them.
absl::Status ReadMetricEntry(const Json& metric, const std::string& where, std::vector<std::string>* notes,
                             std::vector<Metric>& out) {
  if (metric.is_array()) {
    for (const Json& m : metric) GF_RETURN_IF_ERROR(ReadMetricEntry(m, where, notes, out));
    return absl::OkStatus();
  }
  const std::vector<std::string> classes = KerasClassNames<metrics::MetricConfig>();
  if (metric.is_object() && metric.contains("class_name") && metric["class_name"].is_string() &&
      std::count(classes.begin(), classes.end(), metric["class_name"].get<std::string>())) {
    absl::Status status;
    const Json holder = {{"metrics", metric}};
    ConfigReader r(holder, where, status, notes);
    std::optional<Metric> read = ReadMetricObject(r, metric);
    GF_RETURN_IF_ERROR(status);
    out.push_back(*read);
    return absl::OkStatus();
  }
  std::vector<std::string> candidates;
  if (metric.is_string()) candidates.push_back(metric.get<std::string>());
  if (metric.is_object() && metric.contains("config") && metric["config"].is_object() &&
      metric["config"].contains("name") && metric["config"]["name"].is_string()) {
    candidates.push_back(metric["config"]["name"].get<std::string>());
  }
  if (metric.is_object() && metric.contains("class_name") && metric["class_name"].is_string()) {
    candidates.push_back(KerasSnakeCase(metric["class_name"].get<std::string>()));
  }
  for (const std::string& name : candidates) {
    if (FindMetric(name).ok()) {
      out.push_back(Metric(name));
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": metric ", DescribeJson(metric), " is not one gradflow has (",
                                                 UnknownNameMessage(candidates.empty() ? "" : candidates[0],
                                                                    MetricNames()), ")"));
}

// One loss, r's field `key`: a name, or a Keras loss object (its
// description: from_logits, label_smoothing, reduction, delta, ...).
void ReadLossValue(ConfigReader& r, const std::string& key, std::optional<std::string>& name,
                   std::optional<losses::Loss>& config) {
  const Json* loss = r.Required(key);
  if (loss == nullptr) return;
  if (loss->is_null()) {
    r.FailField(key, "is null (no loss for this output): gradflow trains every output with a loss; give it one "
                     "and a loss weight of 0 to leave it out of the total");
    return;
  }
  if (loss->is_string()) {
    name = loss->get<std::string>();
  } else {
    ConfigReader keras = KerasConfigOf(r, *loss, key);
    keras.Unsupported("axis", -1, "gradflow's losses reduce the last axis");
    keras.Unsupported("ignore_class", nullptr, "gradflow's losses count every class");
    keras.Unsupported("dtype", nullptr, "gradflow's losses compute in float32");
    config = ReadKerasObject<losses::Loss>(r, key, *loss, {"name", "axis", "ignore_class", "dtype", "fn"});
    if (config) name = VariantName(*config);
  }
  if (r.ok() && name) {
    absl::StatusOr<const LossInfo*> info = FindLoss(*name);
    if (!info.ok()) r.FailField(key, std::string(info.status().message()));
  }
}

// ------------------------------------------------------------ per-output settings
// A model with several outputs is compiled with Keras's per-output forms of
// loss, loss_weights and metrics: a list in output order, or a dict keyed
// by output layer name. They are read into CompileOptions::outputs.

bool IsKerasObject(const Json& j) { return j.is_object() && j.contains("class_name"); }
bool IsPerOutputForm(const Json& j) { return j.is_array() || (j.is_object() && !IsKerasObject(j)); }

struct OutputEntry {
  size_t output;
  std::string key;  // for messages: "loss[1]", "loss.aux"
  const Json* value;
};

// The entries of the per-output form `value` (r's field `key`), checked
// against the model's output names. `every_output`: each output needs one.
std::vector<OutputEntry> PerOutputEntries(ConfigReader& r, const std::string& key, const Json& value,
                                          const std::vector<std::string>& names, bool every_output) {
  const std::string outputs = absl::StrCat(names.size(), " output", names.size() == 1 ? "" : "s", " (",
                                           absl::StrJoin(names, ", "), ")");
  std::vector<OutputEntry> entries;
  if (value.is_array()) {
    if (value.size() != names.size()) {
      r.FailField(key, absl::StrCat("lists ", value.size(), " entries, but the model has ", outputs,
                                    "; give one per output, in output order, or a dict keyed by output name"));
      return {};
    }
    for (size_t k = 0; k < value.size(); ++k) entries.push_back({k, absl::StrCat(key, "[", k, "]"), &value[k]});
    return entries;
  }
  std::vector<bool> given(names.size(), false);
  for (const auto& [name, v] : value.items()) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      r.FailField(key, absl::StrCat("names output ", QuoteUserText(name), ", which the model does not have; it has ",
                                    outputs));
      return {};
    }
    const size_t k = static_cast<size_t>(it - names.begin());
    given[k] = true;
    entries.push_back({k, absl::StrCat(key, ".", name), &v});
  }
  for (size_t k = 0; k < names.size() && every_output; ++k) {
    if (!given[k]) {
      r.FailField(key, absl::StrCat("has no entry for output '", names[k], "'; Keras 3 needs one for each of the ",
                                    outputs));
      return {};
    }
  }
  return entries;
}

// Output k's options, making one per output at the first per-output setting.
OutputCompileOptions& OutputOptionsOf(CompileOptions& o, size_t k, size_t outputs) {
  if (o.outputs.empty()) o.outputs.resize(outputs);
  return o.outputs[k];
}

// Reads each entry of r's per-output field `key` through a reader holding
// just that entry under its own key, so messages name the place.
template <typename ReadEntry>
void ReadEachOutput(ConfigReader& r, const std::string& key, const Json& value, const std::vector<std::string>& names,
                    bool every_output, ReadEntry read_entry) {
  for (const OutputEntry& e : PerOutputEntries(r, key, value, names, every_output)) {
    const Json holder = {{e.key, *e.value}};
    ConfigReader entry = r.Over(holder, r.where());
    read_entry(e.output, entry, e.key);
    if (!r.ok()) return;
  }
}

// "loss": one loss for every output, or one per output.
void ReadLosses(ConfigReader& r, const std::vector<std::string>& names, CompileOptions& o) {
  const Json* loss = r.Required("loss");
  if (loss == nullptr) return;
  if (!IsPerOutputForm(*loss)) {
    std::optional<std::string> name;
    ReadLossValue(r, "loss", name, o.loss_config);
    if (name) o.loss = *name;
    return;
  }
  ReadEachOutput(r, "loss", *loss, names, /*every_output=*/true, [&](size_t k, ConfigReader& entry, const std::string& key) {
    OutputCompileOptions& out = OutputOptionsOf(o, k, names.size());
    ReadLossValue(entry, key, out.loss, out.loss_config);
  });
}

// "loss_weights": per output (an output a dict leaves out weighs 1, as in tf.keras 2).
void ReadLossWeights(ConfigReader& r, const std::vector<std::string>& names, CompileOptions& o) {
  if (r.IsNull("loss_weights")) return;
  const Json& weights = *r.Find("loss_weights");
  if (!IsPerOutputForm(weights)) {
    r.FailField("loss_weights", absl::StrCat("is ", DescribeJson(weights), "; it must be a list (a weight per ",
                                             "output, in output order) or a dict keyed by output name"));
    return;
  }
  ReadEachOutput(r, "loss_weights", weights, names, /*every_output=*/false,
                 [&](size_t k, ConfigReader& entry, const std::string& key) {
                   const double weight = entry.Number(key, std::nullopt);
                   if (entry.ok() && !(weight >= 0)) entry.FailField(key, absl::StrCat("is ", weight, "; it must be >= 0"));
                   OutputOptionsOf(o, k, names.size()).loss_weight = weight;
                 });
}

// Whether "metrics" is in a per-output form. A dict is; Keras 3 reads a list
// of a model with several outputs as one entry per output, tf.keras 2 only
// a list holding lists (a flat list goes to every output).
bool MetricsPerOutput(const Json& metrics, bool tf_keras_2, size_t outputs) {
  if (metrics.is_object()) return !IsKerasObject(metrics);
  if (!metrics.is_array() || metrics.empty() || outputs == 1) return false;
  if (!tf_keras_2) return true;
  return std::any_of(metrics.begin(), metrics.end(), [](const Json& m) { return IsPerOutputForm(m); });
}

// "metrics": for every output, or per output (an entry one metric, a list
// or null; an output a dict leaves out has none, as in Keras).
absl::Status ReadCompileMetrics(ConfigReader& r, bool tf_keras_2, const std::vector<std::string>& names,
                                std::vector<std::string>* notes, CompileOptions& o) {
  if (r.IsNull("metrics")) return absl::OkStatus();
  const Json& metrics = *r.Find("metrics");
  if (!MetricsPerOutput(metrics, tf_keras_2, names.size())) return ReadMetrics(metrics, r.where(), notes, o.metrics);
  if (metrics.is_object()) {
    for (size_t k = 0; k < names.size(); ++k) OutputOptionsOf(o, k, names.size()).metrics.emplace();
  }
  absl::Status read;
  for (const OutputEntry& e : PerOutputEntries(r, "metrics", metrics, names, /*every_output=*/false)) {
    std::vector<Metric>& out = OutputOptionsOf(o, e.output, names.size()).metrics.emplace();
    if (!e.value->is_null()) read.Update(ReadMetrics(*e.value, absl::StrCat(r.where(), ".", e.key), notes, out));
  }
  return read;
}

// Keras's base optimizer keys (not fields of a gradflow optimizer).
constexpr std::initializer_list<const char*> kOptimizerBaseKeys = {
    "name", "jit_compile", "is_legacy_optimizer", "ema_momentum", "ema_overwrite_frequency", "use_ema",
    "loss_scale_factor", "gradient_accumulation_steps", "decay", "clipvalue", "clipnorm", "global_clipnorm", "lr"};

void ReadOptimizerBase(ConfigReader& c, const std::string& class_name, CompileOptions& o) {
  c.Unsupported("use_ema", false, "gradflow keeps no moving average of the weights");
  c.Unsupported("loss_scale_factor", nullptr, "gradflow does not scale the loss");
  c.Unsupported("gradient_accumulation_steps", nullptr, "gradflow applies every batch's gradient");
  if (class_name != "AdamW") c.Unsupported("weight_decay", nullptr, "only gradflow's AdamW has weight decay");
  int clips = 0;
  for (auto [key, make] : {std::pair{"clipvalue", &optimizers::ClipByValue},
                           std::pair{"clipnorm", &optimizers::ClipByNorm},
                           std::pair{"global_clipnorm", &optimizers::ClipByGlobalNorm}}) {
    if (c.IsNull(key)) continue;
    const double threshold = c.Number(key, std::nullopt);
    if (c.ok() && !(threshold > 0)) c.FailField(key, absl::StrCat("must be > 0, got ", threshold));
    if (++clips > 1) c.FailField(key, "is the second clipping setting; gradflow clips one way");
    if (c.ok()) o.clip = make(threshold);
  }
}

// tf.keras before 2.11 (OptimizerV2, or an explicit legacy optimizer)
// follows Nadam's 2.x momentum schedule.
bool LegacyTfKerasOptimizer(const std::string& keras_version, const Json& config) {
  if (config.contains("is_legacy_optimizer") && config["is_legacy_optimizer"].is_boolean()) {
    return config["is_legacy_optimizer"].get<bool>();
  }
  int major = 0, minor = 0;
  if (std::sscanf(keras_version.c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major < 2 || (major == 2 && minor < 11);
}

// The learning rate: a number, a Keras schedule object, or tf.keras 2.x's
// `decay`, lr / (1 + decay t): Keras 3's InverseTimeDecay with one step.
void ReadLearningRate(ConfigReader& c, Json& config, CompileOptions& o) {
  if (config.contains("lr") && !config.contains("learning_rate")) config["learning_rate"] = config["lr"];
  if (config.contains("learning_rate") && config["learning_rate"].is_object()) {
    o.learning_rate_schedule =
        ReadKerasObject<optimizers::Schedule>(c, "learning_rate", config["learning_rate"], {"name"});
    config.erase("learning_rate");
  }
  const double decay = config.contains("decay") && config["decay"].is_number() ? config["decay"].get<double>() : 0;
  if (decay == 0 || !c.ok()) return;
  if (o.learning_rate_schedule || !config.contains("learning_rate") || !config["learning_rate"].is_number()) {
    c.FailField("decay", "comes with a schedule or without a learning rate; gradflow applies one schedule");
    return;
  }
  o.learning_rate_schedule = optimizers::InverseTimeDecay{
      .initial_learning_rate = config["learning_rate"].get<double>(), .decay_steps = 1, .decay_rate = decay};
}

// {"class_name": "Adam", "config": {...}} (or tf.keras's "Custom>Adam").
void ReadOptimizer(ConfigReader& r, const char* key, const std::string& keras_version, CompileOptions& o) {
  const Json* given = r.Required(key);
  if (given == nullptr || !given->is_object()) {
    if (given != nullptr) r.FailField(key, "must be an optimizer object");
    return;
  }
  Json object = *given;
  std::string class_name = object.value("class_name", "");
  if (absl::StartsWith(class_name, "Custom>")) class_name = class_name.substr(7);
  if (!object.contains("config") || !object["config"].is_object()) object["config"] = Json::object();
  Json& config = object["config"];
  ConfigReader base = KerasConfigOf(r, object, key);
  ReadOptimizerBase(base, class_name, o);
  ReadLearningRate(base, config, o);
  if (class_name == "Nadam" && LegacyTfKerasOptimizer(keras_version, config)) {
    config["schedule_decay"] = optimizers::kKeras2NadamScheduleDecay;
  }
  if (class_name != "AdamW") config.erase("weight_decay");
  if (auto optimizer = ReadKerasObject<optimizers::Optimizer>(r, key, object, kOptimizerBaseKeys)) {
    o.optimizer = *optimizer;
  }
}

}  // namespace

absl::StatusOr<ModelConfig> ReadModel(const Json& model, const std::string& where, std::vector<std::string>* notes) {
  absl::Status status;
  ConfigReader r(model, where, status, notes);
  const std::string class_name = r.String("class_name", std::nullopt);
  const bool functional = class_name == "Functional" || class_name == "Model";  // tf.keras 2 writes "Model" too
  if (r.ok() && class_name != "Sequential" && !functional) {
    r.FailField("class_name", absl::StrCat("is ", QuoteUserText(class_name),
                                           "; gradflow loads Sequential and Functional models"));
  }
  r.Accept({"module", "registered_name", "build_config", "compile_config"});
  ConfigReader c = r.Sub("config");
  if (functional) c.Accept({"input_layers", "output_layers"});
  ModelConfig out;
  out.name = c.String("name", out.name);
  const bool trainable = c.Bool("trainable", true);
  c.KerasDTypePolicy();  // the model's own; its layers carry theirs
  std::optional<Shape> build_shape;
  if (!c.IsNull("build_input_shape")) {
    Json holder = {{"batch_shape", *c.Find("build_input_shape")}};
    ConfigReader shape = c.Over(holder, c.where());
    build_shape = shape.InputShape();
  }
  const Json* layers = c.Required("layers");
  if (layers != nullptr && (!layers->is_array() || layers->size() > size_t{kMaxModelConfigLayers})) {
    c.FailField("layers", absl::StrCat("must be an array of at most ", kMaxModelConfigLayers, " layers"));
  }
  c.Finish();
  r.Finish();
  GF_RETURN_IF_ERROR(status);
  if (functional) {
    GF_ASSIGN_OR_RETURN(FunctionalParts parts,
                        ReadLayerGraph(model["config"], where + " config", notes,
                                       [&](const Json& entry, const std::string& place) {
                                         return LayerFromJson(entry, place, notes);
                                       }));
    out.layers = std::move(parts.layers);
    out.graph = std::move(parts.graph);
  } else {
    GF_RETURN_IF_ERROR(ReadLayers(*layers, where, build_shape, notes, out));
  }
  if (!trainable) {
    for (const LayerPtr& layer : out.layers) layer->trainable = false;  // Keras's model.trainable = False
  }
  return out;
}

std::vector<std::string> OutputLayerNames(const ModelConfig& config) {
  const auto layer_name = [&](int i) {
    const bool known = i >= 0 && static_cast<size_t>(i) < config.layers.size() && config.layers[i] != nullptr;
    return known ? config.layers[i]->name() : std::string();
  };
  if (!config.graph) return {layer_name(static_cast<int>(config.layers.size()) - 1)};
  std::vector<std::string> names;
  for (int call : config.graph->outputs) {
    const bool known = call >= 0 && static_cast<size_t>(call) < config.graph->calls.size();
    names.push_back(known ? layer_name(config.graph->calls[call].layer) : std::string());  // an input: refused later
  }
  return names;
}

absl::StatusOr<CompileOptions> ReadCompile(const Json& compile, const std::string& keras_version,
                                           const std::vector<std::string>& output_names, const std::string& where,
                                           std::vector<std::string>* notes) {
  absl::Status status;
  ConfigReader r(compile, where, status, notes);
  CompileOptions o;
  ReadLosses(r, output_names, o);
  ReadLossWeights(r, output_names, o);
  if (r.ok()) GF_RETURN_IF_ERROR(ReadCompileMetrics(r, !absl::StartsWith(keras_version, "3"), output_names, notes, o));
  ReadOptimizer(r, r.IsNull("optimizer_config") ? "optimizer" : "optimizer_config", keras_version, o);
  r.Unsupported("weighted_metrics", nullptr, "gradflow's metrics weigh every sample alike");
  r.Unsupported("sample_weight_mode", nullptr, "gradflow weighs whole samples (no temporal sample weights)");
  r.Ignored("run_eagerly", false, "gradflow always runs its compiled plan");
  r.Ignored("steps_per_execution", 1, "gradflow runs one step per batch; the results are the same");
  r.Ignored("jit_compile", false, "gradflow always compiles its plans");
  r.Finish();
  GF_RETURN_IF_ERROR(status);
  GF_RETURN_IF_ERROR(optimizers::ValidateOptimizer(o.optimizer, {.clip = o.clip, .schedule = o.learning_rate_schedule}));
  return o;
}

// ------------------------------------------------------------------ writing

namespace {

Json DTypePolicy(const std::string& name = "float32") {
  return {{"module", "keras"}, {"class_name", "DTypePolicy"}, {"config", {{"name", name}}},
          {"registered_name", nullptr}};
}

// The policy a layer computes under in `model`: its own, else the model's.
std::string PolicyOf(const Model& model, const Layer& layer) {
  if (!layer.dtype_policy.empty()) return layer.dtype_policy;
  return model.compile_options() != nullptr ? model.compile_options()->dtype_policy : "float32";
}

// A layer object inside a layer's config (an activation object: nn/layers.h
// ActivationOption) must be a Keras class too; the legacy .h5 layout writes
// it as tf.keras 2.x does, without module and registered_name.
absl::Status CheckNestedLayers(const Layer& layer, Json& config, bool legacy_h5) {
  for (auto& [key, value] : config.items()) {
    if (!value.is_object() || value.value("module", "") != "keras.layers") continue;
    const LayerTypeInfo* type = FindLayerType(value.value("class_name", ""));
    if (type == nullptr || !type->in_keras) {
      return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name(), "' (", layer.type(), "): its '", key,
                                                        "' is a ", value.value("class_name", ""),
                                                        " layer, which has no Keras class, so Keras could not load the file"));
    }
    if (legacy_h5) {
      value.erase("module");
      value.erase("registered_name");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> WriteLayer(const Layer& layer, const Shape& input, const std::string& policy, bool legacy_h5) {
  const LayerTypeInfo* type = FindLayerType(layer.type());
  if (type == nullptr || !type->in_keras) {
    return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name(), "' (", layer.type(),
                                                      ") has no Keras class, so Keras could not load the file"));
  }
  GF_ASSIGN_OR_RETURN(Json json, LayerToJson(layer));
  Json& config = json["config"];
  GF_RETURN_IF_ERROR(CheckNestedLayers(layer, config, legacy_h5));
  config.erase("input_shape");
  config["dtype"] = DTypePolicy(policy);
  if (!legacy_h5) {
    json["module"] = "keras.layers";
    json["registered_name"] = nullptr;
    json["build_config"] = {{"input_shape", BatchShapeJson(input)}};
  }
  return json;
}

// A described struct as a Keras 3 object: its Keras class and its fields,
// but the gradflow-only ones (Field::NotInKeras), which must hold their
// defaults since Keras could not express another value. FailedPrecondition
// when Keras has no such class. `module` null: without module and
// registered_name (the legacy .h5 optimizer_config).
template <typename Variant>
absl::StatusOr<Json> WriteKerasObject(const Variant& value, const char* module) {
  return std::visit([&](const auto& v) -> absl::StatusOr<Json> {
    using T = std::decay_t<decltype(v)>;
    if (KerasClass<T>() == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", T::kName, "' has no Keras class, so Keras could not load the file"));
    }
    std::map<std::string, Json> defaults;
    const T fresh{};
    VisitFields(fresh, [&](const Field& f, const auto& d) { defaults[f.name] = FieldToJson(f, d); });
    Json config = Json::object();
    absl::Status status;
    VisitFields(v, [&](const Field& f, const auto& x) {
      Json json = FieldToJson(f, x);
      if (f.in_keras) {
        config[f.name] = std::move(json);
      } else if (json != defaults[f.name] && status.ok()) {
        status = absl::FailedPreconditionError(absl::StrCat(
            T::kName, " ", f.name, " = ", json.dump(), " is a gradflow option Keras 3 has no key for ",
            "(Keras would load a different model); set it to ", defaults[f.name].dump(), " to save for Keras"));
      }
    });
    GF_RETURN_IF_ERROR(status);
    Json out = {{"class_name", KerasClass<T>()}, {"config", std::move(config)}};
    if (module != nullptr) {
      out["module"] = module;
      out["registered_name"] = nullptr;
    }
    return out;
  }, value);
}

// A loss: its name, or the configured loss object.
absl::StatusOr<Json> WriteLoss(const std::string& name, const std::optional<losses::Loss>& config) {
  if (!config) {
    GF_ASSIGN_OR_RETURN(const LossInfo* loss, FindLoss(name));
    return Json(loss->names[0]);
  }
  GF_ASSIGN_OR_RETURN(Json loss, WriteKerasObject(*config, "keras.losses"));
  loss["config"]["name"] = KerasSnakeCase(loss["class_name"].get<std::string>());
  return loss;
}

// "loss", "loss_weights" and "metrics" in the forms both Keras versions read
// the same way: one loss for all outputs, or (with CompileOptions::outputs
// and several outputs) a list of losses and of weights in output order; a
// list of metrics per output whenever there are several outputs (Keras 3
// reads a flat list as one entry per output).
absl::Status WriteLossesAndMetrics(const CompileOptions& options, size_t outputs, bool legacy_h5, Json& compile) {
  Json losses = Json::array(), weights = Json::array(), metrics = Json::array();
  for (size_t k = 0; k < outputs; ++k) {
    const OutputCompileOptions* out = options.outputs.empty() ? nullptr : &options.outputs[k];
    const bool own_loss = out != nullptr && (out->loss || out->loss_config);
    GF_ASSIGN_OR_RETURN(Json loss, own_loss ? WriteLoss(out->loss.value_or(""), out->loss_config)
                                            : WriteLoss(options.loss, options.loss_config));
    losses.push_back(std::move(loss));
    weights.push_back(out != nullptr ? out->loss_weight : 1.0);
    GF_ASSIGN_OR_RETURN(Json list, WriteMetrics(out != nullptr && out->metrics ? *out->metrics : options.metrics,
                                                legacy_h5));
    metrics.push_back(std::move(list));
  }
  const bool several = outputs > 1;
  compile["loss"] = several && !options.outputs.empty() ? losses : losses[0];
  const bool weighted = !options.outputs.empty() && (several || weights[0] != 1.0);
  compile["loss_weights"] = weighted ? weights : Json(nullptr);
  compile["metrics"] = several ? metrics : metrics[0];
  return absl::OkStatus();
}

// Keras's base optimizer keys, as Keras 3 writes them.
void WriteOptimizerBase(const CompileOptions& options, Json& config) {
  if (!config.contains("weight_decay")) config["weight_decay"] = nullptr;
  config["clipnorm"] = config["clipvalue"] = config["global_clipnorm"] = nullptr;
  if (options.clip) {
    using Kind = optimizers::GradientClipping::Kind;
    const Kind kind = options.clip->kind;
    config[kind == Kind::kValue ? "clipvalue" : kind == Kind::kNorm ? "clipnorm" : "global_clipnorm"] =
        options.clip->threshold;
  }
  config["use_ema"] = false;
  config["ema_momentum"] = 0.99;
  config["ema_overwrite_frequency"] = config["loss_scale_factor"] = config["gradient_accumulation_steps"] = nullptr;
}

}  // namespace

namespace {

absl::StatusOr<Json> WriteFunctional(const Model& model, bool legacy_h5) {
  // Keras builds each layer from its build_config: the shapes are needed.
  GF_ASSIGN_OR_RETURN(const std::vector<TensorType> types, model.CallTypes());
  GF_ASSIGN_OR_RETURN(const LayerGraph layer_graph, model.layer_graph());
  const std::vector<int> order = KerasLayerOrder(layer_graph, model.layers().size());
  GF_ASSIGN_OR_RETURN(FunctionalJson graph,
                      WriteLayerGraph(model, &types, [&](const Layer& layer, const std::vector<TensorType>& inputs) {
                        absl::StatusOr<Json> json = WriteLayer(layer, inputs[0].shape, PolicyOf(model, layer), legacy_h5);
                        if (json.ok() && inputs.size() > 1 && json->contains("build_config")) {
                          Json shapes = Json::array();  // a merge layer is built on a list of shapes
                          for (const TensorType& in : inputs) shapes.push_back(BatchShapeJson(in.shape));
                          (*json)["build_config"]["input_shape"] = std::move(shapes);
                        }
                        return json;
                      }, !legacy_h5, &order));
  Json out = {{"class_name", "Functional"},
              {"config", {{"name", model.name()}, {"trainable", true}, {"layers", std::move(graph.layers)},
                          {"input_layers", std::move(graph.input_layers)},
                          {"output_layers", std::move(graph.output_layers)}}}};
  if (!legacy_h5) {
    out["module"] = "keras.src.models.functional";
    out["registered_name"] = "Functional";
  }
  return out;
}

}  // namespace

absl::StatusOr<Json> WriteModel(const Model& model, bool legacy_h5) {
  if (!model.sequential()) return WriteFunctional(model, legacy_h5);
  const Shape input = model.input().shape();
  Json layers = Json::array({InputLayerJson("input_layer", model.input().type(), !legacy_h5)});
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const Shape layer_input = i == 0 ? input : model.layer_output(i - 1).shape();
    GF_ASSIGN_OR_RETURN(Json layer, WriteLayer(*model.layers()[i], layer_input, PolicyOf(model, *model.layers()[i]), legacy_h5));
    layers.push_back(std::move(layer));
  }
  Json out = {{"class_name", "Sequential"},
              {"config", {{"name", model.name()}, {"trainable", true},
                          {"dtype", DTypePolicy(model.compile_options() ? model.compile_options()->dtype_policy : "float32")},
                          {"layers", std::move(layers)}, {"build_input_shape", BatchShapeJson(input)}}}};
  if (!legacy_h5) {
    out["module"] = "keras";
    out["registered_name"] = nullptr;
    out["build_config"] = {{"input_shape", BatchShapeJson(input)}};
  }
  return out;
}

absl::Status ReadMetrics(const Json& metrics, const std::string& where, std::vector<std::string>* notes,
                         std::vector<Metric>& out) {
  return ReadMetricEntry(metrics, where, notes, out);
}

absl::StatusOr<Json> WriteMetrics(const std::vector<Metric>& metrics, bool legacy_h5) {
  Json out = Json::array();
  for (const Metric& m : metrics) {
    if (!m.config) {
      out.push_back(m.name);
      continue;
    }
    GF_ASSIGN_OR_RETURN(Json object, WriteKerasObject(*m.config, legacy_h5 ? nullptr : "keras.metrics"));
    object["config"]["name"] = m.name;
    object["config"]["dtype"] = "float32";
    out.push_back(std::move(object));
  }
  return out;
}

absl::StatusOr<Json> WriteCompile(const Model& model, bool legacy_h5) {
  const CompileOptions* options = model.compile_options();
  if (options == nullptr) return absl::FailedPreconditionError("the model is not compiled");
  GF_ASSIGN_OR_RETURN(Json optimizer, WriteKerasObject(options->optimizer, legacy_h5 ? nullptr : "keras.optimizers"));
  Json& config = optimizer["config"];
  config["name"] = absl::AsciiStrToLower(optimizer["class_name"].get<std::string>());
  if (options->learning_rate_schedule) {
    GF_ASSIGN_OR_RETURN(config["learning_rate"],
                        WriteKerasObject(*options->learning_rate_schedule, "keras.optimizers.schedules"));
    config["learning_rate"]["config"]["name"] = config["learning_rate"]["class_name"];
  } else if (absl::StatusOr<double> rate = model.learning_rate(); rate.ok()) {
    config["learning_rate"] = *rate;  // Keras saves the current rate (callbacks may have changed it)
  }
  WriteOptimizerBase(*options, config);
  Json compile = {{"weighted_metrics", nullptr}, {"run_eagerly", false}, {"steps_per_execution", 1},
                  {"jit_compile", false}};
  GF_RETURN_IF_ERROR(WriteLossesAndMetrics(*options, OutputLayerNames(ConfigOf(model)).size(), legacy_h5, compile));
  compile[legacy_h5 ? "optimizer_config" : "optimizer"] = std::move(optimizer);
  return compile;
}

}  // namespace gradflow::nn::keras_config
