#include "nn/keras_config.h"

#include <cmath>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/describe.h"
#include "core/status.h"
#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "nn/losses.h"

namespace gradflow::nn::keras_config {
namespace {

using Json = nlohmann::json;

// ------------------------------------------------------------------ reading

// An InputLayer entry: its sample shape.
std::optional<Shape> ReadInputLayer(ConfigReader& layer) {
  layer.Accept({"class_name", "module", "registered_name", "name", "inbound_nodes"});
  ConfigReader config = layer.Sub("config");
  std::optional<Shape> shape = config.InputShape();
  if (config.ok() && !shape) config.Fail("an InputLayer needs 'batch_shape' (or 'batch_input_shape')");
  config.KerasDType();
  config.Unsupported("sparse", false, "gradflow's inputs are dense");
  config.Unsupported("ragged", false, "gradflow's inputs are dense");
  config.Unsupported("optional", false, "gradflow's inputs are always given");
  config.Accept({"name"});
  config.Finish();
  layer.Finish();
  return shape;
}

// "layers[2] 'dense_1'": a layer's place in messages.
std::string LayerPlace(const std::string& where, size_t i, const Json& layer) {
  std::string place = absl::StrCat(where, " layers[", i, "]");
  if (layer.is_object() && layer.contains("config") && layer["config"].is_object() &&
      layer["config"].contains("name") && layer["config"]["name"].is_string()) {
    absl::StrAppend(&place, " ", QuoteUserText(layer["config"]["name"].get<std::string>()));
  }
  return place;
}

bool IsInputLayer(const Json& layer) {
  return layer.is_object() && layer.contains("class_name") && layer["class_name"] == "InputLayer";
}

absl::Status ReadLayers(const Json& layers, const std::string& where, const std::optional<Shape>& build_shape,
                        std::vector<std::string>* notes, ModelConfig& out) {
  std::optional<Shape> input_shape = build_shape;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string place = LayerPlace(where, i, layers[i]);
    if (IsInputLayer(layers[i])) {
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

// A metric entry: "accuracy", a Keras metric object (its config's name or
// its class), or tf.keras 2.x's nested lists of them.
absl::Status ReadMetric(const Json& metric, const std::string& where, std::vector<std::string>& out) {
  if (metric.is_array()) {
    for (const Json& m : metric) GF_RETURN_IF_ERROR(ReadMetric(m, where, out));
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
      out.push_back(name);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": metric ", DescribeJson(metric), " is not one gradflow has (",
                                                 UnknownNameMessage(candidates.empty() ? "" : candidates[0],
                                                                    MetricNames()), ")"));
}

// The loss: a name, or a Keras loss object with its config.
std::string ReadLoss(ConfigReader& r) {
  const Json* loss = r.Required("loss");
  if (loss == nullptr) return "";
  if (loss->is_string()) return loss->get<std::string>();
  ConfigReader object = r.Sub("loss");
  const std::string name = KerasSnakeCase(object.String("class_name", std::nullopt));
  object.Accept({"module", "registered_name"});
  if (!object.IsNull("config")) {
    ConfigReader config = object.Sub("config");
    config.Accept({"name", "fn"});
    config.Unsupported("from_logits", false, "gradflow's losses read the model's output (end it in its activation)");
    config.Unsupported("label_smoothing", 0, "gradflow's losses have no label smoothing");
    config.Unsupported("axis", -1, "gradflow's losses reduce the last axis");
    config.Unsupported("ignore_class", nullptr, "gradflow's losses count every class");
    config.Unsupported("dtype", nullptr, "gradflow's losses compute in float32");
    const std::string reduction = config.String("reduction", "sum_over_batch_size");
    if (reduction != "sum_over_batch_size" && reduction != "auto") {
      config.FailField("reduction", absl::StrCat("is '", reduction, "'; gradflow's compile losses average over the batch"));
    }
    config.Finish();
  }
  object.Finish();
  return name;
}

// Keras optimizer config keys that are not a gradflow optimizer field: each
// is read here, and the rest go to the optimizer's description.
void ReadOptimizerExtras(ConfigReader& c, const std::string& class_name, CompileOptions& o) {
  c.Accept({"name", "jit_compile", "is_legacy_optimizer", "ema_momentum", "ema_overwrite_frequency"});
  c.Unsupported("use_ema", false, "gradflow keeps no moving average of the weights");
  c.Unsupported("loss_scale_factor", nullptr, "gradflow does not scale the loss");
  c.Unsupported("gradient_accumulation_steps", nullptr, "gradflow applies every batch's gradient");
  if (class_name != "AdamW") c.Unsupported("weight_decay", nullptr, "only gradflow's AdamW has weight decay");
  c.Unsupported("decay", 0, "tf.keras 2.x's decay is an InverseTimeDecay schedule in Keras 3; use that");
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

// {"class_name": "Adam", "config": {...}}: Keras's keys (and tf.keras 2.x's
// "lr") around the optimizer's own fields, which its description reads.
void ReadOptimizer(ConfigReader& r, const char* key, bool tf_keras_2, CompileOptions& o) {
  ConfigReader opt = r.Sub(key);
  std::string class_name = opt.String("class_name", std::nullopt);
  if (absl::StartsWith(class_name, "Custom>")) class_name = class_name.substr(7);  // tf.keras 2.11+
  opt.Accept({"module", "registered_name"});
  ConfigReader c = opt.Sub("config");
  if (!c.ok()) return;
  ReadOptimizerExtras(c, class_name, o);
  Json fields = Json::object();
  const Json& given = *opt.Find("config");
  for (auto it = given.begin(); it != given.end(); ++it) fields[it.key() == "lr" ? "learning_rate" : it.key()] = it.value();
  for (const char* extra : {"name", "jit_compile", "is_legacy_optimizer", "ema_momentum", "ema_overwrite_frequency",
                            "use_ema", "loss_scale_factor", "gradient_accumulation_steps", "decay", "clipvalue",
                            "clipnorm", "global_clipnorm"}) {
    fields.erase(extra);
  }
  if (class_name != "AdamW") fields.erase("weight_decay");
  if (fields.contains("learning_rate") && fields["learning_rate"].is_object()) {
    Json holder = {{"learning_rate", fields["learning_rate"]}};
    ConfigReader schedule = c.Over(holder, c.where());
    o.learning_rate_schedule = ReadDescribed<optimizers::Schedule>(schedule, "learning_rate", {.keras_names = true});
    fields.erase("learning_rate");
  }
  Json holder = {{"optimizer", {{"class_name", class_name}, {"config", fields}}}};
  ConfigReader described = c.Over(holder, opt.where());
  if (auto optimizer = ReadDescribed<optimizers::Optimizer>(described, "optimizer", {})) o.optimizer = *optimizer;
  static_cast<void>(tf_keras_2);
  opt.Finish();
}

}  // namespace

absl::StatusOr<ModelConfig> ReadModel(const Json& model, const std::string& where, std::vector<std::string>* notes) {
  absl::Status status;
  ConfigReader r(model, where, status, notes);
  const std::string class_name = r.String("class_name", std::nullopt);
  if (r.ok() && class_name != "Sequential") {
    r.FailField("class_name", absl::StrCat("is ", QuoteUserText(class_name),
                                           "; gradflow loads Sequential models (rebuild a Functional one as a chain)"));
  }
  r.Accept({"module", "registered_name", "build_config", "compile_config"});
  ConfigReader c = r.Sub("config");
  ModelConfig out;
  out.name = c.String("name", out.name);
  const bool trainable = c.Bool("trainable", true);
  c.KerasDType();
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
  GF_RETURN_IF_ERROR(ReadLayers(*layers, where, build_shape, notes, out));
  if (!trainable) {
    for (const LayerPtr& layer : out.layers) layer->trainable = false;  // Keras's model.trainable = False
  }
  return out;
}

absl::StatusOr<CompileOptions> ReadCompile(const Json& compile, bool tf_keras_2, const std::string& where,
                                           std::vector<std::string>* notes) {
  absl::Status status;
  ConfigReader r(compile, where, status, notes);
  CompileOptions o;
  o.loss = ReadLoss(r);
  if (r.ok()) {
    absl::StatusOr<const LossInfo*> loss = FindLoss(o.loss);
    if (!loss.ok()) r.FailField("loss", std::string(loss.status().message()));
  }
  if (const Json* metrics = r.Find("metrics"); metrics != nullptr && !metrics->is_null() && r.ok()) {
    GF_RETURN_IF_ERROR(ReadMetric(*metrics, where, o.metrics));
  }
  ReadOptimizer(r, r.IsNull("optimizer_config") ? "optimizer" : "optimizer_config", tf_keras_2, o);
  r.Unsupported("loss_weights", nullptr, "gradflow models have one output");
  r.Unsupported("weighted_metrics", nullptr, "gradflow has no sample weights yet");
  r.Unsupported("sample_weight_mode", nullptr, "gradflow has no sample weights yet");
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

Json DTypePolicy() {
  return {{"module", "keras"}, {"class_name", "DTypePolicy"}, {"config", {{"name", "float32"}}},
          {"registered_name", nullptr}};
}

// [null, d1, d2, ...]: a Keras batch shape.
Json BatchShape(const Shape& shape) {
  Json dims = Json::array({nullptr});
  for (int i = 1; i < shape.rank(); ++i) dims.push_back(shape[i]);
  return dims;
}

absl::StatusOr<Json> WriteLayer(const Layer& layer, const Shape& input, bool legacy_h5) {
  const LayerTypeInfo* type = FindLayerType(layer.type());
  if (type == nullptr || !type->in_keras) {
    return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name(), "' (", layer.type(),
                                                      ") has no Keras class, so Keras could not load the file"));
  }
  GF_ASSIGN_OR_RETURN(Json json, LayerToJson(layer));
  Json& config = json["config"];
  config.erase("input_shape");
  config["dtype"] = DTypePolicy();
  if (!legacy_h5) {
    json["module"] = "keras.layers";
    json["registered_name"] = nullptr;
    json["build_config"] = {{"input_shape", BatchShape(input)}};
  }
  return json;
}

// A described struct as a Keras 3 object; FailedPrecondition for one
// Keras has no class for.
template <typename Variant>
absl::StatusOr<Json> WriteKerasObject(const Variant& value, const char* module, bool legacy_h5) {
  Json json = DescribedToJson(value, legacy_h5 ? nullptr : module);
  const bool keras_class = std::visit([](const auto& v) {
    if constexpr (requires { std::decay_t<decltype(v)>::kKerasName; }) return true;
    return false;
  }, value);
  if (!keras_class && !std::is_same_v<Variant, optimizers::Optimizer>) {
    return absl::FailedPreconditionError(absl::StrCat("the ", json["class_name"].get<std::string>(),
                                                      " schedule has no Keras class, so Keras could not load the file"));
  }
  return json;
}

}  // namespace

absl::StatusOr<Json> WriteModel(const Sequential& model, bool legacy_h5) {
  const Shape input = model.input().shape();
  Json input_layer = {{"class_name", "InputLayer"},
                      {"config", {{"batch_shape", BatchShape(input)}, {"dtype", "float32"}, {"sparse", false},
                                  {"ragged", false}, {"name", "input_layer"}}}};
  if (!legacy_h5) {
    input_layer["module"] = "keras.layers";
    input_layer["registered_name"] = nullptr;
  }
  Json layers = Json::array({input_layer});
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const Shape layer_input = i == 0 ? input : model.layer_output(i - 1).shape();
    GF_ASSIGN_OR_RETURN(Json layer, WriteLayer(*model.layers()[i], layer_input, legacy_h5));
    layers.push_back(std::move(layer));
  }
  Json out = {{"class_name", "Sequential"},
              {"config", {{"name", model.name()}, {"trainable", true}, {"dtype", DTypePolicy()},
                          {"layers", std::move(layers)}, {"build_input_shape", BatchShape(input)}}}};
  if (!legacy_h5) {
    out["module"] = "keras";
    out["registered_name"] = nullptr;
    out["build_config"] = {{"input_shape", BatchShape(input)}};
  }
  return out;
}

absl::StatusOr<Json> WriteCompile(const Sequential& model, bool legacy_h5) {
  const CompileOptions* options = model.compile_options();
  if (options == nullptr) return absl::FailedPreconditionError("the model is not compiled");
  GF_ASSIGN_OR_RETURN(Json optimizer, WriteKerasObject(options->optimizer, "keras.optimizers", legacy_h5));
  const std::string class_name = optimizer["class_name"].get<std::string>();
  Json& config = optimizer["config"];
  config["name"] = absl::AsciiStrToLower(class_name);
  if (options->learning_rate_schedule) {
    GF_ASSIGN_OR_RETURN(config["learning_rate"],
                        WriteKerasObject(*options->learning_rate_schedule, "keras.optimizers.schedules", legacy_h5));
  } else if (absl::StatusOr<double> rate = model.learning_rate(); rate.ok()) {
    config["learning_rate"] = *rate;  // Keras saves the current rate (callbacks may have changed it)
  }
  if (!config.contains("weight_decay")) config["weight_decay"] = nullptr;
  config["clipnorm"] = config["clipvalue"] = config["global_clipnorm"] = nullptr;
  if (options->clip) {
    using Kind = optimizers::GradientClipping::Kind;
    const Kind kind = options->clip->kind;
    config[kind == Kind::kValue ? "clipvalue" : kind == Kind::kNorm ? "clipnorm" : "global_clipnorm"] =
        options->clip->threshold;
  }
  config["use_ema"] = false;
  config["ema_momentum"] = 0.99;
  config["ema_overwrite_frequency"] = config["loss_scale_factor"] = config["gradient_accumulation_steps"] = nullptr;
  GF_ASSIGN_OR_RETURN(const LossInfo* loss, FindLoss(options->loss));
  Json compile = {{"loss", loss->names[0]}, {"loss_weights", nullptr}, {"metrics", options->metrics},
                  {"weighted_metrics", nullptr}, {"run_eagerly", false}, {"steps_per_execution", 1},
                  {"jit_compile", false}};
  compile[legacy_h5 ? "optimizer_config" : "optimizer"] = std::move(optimizer);
  return compile;
}

}  // namespace gradflow::nn::keras_config
