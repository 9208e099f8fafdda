// Model::Save / SaveWeights / LoadWeights / ToDot, nn::LoadModel and
// nn::CloneModel (see nn/saving.h for the file layout).

#include "nn/saving.h"

#include <algorithm>
#include <map>
#include <set>
#include <variant>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/bounded_json.h"
#include "core/checkpoint.h"
#include "core/status.h"
#include "nn/keras.h"
#include "nn/model_config.h"
#include "nn/model_file.h"
#include "nn/validation.h"

namespace gradflow::nn {

using Json = nlohmann::json;

namespace {

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
}

// "gradflow.layers": the layers with weights, in model order.
std::string LayerWeightsJson(const Model& model) {
  Json layers = Json::array();
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const std::vector<Output>& variables = model.layer_variables(i);
    if (variables.empty()) continue;
    Json names = Json::array();
    for (const Output& v : variables) names.push_back(v.node->name);
    layers.push_back({{"name", model.layers()[i]->name()}, {"weights", names}});
  }
  return layers.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Parses "gradflow.layers" into (layer name, weight names) in order.
absl::StatusOr<std::vector<std::pair<std::string, std::vector<std::string>>>> ParseLayerWeights(
    const std::string& text) {
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("metadata '", kLayerWeightsMetadataKey, "' ", why));
  };
  absl::StatusOr<Json> parsed = ParseBoundedJson(
      text, absl::StrCat("metadata '", kLayerWeightsMetadataKey, "'"), {.max_bytes = kMaxModelConfigBytes});
  if (!parsed.ok()) return parsed.status();
  const Json& root = *parsed;
  if (!root.is_array()) return bad("is not a JSON array");
  std::vector<std::pair<std::string, std::vector<std::string>>> layers;
  for (const Json& layer : root) {
    if (!layer.is_object() || layer.size() != 2 || !layer.contains("name") || !layer.contains("weights") ||
        !layer["name"].is_string() || !layer["weights"].is_array()) {
      return bad("must list {\"name\": string, \"weights\": [string, ...]} objects");
    }
    std::vector<std::string> weights;
    for (const Json& w : layer["weights"]) {
      if (!w.is_string()) return bad("has a weight name that is not a string");
      weights.push_back(w.get<std::string>());
    }
    layers.push_back({layer["name"].get<std::string>(), std::move(weights)});
  }
  return layers;
}

std::string TypeString(const Tensor& t) { return TensorType{t.dtype(), t.shape()}.ToString(); }

std::vector<std::string> LayerNames(const Model& model) {
  std::vector<std::string> names;
  for (const LayerPtr& layer : model.layers()) {
    if (!layer->name().empty()) names.push_back(layer->name());
  }
  return names;
}

// Save's check that LoadModel files every tensor where it came from: layer
// weights to their layers, the rest as optimizer state it accepts.
absl::Status CheckTensorsLoadable(const std::string& path, const Model& model,
                                  const std::map<std::string, Tensor>& tensors) {
  std::set<std::string> layer_weights;
  for (size_t i = 0; i < model.layers().size(); ++i) {
    for (const Output& v : model.layer_variables(i)) layer_weights.insert(v.node->name);
  }
  const std::vector<std::string> layers = LayerNames(model);
  for (const auto& [name, tensor] : tensors) {
    const bool read_as_layer_weight = !LayerOfTensor(name, layers).empty();
    const bool is_layer_weight = layer_weights.count(name) > 0;
    std::string problem;
    if (read_as_layer_weight != is_layer_weight) {
      problem = absl::StrCat("its tensor '", name, "' would be read back as ",
                             read_as_layer_weight ? "a layer weight" : "optimizer state");
    } else if (absl::Status state = is_layer_weight ? absl::OkStatus() : CheckOptimizerState(name, tensor);
               !state.ok()) {
      problem = std::string(state.message());
    }
    if (!problem.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("Save: '", path, "' was not written: ", problem));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string LoadWeightsReport::ToString() const {
  std::string s = absl::StrCat("loaded ", loaded.size(), " weights");
  if (!missing.empty()) absl::StrAppend(&s, "; missing from the file: ", absl::StrJoin(missing, ", "));
  if (!mismatched.empty()) {
    absl::StrAppend(&s, "; skipped (shape mismatch): ");
    for (size_t i = 0; i < mismatched.size(); ++i) {
      absl::StrAppend(&s, i ? ", " : "", mismatched[i].name, " (model ", mismatched[i].model_shape.ToString(),
                      ", file ", mismatched[i].file_shape.ToString(), ")");
    }
  }
  if (!unused.empty()) absl::StrAppend(&s, "; unused file tensors: ", absl::StrJoin(unused, ", "));
  return s;
}

absl::Status Model::Save(const std::string& path, SaveOptions options) {
  auto serialized = Serialize();
  const ModelFormat format = options.format.value_or(ModelFormatForPath(path));
  if (format != ModelFormat::kGradflow) return SaveKerasModel(*this, path, format, options);
  if (!compiled()) {
    return absl::FailedPreconditionError(
        "Save: compile the model first (Compile creates its weights and fixes the layer names)");
  }
  ModelConfig config = ConfigOf(*this);
  // Keras saves the optimizer's current rate (callbacks may have changed it).
  if (absl::StatusOr<double> rate = learning_rate(); rate.ok()) {
    std::visit([&](auto& optimizer) { optimizer.learning_rate = *rate; }, config.compile->optimizer);
  }
  GF_ASSIGN_OR_RETURN(std::string config_json, ModelConfigToJson(config));
  // Never write a file LoadModel would refuse: read the configuration back
  // by LoadModel's own rules before anything touches the disk.
  if (absl::StatusOr<ModelConfig> back = ParseModelConfig(config_json); !back.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Save: '", path, "' was not written: the model could not be loaded back from it (",
        back.status().message(), ")"));
  }

  std::map<std::string, Tensor> tensors;
  for (const std::vector<Output>& variables : layer_variables_) {
    for (const Output& v : variables) {
      GF_ASSIGN_OR_RETURN(tensors[v.node->name], session_->variables().Get(v.node->name));
    }
  }
  if (options.include_optimizer) {
    for (const std::string& name : session_->variables().Names()) {
      if (tensors.count(name)) continue;
      GF_ASSIGN_OR_RETURN(tensors[name], session_->variables().Get(name));
    }
  }
  GF_RETURN_IF_ERROR(CheckTensorsLoadable(path, *this, tensors));
  std::map<std::string, std::string> metadata = {{kModelConfigMetadataKey, config_json},
                                                 {kLayerWeightsMetadataKey, LayerWeightsJson(*this)}};
  // With the optimizer state, where Fit stands, so training resumes exactly.
  if (options.include_optimizer) {
    metadata[kFitStateMetadataKey] = Json{{"epochs_shuffled", epochs_shuffled_}}.dump();
  }
  return SaveCheckpoint(path, tensors, metadata);
}

absl::Status Model::SaveWeights(const std::string& path) {
  auto serialized = Serialize();
  if (!compiled()) return absl::FailedPreconditionError("SaveWeights: compile the model first");
  std::map<std::string, Tensor> tensors;
  for (const std::vector<Output>& variables : layer_variables_) {
    for (const Output& v : variables) {
      GF_ASSIGN_OR_RETURN(tensors[v.node->name], session_->variables().Get(v.node->name));
    }
  }
  return SaveCheckpoint(path, tensors, {{kLayerWeightsMetadataKey, LayerWeightsJson(*this)}});
}

namespace {

// The file's layers with weights, in order ("gradflow.layers").
using FileLayers = std::vector<std::pair<std::string, std::vector<std::string>>>;

// Which model weight takes which file tensor; decided in full before
// anything is written, so a failed load changes nothing.
struct WeightAssignments {
  std::vector<std::pair<std::string, std::string>> model_from_file;
  std::set<std::string> used;  // file tensors assigned
};

// by_name: each model weight takes the file tensor of its own name.
absl::Status AssignByName(const Model& model, const Checkpoint& file, const std::string& path,
                          bool skip_mismatch, LoadWeightsReport& report, WeightAssignments& out) {
  for (size_t i = 0; i < model.layers().size(); ++i) {
    for (const Output& v : model.layer_variables(i)) {
      const std::string& name = v.node->name;
      auto it = file.tensors.find(name);
      if (it == file.tensors.end()) {
        report.missing.push_back(name);
        continue;
      }
      out.used.insert(name);
      if (it->second.dtype() != v.dtype() || it->second.shape() != v.shape()) {
        if (!skip_mismatch) {
          return absl::InvalidArgumentError(absl::StrCat(
              "'", path, "': '", name, "' is ", TypeString(it->second), " in the file but ",
              v.type().ToString(), " in the model (skip_mismatch skips such weights)"));
        }
        report.mismatched.push_back({name, v.shape(), it->second.shape()});
        continue;
      }
      out.model_from_file.push_back({name, name});
    }
  }
  return absl::OkStatus();
}

// The k-th model layer with weights against the k-th file layer, weight by weight.
absl::Status AssignLayer(const Checkpoint& file, const std::string& path, const std::string& model_layer,
                         const std::vector<Output>& variables, size_t k,
                         const FileLayers::value_type& file_layer, WeightAssignments& out) {
  const auto& [file_layer_name, file_weights] = file_layer;
  if (variables.size() != file_weights.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "': layer ", k, " with weights is '", file_layer_name, "' with ", file_weights.size(),
        " weights in the file but '", model_layer, "' with ", variables.size(), " in the model"));
  }
  for (size_t j = 0; j < variables.size(); ++j) {
    auto it = file.tensors.find(file_weights[j]);
    if (it == file.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': the layer list names '",
                                                     file_weights[j], "' but the file has no such tensor"));
    }
    const Output& v = variables[j];
    if (it->second.dtype() != v.dtype() || it->second.shape() != v.shape()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "': '", file_weights[j], "' is ", TypeString(it->second), " but the model's '",
          v.node->name, "' is ", v.type().ToString()));
    }
    out.used.insert(file_weights[j]);
    out.model_from_file.push_back({v.node->name, file_weights[j]});
  }
  return absl::OkStatus();
}

// In order: the model's layers with weights against the file's layer list.
absl::Status AssignByOrder(const Model& model, const Checkpoint& file, const std::string& path,
                           const std::optional<FileLayers>& file_layers, WeightAssignments& out) {
  if (!file_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' does not record its layer order (metadata '", kLayerWeightsMetadataKey,
        "'); load it with by_name = true"));
  }
  std::vector<size_t> weighted;
  for (size_t i = 0; i < model.layers().size(); ++i) {
    if (!model.layer_variables(i).empty()) weighted.push_back(i);
  }
  if (weighted.size() != file_layers->size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' has ", file_layers->size(), " layers with weights but the model has ",
        weighted.size(), "; load by_name to match the layers that agree"));
  }
  for (size_t k = 0; k < weighted.size(); ++k) {
    GF_RETURN_IF_ERROR(AssignLayer(file, path, model.layers()[weighted[k]]->name(),
                                   model.layer_variables(weighted[k]), k, (*file_layers)[k], out));
  }
  return absl::OkStatus();
}

// The file's layer weights (all its tensors if it does not list them) that
// went nowhere.
std::vector<std::string> UnusedFileWeights(const Checkpoint& file, const std::optional<FileLayers>& file_layers,
                                           const std::set<std::string>& used) {
  std::vector<std::string> candidates, unused;
  if (file_layers) {
    for (const auto& [layer, weights] : *file_layers) candidates.insert(candidates.end(), weights.begin(), weights.end());
  } else {
    for (const auto& [name, tensor] : file.tensors) candidates.push_back(name);
  }
  for (const std::string& name : candidates) {
    if (!used.count(name)) unused.push_back(name);
  }
  return unused;
}

}  // namespace

absl::StatusOr<LoadWeightsReport> Model::LoadWeights(const std::string& path,
                                                          LoadWeightsOptions options) {
  auto serialized = Serialize();
  if (!compiled()) {
    return absl::FailedPreconditionError(
        "LoadWeights: compile the model first (its weights and their shapes exist after Compile)");
  }
  GF_ASSIGN_OR_RETURN(Checkpoint file, LoadCheckpoint(path));
  std::optional<FileLayers> file_layers;
  if (auto it = file.metadata.find(kLayerWeightsMetadataKey); it != file.metadata.end()) {
    absl::StatusOr<FileLayers> parsed = ParseLayerWeights(it->second);
    if (!parsed.ok()) return WithPath(path, parsed.status());
    file_layers = *std::move(parsed);
  }
  LoadWeightsReport report;
  WeightAssignments assignments;
  GF_RETURN_IF_ERROR(options.by_name
                         ? AssignByName(*this, file, path, options.skip_mismatch, report, assignments)
                         : AssignByOrder(*this, file, path, file_layers, assignments));
  for (const auto& [model_name, file_name] : assignments.model_from_file) {
    GF_RETURN_IF_ERROR(session_->variables().Set(model_name, file.tensors.at(file_name)));
    report.loaded.push_back(model_name);
  }
  report.unused = UnusedFileWeights(file, file_layers, assignments.used);
  return report;
}

absl::StatusOr<std::string> Model::ToDot() const {
  if (graph_ == nullptr) return absl::FailedPreconditionError("ToDot: compile the model first");
  return graph_->ToDot();
}

absl::StatusOr<std::string> Model::LayersToDot() const {
  GF_ASSIGN_OR_RETURN(const LayerGraph graph, layer_graph());
  GF_ASSIGN_OR_RETURN(const std::vector<TensorType> types, CallTypes());
  std::vector<int> calls_made(layers_.size(), 0);
  std::string dot = absl::StrCat("digraph ", DotQuoted({name_}), " {\n  node [shape=box, fontname=\"Helvetica\"];\n");
  for (size_t i = 0, next_input = 0; i < graph.calls.size(); ++i) {
    const LayerGraph::Call& call = graph.calls[i];
    const std::string shape = (call.layer < 0 ? graph.input_types[next_input] : types[i]).ToString();
    std::string name, type = "InputLayer";
    if (call.layer < 0) {
      name = graph.input_names[next_input++];
    } else {
      const int k = calls_made[call.layer]++;  // a shared layer's later calls: "(call k)"
      name = k == 0 ? layers_[call.layer]->name() : absl::StrCat(layers_[call.layer]->name(), " (call ", k, ")");
      type = layers_[call.layer]->type();
    }
    absl::StrAppend(&dot, "  c", i, " [label=", DotQuoted({name, type, shape}), "];\n");
    for (int input : call.inputs) absl::StrAppend(&dot, "  c", input, " -> c", i, ";\n");
  }
  return dot + "}\n";
}

absl::StatusOr<Model> LoadModel(const std::string& path, LoadModelOptions options) {
  if (absl::StatusOr<ModelFormat> format = DetectModelFormat(path); format.ok() && *format != ModelFormat::kGradflow) {
    return LoadKerasModel(path, options);
  }
  GF_ASSIGN_OR_RETURN(Checkpoint file, LoadCheckpoint(path));
  auto config_text = file.metadata.find(kModelConfigMetadataKey);
  if (config_text == file.metadata.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' has no model configuration (metadata '", kModelConfigMetadataKey,
        "'): it holds weights only (SaveWeights, or another tool); build the model and call LoadWeights"));
  }
  absl::StatusOr<ModelConfig> config = ParseModelConfig(config_text->second);
  if (!config.ok()) return WithPath(path, config.status());

  absl::StatusOr<Model> built = ModelFromConfig(*config);
  if (!built.ok()) return WithPath(path, built.status());
  Model& model = *built;
  // Hand each layer its weights: "<layer>/<weight>" with no further '/'
  // (slots such as "dense/kernel/m" and "global_step" are optimizer state).
  std::map<std::string, LayerPtr, std::less<>> by_name;
  for (const LayerPtr& layer : model.layers()) {
    if (!layer->name().empty()) by_name[layer->name()] = layer;
  }
  const std::vector<std::string> layer_names = LayerNames(model);
  std::map<std::string, const Tensor*> optimizer_state;
  for (const auto& [name, tensor] : file.tensors) {
    const std::string_view layer = LayerOfTensor(name, layer_names);
    if (!layer.empty()) {
      ModelFile::HoldWeight(*by_name.find(layer)->second, name.substr(layer.size() + 1), tensor);
    } else {
      GF_RETURN_IF_ERROR(WithPath(path, CheckOptimizerState(name, tensor)));
      optimizer_state[name] = &tensor;
    }
  }
  ModelFile::RequireHeldWeights(model);
  if (!options.compile || !config->compile) {
    if (!config->compile && !optimizer_state.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "': tensor '", optimizer_state.begin()->first,
          "' belongs to no layer, and the file has no compile options it could be optimizer state of"));
    }
    return built;
  }
  CompileOptions compile = *config->compile;
  compile.data_parallel = options.data_parallel;
  GF_RETURN_IF_ERROR(WithPath(path, model.Compile(std::move(compile))));
  for (const auto& [name, tensor] : optimizer_state) {
    if (!model.session()->variables().Has(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "': tensor '", name, "' is neither a layer weight nor a variable of the compiled ",
          "model's optimizer"));
    }
    GF_RETURN_IF_ERROR(WithPath(path, model.session()->variables().Set(name, *tensor)));
  }
  if (auto fit = file.metadata.find(kFitStateMetadataKey); fit != file.metadata.end()) {
    // A small object: bounded so a 94 MB value cannot cost gigabytes.
    constexpr JsonLimits kFitStateLimits = {.max_bytes = 4096, .max_depth = 2, .max_list_length = 16};
    absl::StatusOr<Json> parsed =
        ParseBoundedJson(fit->second, absl::StrCat("metadata '", kFitStateMetadataKey, "'"), kFitStateLimits);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': metadata '", kFitStateMetadataKey,
                                                     "' must be {\"epochs_shuffled\": <count>}: ",
                                                     parsed.status().message()));
    }
    const Json& state = *parsed;
    if (!state.is_object() || !state.contains("epochs_shuffled") ||
        !state["epochs_shuffled"].is_number_unsigned()) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': metadata '", kFitStateMetadataKey,
                                                     "' must be {\"epochs_shuffled\": <count>}, got ",
                                                     QuoteUserText(fit->second, 200)));
    }
    ModelFile::EpochsShuffled(model) = state["epochs_shuffled"].get<uint64_t>();
  }
  return built;
}

absl::StatusOr<Model> CloneModel(const Model& model) {
  ModelConfig config = ConfigOf(model);
  config.compile.reset();
  for (LayerPtr& layer : config.layers) {
    GF_ASSIGN_OR_RETURN(layer, CloneLayer(*layer));
  }
  return ModelFromConfig(config);
}

}  // namespace gradflow::nn
