// Keras .keras and .h5 files (nn/keras.h): the layouts, read and written
// with libzip and libhdf5 (core/zip_archive.h, core/hdf5.h); the configs
// inside are nn/keras_config.h's.

#include "nn/keras.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <variant>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"
#include "core/bounded_json.h"
#include "core/describe.h"
#include "core/hdf5.h"
#include "core/status.h"
#include "core/zip_archive.h"
#include "nn/keras_config.h"
#include "nn/layer_graph_json.h"
#include "nn/model_config.h"
#include "nn/model_file.h"

namespace gradflow::nn {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxMetadataBytes = 1 << 20;
constexpr char kMetadataEntry[] = "metadata.json";
constexpr char kConfigEntry[] = "config.json";
constexpr char kWeightsEntry[] = "model.weights.h5";

absl::Status InFile(const std::string& path, const absl::Status& status) {
  if (status.ok() || absl::StartsWith(status.message(), absl::StrCat("'", path, "'"))) return status;
  return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
}

absl::StatusOr<Json> ParseKerasJson(const std::string& text, const std::string& what) {
  return ParseBoundedJson(text, what, {.max_bytes = kMaxModelConfigBytes, .max_depth = kMaxModelConfigDepth,
                                       .max_list_length = kMaxConfigListLength});
}

// ------------------------------------------------------------ optimizer state

// One variable of the optimizer's state, in Keras's order (optimizers.h SlotLayout).
struct StateVariable {
  std::string name;       // gradflow's: "global_step", "dense/kernel/m"
  TensorType type;
  std::string keras;      // Keras 3's h5 name: "iteration", "sequential_dense_kernel_momentum"
  std::string variable;   // the model variable of a slot ("dense/kernel"); "" otherwise
  std::optional<optimizers::KerasSlot> slot;  // names of string literals
};

// In Keras's order of the layers (KerasLayerOrder): its optimizer's.
std::vector<Output> TrainableVariables(const Model& model) {
  std::vector<Output> out;
  absl::StatusOr<LayerGraph> graph = model.layer_graph();
  if (!graph.ok()) return out;  // a compiled model has one
  for (int i : KerasLayerOrder(*graph, model.layers().size())) {
    for (const Output& v : model.layer_variables(i)) {
      if (v.node->attr<bool>("trainable")) out.push_back(v);
    }
  }
  return out;
}

// Keras 3's variable path with '/' as '_': "sequential_dense_kernel".
std::string KerasPathName(const Model& model, const std::string& variable) {
  std::string path = absl::StrCat(model.name(), "/", variable);
  std::replace(path.begin(), path.end(), '/', '_');
  return path;
}

// The compiled model's optimizer state as Keras lists it.
std::vector<StateVariable> OptimizerState(const Model& model, const optimizers::SlotLayout& layout) {
  const CompileOptions& options = *model.compile_options();
  std::vector<StateVariable> state = {{optimizers::kStepName, {DType::kI64, Shape{}}, "iteration"}};
  if (!options.learning_rate_schedule) {
    state.push_back({optimizers::kLearningRateName, {DType::kF32, Shape{}}, "learning_rate"});
  }
  const std::vector<Output> variables = TrainableVariables(model);
  for (const std::vector<optimizers::KerasSlot>& group : layout.groups) {
    for (const Output& v : variables) {
      for (const optimizers::KerasSlot& slot : group) {
        state.push_back({absl::StrCat(v.node->name, "/", slot.slot), v.type(),
                         absl::StrCat(KerasPathName(model, v.node->name), "_", slot.keras), v.node->name, slot});
      }
    }
  }
  for (const auto& [name, keras] : layout.scalars) state.push_back({name, {DType::kF32, Shape{}}, keras});
  return state;
}

optimizers::SlotLayout SlotsOf(const optimizers::Optimizer& optimizer) {
  return std::visit([](const auto& o) { return o.KerasSlots(); }, optimizer);
}

std::string OptimizerPrefix(const Model& model) {
  return absl::AsciiStrToLower(optimizers::OptimizerName(model.compile_options()->optimizer));
}

// Reads one variable of type `type` (an integer count, such as an
// optimizer's iteration or Normalization's count, or a float tensor) from
// `group`.
absl::StatusOr<Tensor> ReadTyped(const h5::Group& group, const std::string& dataset, const TensorType& type) {
  if (type.dtype == DType::kI64) {
    if (type.shape.rank() != 0) return absl::InternalError("only scalar integer variables are read");
    GF_ASSIGN_OR_RETURN(int64_t count, group.ReadIntegerScalar(dataset));
    Tensor t(DType::kI64, Shape{});
    *t.data<int64_t>() = count;
    return t;
  }
  return group.ReadFloat(dataset, type.shape);
}

absl::StatusOr<Tensor> ReadState(const h5::Group& group, const std::string& dataset, const StateVariable& v) {
  return ReadTyped(group, dataset, v.type);
}

absl::Status WriteTyped(h5::Group& group, const std::string& dataset, const Tensor& value) {
  if (value.dtype() == DType::kI64) return group.WriteIntegerScalar(dataset, *value.data<int64_t>());
  return group.WriteFloat(dataset, value);
}

// tf.keras 2.x names each optimizer weight: OptimizerV2's
// "Adam/dense/kernel/m:0" and "Adam/iter:0", 2.11+'s "m/dense/kernel:0"
// and "iteration:0", or 2.13+'s "Adam/m/dense/kernel:0" (under the
// optimizer's name scope). Which state variable is it?
const StateVariable* MatchTfKerasName(std::string name, const std::vector<StateVariable>& state) {
  if (absl::EndsWith(name, ":0")) name.resize(name.size() - 2);
  const bool is_count = name == "iteration" || absl::EndsWith(name, "/iter") || name == "iter";
  for (const StateVariable& v : state) {
    if (is_count && v.name == optimizers::kStepName) return &v;
    if (!v.slot) continue;
    for (const char* slot_name : {v.slot->tf_keras, v.slot->keras, v.slot->slot}) {
      const std::string legacy = absl::StrCat("/", v.variable, "/", slot_name);  // after "Adam"
      const std::string v2 = absl::StrCat(slot_name, "/", v.variable);
      const std::string scoped_v2 = absl::StrCat("/", v2);  // after "Adam"
      for (const std::string& after_scope : {legacy, scoped_v2}) {
        if (absl::EndsWith(name, after_scope) && name.find('/') == name.size() - after_scope.size()) return &v;
      }
      if (name == v2) return &v;
    }
  }
  return nullptr;
}

// ------------------------------------------------------------ reading

// A Keras file's configs and the weights inside, format by format.
class KerasSource {
 public:
  virtual ~KerasSource() = default;
  ModelFormat format;
  std::string keras_version;
  Json model_config;
  Json compile_config;  // null when the file was saved uncompiled
  // Layer i's weights in Keras's order, each checked against `specs`.
  virtual absl::StatusOr<std::vector<Tensor>> LayerWeights(size_t i, const std::string& class_name,
                                                           const std::vector<WeightSpec>& specs) = 0;
  // Tells the source what the model is before weights are read (the
  // .keras archive sizes its weights entry by it).
  virtual absl::Status Prepare(const std::vector<LayerPtr>&, const std::vector<std::vector<WeightSpec>>&,
                               size_t /*inputs*/) {
    return absl::OkStatus();
  }
  // The optimizer state by gradflow name; empty if the file has none.
  virtual absl::StatusOr<std::map<std::string, Tensor>> Optimizer(const std::vector<StateVariable>& state) = 0;
  bool tf_keras_2() const { return !absl::StartsWith(keras_version, "3"); }
};

// Names of an h5 list attribute that Keras may split when it outgrows an
// object header (64 KiB): "layer_names", or "layer_names0", "layer_names1", ...
absl::StatusOr<std::vector<std::string>> ReadNameList(const h5::Group& group, const std::string& attribute) {
  if (group.HasAttribute(attribute)) return group.ReadStringListAttribute(attribute);
  std::vector<std::string> names;
  for (size_t chunk = 0; group.HasAttribute(absl::StrCat(attribute, chunk)); ++chunk) {
    GF_ASSIGN_OR_RETURN(std::vector<std::string> part, group.ReadStringListAttribute(absl::StrCat(attribute, chunk)));
    names.insert(names.end(), part.begin(), part.end());
    if (names.size() > h5::kMaxChildren) return absl::InvalidArgumentError(absl::StrCat(group.path(), ": too many names"));
  }
  if (names.empty() && !group.HasAttribute(absl::StrCat(attribute, 0))) {
    return absl::InvalidArgumentError(absl::StrCat(group.path(), " has no '", attribute, "' attribute"));
  }
  return names;
}

absl::Status CheckCount(const std::string& where, size_t found, const std::string& class_name,
                        const std::vector<WeightSpec>& specs) {
  if (found == specs.size()) return absl::OkStatus();
  std::vector<std::string> names;
  for (const WeightSpec& s : specs) names.push_back(absl::StrCat(s.local, " ", s.type.ToString()));
  return absl::InvalidArgumentError(absl::StrCat(where, " holds ", found, " weights, but the config's ", class_name,
                                                 " has ", specs.size(), names.empty() ? "" : " (",
                                                 absl::StrJoin(names, ", "), names.empty() ? "" : ")"));
}

absl::Status StateCountError(const std::string& where, size_t found, size_t expected) {
  return absl::InvalidArgumentError(absl::StrCat(where, " holds ", found, " optimizer variables, but the ",
                                                 "compiled optimizer over these weights has ", expected));
}

// ---- legacy .h5

class H5Source : public KerasSource {
 public:
  static absl::StatusOr<std::unique_ptr<H5Source>> Open(const std::string& path) {
    GF_ASSIGN_OR_RETURN(h5::File file, h5::File::Open(path));
    auto source = std::unique_ptr<H5Source>(new H5Source(std::move(file)));
    GF_RETURN_IF_ERROR(source->ReadRoot());
    return source;
  }

  absl::Status Prepare(const std::vector<LayerPtr>& layers, const std::vector<std::vector<WeightSpec>>& specs,
                       size_t) override {
    // Weights go to layers in order: the file's layers with weights against the model's.
    std::vector<size_t> weighted;
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!specs[i].empty()) weighted.push_back(i);
    }
    if (weighted.size() != file_layers_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "/model_weights has ", file_layers_.size(), " layers with weights but the config builds ", weighted.size()));
    }
    for (size_t k = 0; k < weighted.size(); ++k) file_layer_of_[weighted[k]] = k;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Tensor>> LayerWeights(size_t i, const std::string& class_name,
                                                   const std::vector<WeightSpec>& specs) override {
    if (specs.empty()) return std::vector<Tensor>{};
    const auto& [group, names] = file_layers_[file_layer_of_.at(i)];
    GF_RETURN_IF_ERROR(CheckCount(group.path(), names.size(), class_name, specs));
    std::vector<Tensor> out;
    for (size_t j = 0; j < specs.size(); ++j) {
      GF_ASSIGN_OR_RETURN(Tensor t, ReadTyped(group, names[j], specs[j].type));
      out.push_back(std::move(t));
    }
    return out;
  }

  absl::StatusOr<std::map<std::string, Tensor>> Optimizer(const std::vector<StateVariable>& state) override {
    std::map<std::string, Tensor> out;
    const h5::Group root = file_.Root();
    if (!root.Has("optimizer_weights")) return out;
    GF_ASSIGN_OR_RETURN(h5::Group group, root.OpenGroup("optimizer_weights"));
    GF_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNameList(group, "weight_names"));
    if (!tf_keras_2()) {
      // Keras 3: the same order as a .keras file's optimizer/vars.
      if (names.size() != state.size()) return StateCountError(group.path(), names.size(), state.size());
      for (size_t j = 0; j < names.size(); ++j) {
        GF_ASSIGN_OR_RETURN(out[state[j].name], ReadState(group, names[j], state[j]));
      }
      return out;
    }
    for (const std::string& name : names) {
      const StateVariable* v = MatchTfKerasName(name, state);
      if (v == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(group.path(), " holds '", name,
                                                       "', which is no state of this model's optimizer"));
      }
      GF_ASSIGN_OR_RETURN(out[v->name], ReadState(group, name, *v));
    }
    return out;
  }



 private:
  explicit H5Source(h5::File file) : file_(std::move(file)) {}

  absl::Status ReadRoot() {
    const h5::Group root = file_.Root();
    format = ModelFormat::kKerasH5;
    if (root.HasAttribute("keras_version")) {
      GF_ASSIGN_OR_RETURN(keras_version, root.ReadStringAttribute("keras_version"));
    }
    if (!root.HasAttribute("model_config")) {
      return absl::InvalidArgumentError("has no 'model_config' attribute: it holds weights only "
                                        "(save_weights); build the model and load them into it");
    }
    GF_ASSIGN_OR_RETURN(std::string config, root.ReadStringAttribute("model_config"));
    GF_ASSIGN_OR_RETURN(model_config, ParseKerasJson(config, "model_config"));
    if (root.HasAttribute("training_config")) {
      GF_ASSIGN_OR_RETURN(std::string training, root.ReadStringAttribute("training_config"));
      GF_ASSIGN_OR_RETURN(compile_config, ParseKerasJson(training, "training_config"));
    }
    GF_ASSIGN_OR_RETURN(h5::Group weights, root.OpenGroup("model_weights"));
    GF_ASSIGN_OR_RETURN(std::vector<std::string> layer_names, ReadNameList(weights, "layer_names"));
    for (const std::string& name : layer_names) {
      GF_ASSIGN_OR_RETURN(h5::Group group, weights.OpenGroup(name));
      GF_ASSIGN_OR_RETURN(std::vector<std::string> weight_names, ReadNameList(group, "weight_names"));
      if (!weight_names.empty()) file_layers_.push_back({std::move(group), std::move(weight_names)});
    }
    return absl::OkStatus();
  }

  h5::File file_;
  std::vector<std::pair<h5::Group, std::vector<std::string>>> file_layers_;  // layers with weights
  std::map<size_t, size_t> file_layer_of_;  // model layer -> file_layers_ index
};

// ---- .keras

// Keras 3's group of each layer in model.weights.h5: its class in snake
// case, numbered from the second of a class on ("dense", "dense_1").
std::vector<std::string> LayerGroupNames(const std::vector<LayerPtr>& layers) {
  std::map<std::string, int> seen;
  std::vector<std::string> names;
  for (const LayerPtr& layer : layers) {
    const std::string base = KerasSnakeCase(layer->type());
    const int n = seen[base]++;
    names.push_back(n == 0 ? base : absl::StrCat(base, "_", n));
  }
  return names;
}

// Keras 3 saves a functional model's InputLayers too (Functional.layers
// holds them), as groups without weights: "input_layer", "input_layer_1", ...
std::vector<std::string> InputLayerGroupNames(size_t inputs) {
  std::vector<std::string> names;
  for (size_t i = 0; i < inputs; ++i) names.push_back(i == 0 ? "input_layer" : absl::StrCat("input_layer_", i));
  return names;
}

absl::Status CheckEmptyVars(const h5::Group& layers, const std::string& group) {
  const std::string vars = group + "/vars";
  if (!layers.Has(vars)) return absl::OkStatus();
  GF_ASSIGN_OR_RETURN(h5::Group g, layers.OpenGroup(vars));
  GF_ASSIGN_OR_RETURN(std::vector<std::string> children, g.ChildNames());
  if (children.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(g.path(), " holds ", children.size(),
                                                 " datasets, but an InputLayer has no weights"));
}

// Datasets "0" ... "n-1" of a vars group, checked to be exactly those.
absl::StatusOr<size_t> VarCount(const h5::Group& vars) {
  GF_ASSIGN_OR_RETURN(std::vector<std::string> children, vars.ChildNames());
  std::set<std::string> expected;
  for (size_t i = 0; i < children.size(); ++i) expected.insert(std::to_string(i));
  if (std::set<std::string>(children.begin(), children.end()) != expected) {
    return absl::InvalidArgumentError(absl::StrCat(vars.path(), " must hold datasets named 0 to ", children.size() - 1,
                                                   ", got ", QuoteUserText(absl::StrJoin(children, ", "))));
  }
  return children.size();
}

class ArchiveSource : public KerasSource {
 public:
  static absl::StatusOr<std::unique_ptr<ArchiveSource>> Open(const std::string& path) {
    GF_ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Open(path));
    auto source = std::unique_ptr<ArchiveSource>(new ArchiveSource(std::move(zip)));
    GF_RETURN_IF_ERROR(source->ReadConfigs());
    return source;
  }

  absl::Status Prepare(const std::vector<LayerPtr>& layers, const std::vector<std::vector<WeightSpec>>& specs,
                       size_t inputs) override {
    // The weights entry may hold the layer weights, an optimizer's slots (at
    // most three per weight) and HDF5's bookkeeping: anything beyond is a bomb.
    uint64_t bytes = uint64_t{16} << 20;
    for (const auto& layer : specs) {
      for (const WeightSpec& w : layer) {
        bytes += 4 * (static_cast<uint64_t>(w.type.shape.NumElements()) * SizeOf(w.type.dtype) + 4096);
      }
    }
    GF_ASSIGN_OR_RETURN(std::string image, zip_.Read(kWeightsEntry, bytes));
    GF_ASSIGN_OR_RETURN(h5::File file, h5::File::OpenImage(image, kWeightsEntry));
    weights_.emplace(std::move(file));
    group_names_ = LayerGroupNames(layers);
    return CheckNoStrayGroups(inputs);
  }

  absl::StatusOr<std::vector<Tensor>> LayerWeights(size_t i, const std::string& class_name,
                                                   const std::vector<WeightSpec>& specs) override {
    const std::string path = absl::StrCat("layers/", group_names_[i], "/vars");
    const h5::Group root = weights_->Root();
    if (!root.Has(path)) {
      if (specs.empty()) return std::vector<Tensor>{};
      return absl::InvalidArgumentError(absl::StrCat(kWeightsEntry, " has no /", path, " for layer ", i, " (",
                                                     class_name, ")"));
    }
    GF_ASSIGN_OR_RETURN(h5::Group vars, root.OpenGroup(path));
    GF_ASSIGN_OR_RETURN(size_t count, VarCount(vars));
    GF_RETURN_IF_ERROR(CheckCount(vars.path(), count, class_name, specs));
    std::vector<Tensor> out;
    for (size_t j = 0; j < specs.size(); ++j) {
      GF_ASSIGN_OR_RETURN(Tensor t, ReadTyped(vars, std::to_string(j), specs[j].type));
      out.push_back(std::move(t));
    }
    return out;
  }

  absl::StatusOr<std::map<std::string, Tensor>> Optimizer(const std::vector<StateVariable>& state) override {
    std::map<std::string, Tensor> out;
    const h5::Group root = weights_->Root();
    if (!root.Has("optimizer/vars")) return out;
    GF_ASSIGN_OR_RETURN(h5::Group vars, root.OpenGroup("optimizer/vars"));
    GF_ASSIGN_OR_RETURN(size_t count, VarCount(vars));
    if (count != state.size()) return StateCountError(vars.path(), count, state.size());
    for (size_t j = 0; j < count; ++j) {
      GF_ASSIGN_OR_RETURN(out[state[j].name], ReadState(vars, std::to_string(j), state[j]));
    }
    return out;
  }

 private:
  explicit ArchiveSource(ZipReader zip) : zip_(std::move(zip)) {}

  absl::Status ReadConfigs() {
    format = ModelFormat::kKeras;
    for (const ZipEntryInfo& e : zip_.entries()) {
      const bool directory = absl::EndsWith(e.name, "/") && e.size == 0;
      if (!directory && e.name != kMetadataEntry && e.name != kConfigEntry && e.name != kWeightsEntry) {
        return absl::InvalidArgumentError(absl::StrCat(
            "holds ", QuoteUserText(e.name), "; a gradflow-loadable .keras archive holds only ", kMetadataEntry, ", ",
            kConfigEntry, " and ", kWeightsEntry, " (layers with assets or npz weights are not supported)"));
      }
    }
    if (zip_.Find(kMetadataEntry) != nullptr) {
      GF_ASSIGN_OR_RETURN(std::string text, zip_.Read(kMetadataEntry, kMaxMetadataBytes));
      GF_ASSIGN_OR_RETURN(Json metadata, ParseKerasJson(text, kMetadataEntry));
      if (metadata.is_object() && metadata.contains("keras_version") && metadata["keras_version"].is_string()) {
        keras_version = metadata["keras_version"].get<std::string>();
      }
    }
    GF_ASSIGN_OR_RETURN(std::string text, zip_.Read(kConfigEntry, kMaxModelConfigBytes));
    GF_ASSIGN_OR_RETURN(model_config, ParseKerasJson(text, kConfigEntry));
    if (model_config.is_object() && model_config.contains("compile_config")) {
      compile_config = model_config["compile_config"];
    }
    if (zip_.Find(kWeightsEntry) == nullptr) return absl::InvalidArgumentError(absl::StrCat("has no ", kWeightsEntry));
    return absl::OkStatus();
  }

  // Every group under /layers is a layer's, or an InputLayer's without weights.
  absl::Status CheckNoStrayGroups(size_t inputs) const {
    const h5::Group root = weights_->Root();
    if (!root.Has("layers")) return absl::OkStatus();
    GF_ASSIGN_OR_RETURN(h5::Group layers, root.OpenGroup("layers"));
    GF_ASSIGN_OR_RETURN(std::vector<std::string> children, layers.ChildNames());
    const std::set<std::string> known(group_names_.begin(), group_names_.end());
    const std::vector<std::string> input_groups = InputLayerGroupNames(inputs);
    for (const std::string& child : children) {
      if (std::count(input_groups.begin(), input_groups.end(), child)) {
        GF_RETURN_IF_ERROR(CheckEmptyVars(layers, child));
        continue;
      }
      if (!known.count(child)) {
        return absl::InvalidArgumentError(absl::StrCat(kWeightsEntry, " holds /layers/", QuoteUserText(child),
                                                       ", which no layer of config.json has"));
      }
    }
    return absl::OkStatus();
  }

  ZipReader zip_;
  std::optional<h5::File> weights_;
  std::vector<std::string> group_names_;
};

// ---- building the model

absl::Status LoadOptimizerState(Model& model, KerasSource& source, KerasLoadReport& report) {
  const std::vector<StateVariable> state = OptimizerState(model, SlotsOf(model.compile_options()->optimizer));
  GF_ASSIGN_OR_RETURN(auto values, source.Optimizer(state));
  if (values.empty()) return absl::OkStatus();  // saved without the optimizer
  for (const StateVariable& v : state) {
    auto it = values.find(v.name);
    // tf.keras 2.x keeps the learning rate in the config only: the compiled one stands.
    if (it == values.end() && v.name == optimizers::kLearningRateName && source.tf_keras_2()) continue;
    if (it == values.end()) {
      return absl::InvalidArgumentError(absl::StrCat("the optimizer state lacks ", v.keras, " (gradflow's ", v.name, ")"));
    }
    GF_RETURN_IF_ERROR(model.session()->variables().Set(v.name, it->second));
  }
  report.optimizer_state_loaded = true;
  return absl::OkStatus();
}

absl::StatusOr<Model> BuildModel(KerasSource& source, const LoadModelOptions& options, KerasLoadReport& report) {
  GF_ASSIGN_OR_RETURN(ModelConfig config, keras_config::ReadModel(source.model_config, "model config", &report.notes));
  std::optional<CompileOptions> compile;
  if (!source.compile_config.is_null()) {
    GF_ASSIGN_OR_RETURN(compile, keras_config::ReadCompile(source.compile_config, source.keras_version,
                                                           keras_config::OutputLayerNames(config), "compile config",
                                                           &report.notes));
  }
  GF_ASSIGN_OR_RETURN(Model model, ModelFromConfig(config));
  GF_ASSIGN_OR_RETURN(std::vector<std::vector<WeightSpec>> specs, model.WeightSpecs());
  GF_ASSIGN_OR_RETURN(const LayerGraph graph, model.layer_graph());
  GF_RETURN_IF_ERROR(source.Prepare(model.layers(), specs, graph.input_names.size()));
  for (size_t i = 0; i < specs.size(); ++i) {
    Layer& layer = *model.layers()[i];
    GF_ASSIGN_OR_RETURN(std::vector<Tensor> weights, source.LayerWeights(i, layer.type(), specs[i]));
    for (size_t j = 0; j < weights.size(); ++j) ModelFile::HoldWeight(layer, specs[i][j].local, weights[j]);
  }
  ModelFile::RequireHeldWeights(model);
  if (!options.compile || !compile) return model;
  compile->data_parallel = options.data_parallel;
  if (absl::Status compiled = model.Compile(*compile); !compiled.ok()) {
    if (model.CountParams(/*trainable=*/true) > 0) return compiled;
    // Keras compiles (and fits, training nothing) a model whose layers are all frozen.
    return absl::Status(compiled.code(), absl::StrCat(
        "the file's model is compiled but every layer is frozen (trainable false), and gradflow compiles only a ",
        "model with something to train (", compiled.message(), "); load it with LoadModelOptions{.compile = false}, ",
        "set trainable = true on the layers to train, and Compile"));
  }
  GF_RETURN_IF_ERROR(LoadOptimizerState(model, source, report));
  return model;
}

// ------------------------------------------------------------ writing

absl::StatusOr<Tensor> Variable(Model& model, const std::string& name) {
  return model.session()->variables().Get(name);
}

// The layers as Keras 3 lists them when it rebuilds the model
// (KerasLayerOrder), and the InputLayers it lists beside them (a
// functional model's; a Sequential's layers leave its InputLayer out).
struct KerasLayers {
  std::vector<size_t> order;  // into model.layers()
  std::vector<LayerPtr> layers;
  std::vector<std::string> input_names;
};

absl::StatusOr<KerasLayers> KerasLayersOf(const Model& model) {
  GF_ASSIGN_OR_RETURN(const LayerGraph graph, model.layer_graph());
  KerasLayers out;
  for (int i : KerasLayerOrder(graph, model.layers().size())) {
    out.order.push_back(static_cast<size_t>(i));
    out.layers.push_back(model.layers()[i]);
  }
  if (!model.sequential()) out.input_names = graph.input_names;
  return out;
}

absl::StatusOr<std::string> ArchiveWeights(Model& model, const std::vector<StateVariable>* state) {
  GF_ASSIGN_OR_RETURN(h5::File file, h5::File::CreateInMemory(kWeightsEntry));
  h5::Group root = file.Root();
  GF_ASSIGN_OR_RETURN(h5::Group model_vars, root.CreateGroup("vars"));
  GF_RETURN_IF_ERROR(model_vars.WriteStringAttribute("name", model.name()));
  GF_ASSIGN_OR_RETURN(h5::Group layers, root.CreateGroup("layers"));
  GF_ASSIGN_OR_RETURN(const KerasLayers written, KerasLayersOf(model));
  const std::vector<std::string> groups = LayerGroupNames(written.layers);
  const std::vector<std::string> input_groups = InputLayerGroupNames(written.input_names.size());
  for (size_t k = 0; k < input_groups.size(); ++k) {
    GF_ASSIGN_OR_RETURN(h5::Group input, layers.CreateGroup(input_groups[k]));
    GF_ASSIGN_OR_RETURN(h5::Group vars, input.CreateGroup("vars"));
    GF_RETURN_IF_ERROR(vars.WriteStringAttribute("name", written.input_names[k]));
  }
  for (size_t k = 0; k < groups.size(); ++k) {
    const size_t i = written.order[k];
    GF_ASSIGN_OR_RETURN(h5::Group layer, layers.CreateGroup(groups[k]));
    GF_ASSIGN_OR_RETURN(h5::Group vars, layer.CreateGroup("vars"));
    GF_RETURN_IF_ERROR(vars.WriteStringAttribute("name", model.layers()[i]->name()));
    const std::vector<Output>& variables = model.layer_variables(i);
    for (size_t j = 0; j < variables.size(); ++j) {
      GF_ASSIGN_OR_RETURN(Tensor value, Variable(model, variables[j].node->name));
      GF_RETURN_IF_ERROR(WriteTyped(vars, std::to_string(j), value));
    }
  }
  if (state != nullptr) {
    GF_ASSIGN_OR_RETURN(h5::Group optimizer, root.CreateGroup("optimizer"));
    GF_ASSIGN_OR_RETURN(h5::Group vars, optimizer.CreateGroup("vars"));
    GF_RETURN_IF_ERROR(vars.WriteStringAttribute("name", OptimizerPrefix(model)));
    for (size_t j = 0; j < state->size(); ++j) {
      GF_ASSIGN_OR_RETURN(Tensor value, Variable(model, (*state)[j].name));
      GF_RETURN_IF_ERROR(WriteTyped(vars, std::to_string(j), value));
    }
  }
  return file.Image();
}

std::string DateSaved() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d@%H:%M:%S", &utc);
  return text;
}

absl::StatusOr<std::string> ArchiveBytes(Model& model, const Json& config, const std::vector<StateVariable>* state) {
  GF_ASSIGN_OR_RETURN(std::string weights, ArchiveWeights(model, state));
  const Json metadata = {{"keras_version", keras_config::kWrittenKerasVersion}, {"date_saved", DateSaved()}};
  return ZipBytes({{kMetadataEntry, metadata.dump()},
                   {kConfigEntry, config.dump(-1, ' ', false, Json::error_handler_t::replace)},
                   {kWeightsEntry, std::move(weights)}});
}

absl::Status WriteH5Versions(h5::Group& group) {
  GF_RETURN_IF_ERROR(group.WriteStringAttribute("backend", "tensorflow"));
  return group.WriteStringAttribute("keras_version", keras_config::kWrittenKerasVersion);
}

absl::Status H5LayerWeights(Model& model, h5::Group& weights) {
  GF_ASSIGN_OR_RETURN(const KerasLayers written, KerasLayersOf(model));
  std::vector<std::string> layer_names = written.input_names;
  for (const LayerPtr& layer : written.layers) layer_names.push_back(layer->name());
  GF_RETURN_IF_ERROR(weights.WriteStringListAttribute("layer_names", layer_names));
  for (const std::string& input : written.input_names) {
    GF_ASSIGN_OR_RETURN(h5::Group group, weights.CreateGroup(input));
    GF_RETURN_IF_ERROR(group.WriteStringListAttribute("weight_names", {}));
  }
  for (size_t i : written.order) {
    GF_ASSIGN_OR_RETURN(h5::Group layer, weights.CreateGroup(model.layers()[i]->name()));
    std::vector<std::string> names;
    for (const Output& v : model.layer_variables(i)) {
      names.push_back(absl::StrCat(model.name(), "/", v.node->name));  // Keras 3's variable.path
      GF_ASSIGN_OR_RETURN(Tensor value, Variable(model, v.node->name));
      GF_RETURN_IF_ERROR(WriteTyped(layer, names.back(), value));
    }
    GF_RETURN_IF_ERROR(layer.WriteStringListAttribute("weight_names", names));
  }
  GF_ASSIGN_OR_RETURN(h5::Group top, weights.CreateGroup("top_level_model_weights"));
  return top.WriteStringListAttribute("weight_names", {});
}

absl::StatusOr<std::string> H5Bytes(Model& model, const Json& config, const Json& training,
                                    const std::vector<StateVariable>* state) {
  GF_ASSIGN_OR_RETURN(h5::File file, h5::File::CreateInMemory("model.h5"));
  h5::Group root = file.Root();
  GF_RETURN_IF_ERROR(WriteH5Versions(root));
  GF_RETURN_IF_ERROR(root.WriteStringAttribute("model_config", config.dump(-1, ' ', false, Json::error_handler_t::replace)));
  GF_RETURN_IF_ERROR(root.WriteStringAttribute("training_config", training.dump()));
  GF_ASSIGN_OR_RETURN(h5::Group weights, root.CreateGroup("model_weights"));
  GF_RETURN_IF_ERROR(WriteH5Versions(weights));
  GF_RETURN_IF_ERROR(H5LayerWeights(model, weights));
  if (state != nullptr) {
    GF_ASSIGN_OR_RETURN(h5::Group optimizer, root.CreateGroup("optimizer_weights"));
    const std::string prefix = OptimizerPrefix(model);
    std::vector<std::string> names;
    for (const StateVariable& v : *state) {
      names.push_back(absl::StrCat(prefix, "/", v.keras));
      GF_ASSIGN_OR_RETURN(Tensor value, Variable(model, v.name));
      GF_RETURN_IF_ERROR(WriteTyped(optimizer, names.back(), value));
    }
    GF_RETURN_IF_ERROR(optimizer.WriteStringListAttribute("weight_names", names));
  }
  return file.Image();
}

// Save's promise: never a file the loader would refuse. The configs are
// read back by the loader's own rules before anything is written.
absl::Status CheckReadsBack(const Json& config, const Json& compile) {
  GF_ASSIGN_OR_RETURN(const ModelConfig read, keras_config::ReadModel(config, "model config", nullptr));
  return keras_config::ReadCompile(compile, keras_config::kWrittenKerasVersion, keras_config::OutputLayerNames(read),
                                   "compile config", nullptr)
      .status();
}

}  // namespace

ModelFormat ModelFormatForPath(const std::string& path) {
  const std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".keras")) return ModelFormat::kKeras;
  for (const char* ext : {".h5", ".hdf5", ".hdf"}) {
    if (absl::EndsWith(lower, ext)) return ModelFormat::kKerasH5;
  }
  return ModelFormat::kGradflow;
}

absl::StatusOr<ModelFormat> DetectModelFormat(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("'", path, "' cannot be opened"));
  char head[8] = {};
  in.read(head, sizeof head);
  const absl::string_view bytes(head, static_cast<size_t>(in.gcount()));
  if (absl::StartsWith(bytes, "PK\x03\x04") || absl::StartsWith(bytes, "PK\x05\x06")) return ModelFormat::kKeras;
  if (bytes == absl::string_view("\x89HDF\r\n\x1a\n", 8)) return ModelFormat::kKerasH5;
  return ModelFormat::kGradflow;
}

absl::StatusOr<Model> LoadKerasModel(const std::string& path, LoadModelOptions options, KerasLoadReport* report) {
  KerasLoadReport local;
  KerasLoadReport& r = report != nullptr ? *report : local;
  r = {};
  GF_ASSIGN_OR_RETURN(ModelFormat format, DetectModelFormat(path));
  std::unique_ptr<KerasSource> source;
  if (format == ModelFormat::kKeras) {
    absl::StatusOr<std::unique_ptr<ArchiveSource>> archive = ArchiveSource::Open(path);
    if (!archive.ok()) return InFile(path, archive.status());
    source = *std::move(archive);
  } else if (format == ModelFormat::kKerasH5) {
    absl::StatusOr<std::unique_ptr<H5Source>> h5 = H5Source::Open(path);
    if (!h5.ok()) return InFile(path, h5.status());
    source = *std::move(h5);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is neither a .keras zip archive nor an HDF5 file"));
  }
  r.format = source->format;
  r.keras_version = source->keras_version;
  absl::StatusOr<Model> model = BuildModel(*source, options, r);
  if (!model.ok()) return InFile(path, model.status());
  return model;
}

absl::Status SaveKerasModel(Model& model, const std::string& path, ModelFormat format, const SaveOptions& options) {
  if (!model.compiled()) return absl::FailedPreconditionError("Save: compile the model first");
  const bool legacy = format == ModelFormat::kKerasH5;
  auto not_written = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("Save: '", path, "' was not written: ", s.message()));
  };
  absl::StatusOr<Json> config = keras_config::WriteModel(model, legacy);
  absl::StatusOr<Json> compile = config.ok() ? keras_config::WriteCompile(model, legacy) : config.status();
  if (!compile.ok()) return not_written(compile.status());
  if (absl::Status back = CheckReadsBack(*config, *compile); !back.ok()) return not_written(back);
  std::vector<StateVariable> state;
  if (options.include_optimizer) state = OptimizerState(model, SlotsOf(model.compile_options()->optimizer));
  const std::vector<StateVariable>* saved_state = options.include_optimizer ? &state : nullptr;
  absl::StatusOr<std::string> bytes;
  if (legacy) {
    bytes = H5Bytes(model, *config, *compile, saved_state);
  } else {
    (*config)["compile_config"] = *compile;
    bytes = ArchiveBytes(model, *config, saved_state);
  }
  if (!bytes.ok()) return not_written(bytes.status());
  const FilePiece piece{bytes->data(), bytes->size()};
  return InFile(path, WriteFileAtomically(path, {&piece, 1}));
}

}  // namespace gradflow::nn
