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
#include "core/bounded_json.h"
#include "core/initializers.h"
#include "core/status.h"
#include "nn/config_reader.h"
#include "nn/keras_config.h"
#include "nn/layer_graph_json.h"
#include "nn/dtype_policy.h"
#include "nn/layer_registry.h"

namespace gradflow::nn {
namespace {

using Json = nlohmann::json;

// The reader of every config object (nn/config_reader.h).
using Reader = ConfigReader;
std::string Describe(const Json& value) { return DescribeJson(value); }

// ------------------------------------------------------------ optimizers

const char* ClipKindName(optimizers::GradientClipping::Kind kind) {
  switch (kind) {
    case optimizers::GradientClipping::Kind::kValue: return "value";
    case optimizers::GradientClipping::Kind::kNorm: return "norm";
    case optimizers::GradientClipping::Kind::kGlobalNorm: return "global_norm";
  }
  return "global_norm";
}

// "metrics": names and Keras metric objects, as Keras's compile config
// writes them (keras_config::ReadMetrics).
void ReadMetricList(Reader& r, std::vector<Metric>& out) {
  const Json* metrics = r.Find("metrics");
  if (metrics == nullptr || metrics->is_null()) return;
  // Each metric is a graph node evaluated every batch; a file listing
  // 100,000 made evaluate take 48 s.
  if (!metrics->is_array() || metrics->size() > kMaxConfigMetrics) {
    r.FailField("metrics", metrics->is_array()
                               ? absl::StrCat("lists ", metrics->size(), " metrics, more than the ",
                                              kMaxConfigMetrics, " a model config may have")
                               : absl::StrCat("must be an array of metric names or objects, got ", Describe(*metrics)));
    return;
  }
  for (const Json& m : *metrics) {
    if (m.is_array()) {
      r.FailField("metrics", "must list metric names or objects, not nested lists");
      return;
    }
  }
  absl::Status read = keras_config::ReadMetrics(*metrics, r.where() + ".metrics", nullptr, out);
  if (!read.ok()) r.Fail(std::string(read.message()));
}

// Names as strings, configured metrics as Keras 3 objects; a metric object
// without a Keras class (none of the public ones) is written by its name.
Json MetricsJson(const std::vector<Metric>& metrics) {
  absl::StatusOr<Json> json = keras_config::WriteMetrics(metrics, /*legacy_h5=*/false);
  if (json.ok()) return *json;
  Json names = Json::array();
  for (const Metric& m : metrics) names.push_back(m.name);
  return names;
}

// "outputs": [{"loss": ..., "loss_config": ..., "loss_weight": ..., "metrics": ...}, ...]
// (null: the model's), one per output of a functional model.
void ReadOutputOptions(Reader& r, CompileOptions& o) {
  const Json* outputs = r.Find("outputs");
  if (outputs == nullptr || outputs->is_null()) return;
  if (!outputs->is_array() || outputs->size() > kMaxConfigListLength) {
    r.FailField("outputs", absl::StrCat("must be a list of at most ", kMaxConfigListLength, " objects, got ",
                                        Describe(*outputs)));
    return;
  }
  for (size_t i = 0; i < outputs->size() && r.ok(); ++i) {
    Reader e = r.Over((*outputs)[i], absl::StrCat(r.where(), ".outputs[", i, "]"));
    OutputCompileOptions& out = o.outputs.emplace_back();
    if (!e.IsNull("loss")) out.loss = e.String("loss", std::nullopt);
    if (!e.IsNull("loss_config")) {
      out.loss_config = ReadDescribed<losses::Loss>(e, "loss_config", {.keras_names = true, .validate = true});
    }
    out.loss_weight = e.Number("loss_weight", 1.0);
    if (!e.IsNull("metrics")) ReadMetricList(e, out.metrics.emplace());
    e.Finish();
  }
}

Json OutputOptionsJson(const std::vector<OutputCompileOptions>& outputs) {
  Json list = Json::array();
  for (const OutputCompileOptions& out : outputs) {
    list.push_back({{"loss", out.loss ? Json(*out.loss) : Json(nullptr)},
                    {"loss_config", out.loss_config ? DescribedToJson(*out.loss_config, "keras.losses") : Json(nullptr)},
                    {"loss_weight", out.loss_weight},
                    {"metrics", out.metrics ? MetricsJson(*out.metrics) : Json(nullptr)}});
  }
  return list;
}

CompileOptions ReadCompileOptions(Reader& r) {
  CompileOptions o;
  o.loss = r.String("loss", o.loss);
  if (!r.IsNull("loss_config")) {
    o.loss_config = ReadDescribed<losses::Loss>(r, "loss_config", {.keras_names = true, .validate = true});
  }
  ReadMetricList(r, o.metrics);
  ReadOutputOptions(r, o);
  o.seed = r.Unsigned("seed", o.seed);
  o.sample_weights = r.Bool("sample_weights", o.sample_weights);
  o.dtype_policy = r.String("dtype_policy", o.dtype_policy);
  if (absl::StatusOr<DTypePolicyInfo> policy = FindDTypePolicy(o.dtype_policy, "is"); r.ok() && !policy.ok()) {
    r.FailField("dtype_policy", std::string(policy.status().message()));
  }
  // Ranges are checked below, with the clip and schedule (ValidateOptimizer).
  if (auto optimizer = ReadDescribed<optimizers::Optimizer>(r, "optimizer", {})) {
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
        ReadDescribed<optimizers::Schedule>(r, "learning_rate_schedule", {});
  }
  if (r.ok()) {
    absl::Status valid = optimizers::ValidateOptimizer(
        o.optimizer, {.clip = o.clip, .schedule = o.learning_rate_schedule});
    if (!valid.ok()) r.Fail(std::string(valid.message()));
  }
  return o;
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
  // Size, depth and list lengths are checked before the text is parsed, so
  // no parser or destructor recursion depends on the input.
  GF_ASSIGN_OR_RETURN(Json root, ParseBoundedJson(text, "model config", {.max_bytes = kMaxModelConfigBytes,
                                                                          .max_depth = kMaxModelConfigDepth,
                                                                          .max_list_length = kMaxConfigListLength}));
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
  if (r.ok() && class_name != "Sequential" && class_name != "Functional") {
    r.FailField("class_name", absl::StrCat("is ", QuoteUserText(class_name), "; expected Sequential or Functional"));
  }
  if (class_name == "Functional") r.Accept({"input_layers", "output_layers"});
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
  if (class_name == "Functional") {
    GF_ASSIGN_OR_RETURN(FunctionalParts parts,
                        ReadLayerGraph(root, "model config", nullptr, [](const Json& entry, const std::string& where) {
                          return LayerFromJson(entry, where);
                        }));
    config.layers = std::move(parts.layers);
    config.graph = std::move(parts.graph);
    return config;
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    GF_ASSIGN_OR_RETURN(LayerPtr layer, LayerFromJson((*layers)[i], absl::StrCat("model config: layers[", i, "]")));
    config.layers.push_back(std::move(layer));
  }
  return config;
}

}  // namespace

absl::StatusOr<LayerPtr> LayerFromJson(const Json& layer, const std::string& where_in, std::vector<std::string>* notes) {
  absl::Status status;
  Reader r(layer, where_in, status);
  const std::string class_name = r.String("class_name", std::nullopt);
  const Json* config = r.Required("config");
  r.Accept({"module", "registered_name", "build_config", "name", "inbound_nodes"});  // Keras 3 / functional configs
  r.Finish();
  if (!status.ok()) return status;
  const std::string where = absl::StrCat(where_in, " (", TruncateUserText(class_name), ")");
  const LayerTypeInfo* type = FindLayerType(class_name);
  if (type == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": unknown layer type ", QuoteUserText(class_name),
                                                   "; known types: ", absl::StrJoin(LayerTypeNames(), ", ")));
  }
  Reader common(*config, absl::StrCat(where, ".config"), status);
  const std::string name = common.String("name", "");
  const bool trainable = common.Bool("trainable", true);
  std::optional<Shape> input_shape = common.InputShape();
  std::string dtype_policy = common.KerasDTypePolicy();
  common.Unsupported("activity_regularizer", nullptr, "gradflow has no activity regularizers");
  if (common.ok()) {
    absl::Status name_ok = CheckLayerName(name);
    if (!name_ok.ok()) common.Fail(std::string(name_ok.message()));
  }
  if (!status.ok()) return status;
  absl::StatusOr<LayerPtr> made;
  try {
    made = type->from_json(*config, notes);
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
  result->dtype_policy = std::move(dtype_policy);
  if (input_shape) result->set_input_shape(input_shape);
  return result;
}

absl::StatusOr<Json> LayerToJson(const Layer& layer) {
  Json config = layer.Config();
  if (config.is_null()) {
    return absl::UnimplementedError(absl::StrCat(
        "layer '", layer.name(), "' (", layer.type(), ") does not describe its settings (its Config() returns null), so ",
        "the model cannot be saved, cloned or written for Keras; override Layer::Config() to return its settings as a ",
        "JSON object and register a reader for them with nn::RegisterLayerType (nn/model_config.h), or save the ",
        "weights only (Model::SaveWeights)"));
  }
  if (!config.is_object()) {
    return absl::InternalError(absl::StrCat("layer '", layer.name(), "' (", layer.type(),
                                            "): Config() must return a JSON object"));
  }
  if (FindLayerType(layer.type()) == nullptr) {
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
  if (!layer.dtype_policy.empty()) config["dtype"] = layer.dtype_policy;
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
                  {"metrics", MetricsJson(options.metrics)},
                  {"seed", options.seed},
                  {"optimizer", DescribedToJson(options.optimizer)},
                  {"clip", nullptr},
                  {"learning_rate_schedule", nullptr},
                  {"loss_config", nullptr}};
  if (options.loss_config) compile["loss_config"] = DescribedToJson(*options.loss_config, "keras.losses");
  if (!options.outputs.empty()) compile["outputs"] = OutputOptionsJson(options.outputs);
  if (options.sample_weights) compile["sample_weights"] = true;
  if (options.dtype_policy != DTypePolicies()[0].name) compile["dtype_policy"] = options.dtype_policy;
  if (options.clip) {
    compile["clip"] = {{"kind", ClipKindName(options.clip->kind)}, {"threshold", options.clip->threshold}};
  }
  if (options.learning_rate_schedule) {
    compile["learning_rate_schedule"] =
        DescribedToJson(*options.learning_rate_schedule);
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

ModelConfig ConfigOf(const Model& model) {
  ModelConfig config{.name = model.name(), .layers = model.layers()};
  if (!model.sequential()) config.graph = *model.layer_graph();  // a functional model always has one
  if (model.compile_options() != nullptr) config.compile = *model.compile_options();
  return config;
}

absl::StatusOr<Model> ModelFromConfig(const ModelConfig& config) {
  if (config.graph) return Model::FromLayerGraph(config.name, config.layers, *config.graph);
  return Sequential(config.layers, config.name);
}

absl::StatusOr<std::string> ModelConfigToJson(const ModelConfig& config) {
  Json root = {{"format", kModelConfigFormat},
               {"format_version", kModelConfigFormatVersion},
               {"class_name", config.graph ? "Functional" : "Sequential"},
               {"name", config.name}};
  if (config.graph) {
    GF_ASSIGN_OR_RETURN(const Model model, ModelFromConfig(config));
    // Without the tensors' shapes: writing what was read needs no build.
    GF_ASSIGN_OR_RETURN(FunctionalJson graph,
                        WriteLayerGraph(model, /*call_types=*/nullptr, [](const Layer& layer, const std::vector<TensorType>&) {
                          return LayerToJson(layer);
                        }, /*keras_module=*/false));
    root["layers"] = std::move(graph.layers);
    root["input_layers"] = std::move(graph.input_layers);
    root["output_layers"] = std::move(graph.output_layers);
  } else {
    Json layers = Json::array();
    for (const LayerPtr& layer : config.layers) {
      if (layer == nullptr) return absl::InvalidArgumentError("the model has a null layer");
      GF_ASSIGN_OR_RETURN(Json json, LayerToJson(*layer));
      layers.push_back(std::move(json));
    }
    root["layers"] = std::move(layers);
  }
  if (config.compile) root["compile"] = CompileOptionsToJson(*config.compile);
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status RegisterLayerType(const std::string& class_name, LayerFactory factory) {
  auto from_json = [factory = std::move(factory)](const Json& config, std::vector<std::string>*) {
    return factory(config);
  };
  return RegisterLayerTypeInfo({class_name, std::move(from_json), /*example_config=*/""});
}

std::vector<std::string> LayerTypeNames() {
  std::vector<std::string> names;
  for (const LayerTypeInfo& type : LayerTypes()) names.push_back(type.class_name);
  return names;
}

}  // namespace gradflow::nn
