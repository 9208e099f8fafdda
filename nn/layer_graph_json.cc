#include "nn/layer_graph_json.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "nn/model_config.h"

namespace gradflow::nn {
namespace {

using Json = nlohmann::json;

// `type` null: shape and dtype unknown (null).
Json KerasTensorJson(const TensorType* type, const std::string& layer, int node) {
  Json shape = nullptr, dtype = nullptr;
  if (type != nullptr) {
    shape = BatchShapeJson(type->shape);
    dtype = KerasDTypeName(type->dtype);
  }
  return {{"class_name", "__keras_tensor__"},
          {"config", {{"shape", std::move(shape)}, {"dtype", std::move(dtype)}, {"keras_history", {layer, node, 0}}}}};
}

}  // namespace

Json BatchShapeJson(const Shape& shape) {
  Json dims = Json::array({nullptr});  // the batch dimension
  for (int i = 1; i < shape.rank(); ++i) dims.push_back(shape[i]);
  return dims;
}

bool IsInputLayerEntry(const Json& entry) {
  return entry.is_object() && entry.contains("class_name") && entry["class_name"] == "InputLayer";
}

std::string KerasDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "float32";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kBF16: return "bfloat16";
  }
  return "float32";
}

Json InputLayerJson(const std::string& name, const TensorType& type, bool keras_module) {
  Json input = {{"class_name", "InputLayer"},
                {"config", {{"batch_shape", BatchShapeJson(type.shape)}, {"dtype", KerasDTypeName(type.dtype)}, {"sparse", false},
                            {"ragged", false}, {"name", name}}}};
  if (keras_module) {
    input["module"] = "keras.layers";
    input["registered_name"] = nullptr;
  }
  return input;
}

std::optional<Shape> ReadInputLayer(ConfigReader& layer, DType* dtype) {
  layer.Accept({"class_name", "module", "registered_name", "name", "inbound_nodes"});
  ConfigReader config = layer.Sub("config");
  std::optional<Shape> shape = config.InputShape();
  if (config.ok() && !shape) config.Fail("an InputLayer needs 'batch_shape' (or 'batch_input_shape')");
  const Json* given = config.Find("dtype");
  const std::string name = given != nullptr && given->is_string() ? given->get<std::string>() : "";
  if (dtype != nullptr && (name == "int32" || name == "int64")) {
    *dtype = name == "int32" ? DType::kI32 : DType::kI64;
  } else {
    config.KerasDType();
  }
  config.Unsupported("sparse", false, "gradflow's inputs are dense");
  config.Unsupported("ragged", false, "gradflow's inputs are dense");
  config.Unsupported("optional", false, "gradflow's inputs are always given");
  config.Accept({"name"});
  config.Finish();
  layer.Finish();
  return shape;
}

absl::StatusOr<FunctionalJson> WriteLayerGraph(const Model& model, const std::vector<TensorType>* call_types,
                                               const LayerJsonWriter& write_layer, bool keras_module,
                                               const std::vector<int>* layer_order) {
  GF_ASSIGN_OR_RETURN(const LayerGraph lg, model.layer_graph());
  if (call_types != nullptr && call_types->size() != lg.calls.size()) {
    return absl::InternalError("WriteLayerGraph: call_types has a type per call of another graph");
  }
  const std::vector<LayerPtr>& layers = model.layers();
  FunctionalJson out{Json::array(), Json::array(), Json::array()};
  std::vector<std::pair<std::string, int>> source(lg.calls.size());  // each call as (layer, node)
  std::vector<Json> entries(layers.size());
  std::vector<int> calls_made(layers.size(), 0);
  for (size_t i = 0; i < lg.calls.size(); ++i) {
    const LayerGraph::Call& call = lg.calls[i];
    if (call.layer < 0) {
      source[i] = {lg.input_names[i], 0};
      Json input = InputLayerJson(lg.input_names[i], lg.input_types[i], keras_module);
      input["name"] = lg.input_names[i];
      input["inbound_nodes"] = Json::array();
      out.layers.push_back(std::move(input));
      out.input_layers.push_back({lg.input_names[i], 0, 0});
      continue;
    }
    const Layer& layer = *layers[call.layer];
    const int node = calls_made[call.layer]++;
    source[i] = {layer.name(), node};
    std::vector<TensorType> input_types;
    Json args = Json::array();
    for (int j : call.inputs) {
      if (call_types != nullptr) input_types.push_back((*call_types)[j]);
      args.push_back(KerasTensorJson(call_types ? &(*call_types)[j] : nullptr, source[j].first, source[j].second));
    }
    if (node == 0) {
      GF_ASSIGN_OR_RETURN(entries[call.layer], write_layer(layer, input_types));
      entries[call.layer]["name"] = layer.name();
      entries[call.layer]["inbound_nodes"] = Json::array();
    }
    // One input is passed as itself, several as one list (Keras's merge layers).
    Json first_arg = call.inputs.size() == 1 ? args[0] : args;
    entries[call.layer]["inbound_nodes"].push_back({{"args", Json::array({first_arg})}, {"kwargs", Json::object()}});
  }
  if (layer_order != nullptr && layer_order->size() != entries.size()) {
    return absl::InternalError("WriteLayerGraph: layer_order is not a permutation of the layers");
  }
  for (size_t k = 0; k < entries.size(); ++k) {
    const size_t i = layer_order != nullptr ? static_cast<size_t>((*layer_order)[k]) : k;
    if (i >= entries.size() || entries[i].is_null()) {
      return absl::InternalError("WriteLayerGraph: layer_order is not a permutation of the layers");
    }
    out.layers.push_back(std::move(entries[i]));
  }
  for (int o : lg.outputs) out.output_layers.push_back({source[o].first, source[o].second, 0});
  return out;
}

std::vector<int> KerasLayerOrder(const LayerGraph& graph, size_t layers) {
  const size_t calls = graph.calls.size();
  // Keras's operations: a layer (its index), or an input (layers + its call).
  const auto operation = [&](size_t c) {
    return graph.calls[c].layer >= 0 ? static_cast<size_t>(graph.calls[c].layer) : layers + c;
  };
  std::vector<int> first_met(layers + calls, std::numeric_limits<int>::max());
  int met = 0;
  std::vector<size_t> post_order;  // inputs before the calls reading them
  std::vector<char> opened(calls, 0);
  for (int output : graph.outputs) {  // the depth-first walk, without recursion
    std::vector<std::pair<size_t, size_t>> stack;  // a call and its next input
    const auto open = [&](size_t c) {
      if (opened[c]) return;
      opened[c] = 1;
      first_met[operation(c)] = std::min(first_met[operation(c)], met++);
      stack.push_back({c, 0});
    };
    open(static_cast<size_t>(output));
    while (!stack.empty()) {
      const size_t c = stack.back().first;
      if (stack.back().second < graph.calls[c].inputs.size()) {
        open(static_cast<size_t>(graph.calls[c].inputs[stack.back().second++]));
        continue;
      }
      post_order.push_back(c);
      stack.pop_back();
    }
  }
  // A call's depth is one more than the deepest reader's; a layer's, its
  // deepest call's, which in turn deepens the calls it reads.
  std::vector<int> call_depth(calls, 0), depth(layers + calls, 0);
  for (auto it = post_order.rbegin(); it != post_order.rend(); ++it) {
    const size_t op = operation(*it);
    depth[op] = call_depth[*it] = std::max(call_depth[*it], depth[op]);
    for (int in : graph.calls[*it].inputs) call_depth[in] = std::max(call_depth[in], call_depth[*it] + 1);
  }
  std::vector<int> order(layers);
  for (size_t i = 0; i < layers; ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return depth[a] != depth[b] ? depth[a] > depth[b] : first_met[a] < first_met[b];
  });
  return order;
}

namespace {

// A reference to one call's output: (layer name, its node), tensor 0.
struct TensorRef {
  std::string layer;
  int node = 0;
};

class GraphReader {
 public:
  GraphReader(std::string where) : where_(std::move(where)) {}

  absl::Status Error(const std::string& place, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, place, ": ", problem));
  }

  // A call's keyword arguments. Keras 3 records Dropout's `training` (its
  // signature's default, false) and BatchNormalization's `mask` (null) in
  // every functional config; its fit, evaluate and predict pass their own
  // `training` over the recorded one, as gradflow does. tf.keras 2 records
  // only what the code passed, and keeps it: a `training` there would pin
  // the layer's mode, which gradflow does not do.
  absl::Status CheckKwargs(const Json& kwargs, const std::string& place, bool keras_3) const {
    if (!kwargs.is_object()) return Error(place, absl::StrCat("must be an object, got ", DescribeJson(kwargs)));
    for (const auto& [key, value] : kwargs.items()) {
      if (key == "mask" && value.is_null()) continue;
      if (key == "training" && (value.is_null() || (keras_3 && value.is_boolean()))) continue;
      return Error(place, absl::StrCat("has the call argument ", QuoteUserText(key), " = ", DescribeJson(value),
                                       ", which gradflow's layer calls do not take (they take Keras 3's recorded "
                                       "training and a null mask); rebuild the model without it"));
    }
    return absl::OkStatus();
  }

  // [name, node, tensor] or tf.keras 2's [name, node, tensor, kwargs].
  absl::StatusOr<TensorRef> Triple(const Json& j, const std::string& place) const {
    if (!j.is_array() || j.size() < 3 || j.size() > 4 || !j[0].is_string() || !j[1].is_number_integer() ||
        !j[2].is_number_integer()) {
      return Error(place, absl::StrCat("must be [layer name, node index, tensor index], got ", QuoteUserText(j.dump(), 120)));
    }
    const int64_t node = j[1].get<int64_t>(), tensor = j[2].get<int64_t>();
    if (node < 0 || node > kMaxModelConfigLayers || tensor != 0) {
      return Error(place, absl::StrCat("node ", node, ", tensor ", tensor, ": gradflow layers have one output (tensor 0)"));
    }
    if (j.size() == 4) GF_RETURN_IF_ERROR(CheckKwargs(j[3], place + "[3]", /*keras_3=*/false));
    return TensorRef{j[0].get<std::string>(), static_cast<int>(node)};
  }

  // Keras 3's {"class_name": "__keras_tensor__", "config": {"keras_history": [...]}}.
  absl::StatusOr<TensorRef> KerasTensor(const Json& j, const std::string& place) const {
    if (!j.is_object() || !j.contains("config") || !j["config"].is_object() || !j["config"].contains("keras_history")) {
      return Error(place, "must be a __keras_tensor__ object with config.keras_history");
    }
    return Triple(j["config"]["keras_history"], place + ".config.keras_history");
  }

  // One inbound node: Keras 3's {"args": [tensor or [tensors]], "kwargs": {}}
  // or tf.keras 2's [[name, node, tensor, kwargs], ...].
  absl::StatusOr<std::vector<TensorRef>> Node(const Json& node, const std::string& place) const {
    std::vector<TensorRef> refs;
    if (node.is_array()) {
      for (size_t i = 0; i < node.size(); ++i) {
        GF_ASSIGN_OR_RETURN(TensorRef ref, Triple(node[i], absl::StrCat(place, "[", i, "]")));
        refs.push_back(std::move(ref));
      }
    } else if (node.is_object() && node.contains("args") && node["args"].is_array() && node["args"].size() == 1) {
      const Json& arg = node["args"][0];
      const std::string arg_place = place + ".args[0]";
      if (arg.is_array()) {
        for (size_t i = 0; i < arg.size(); ++i) {
          GF_ASSIGN_OR_RETURN(TensorRef ref, KerasTensor(arg[i], absl::StrCat(arg_place, "[", i, "]")));
          refs.push_back(std::move(ref));
        }
      } else {
        GF_ASSIGN_OR_RETURN(TensorRef ref, KerasTensor(arg, arg_place));
        refs.push_back(std::move(ref));
      }
      if (node.contains("kwargs")) GF_RETURN_IF_ERROR(CheckKwargs(node["kwargs"], place + ".kwargs", /*keras_3=*/true));
    } else {
      return Error(place, "must be {\"args\": [tensor or list of tensors], \"kwargs\": {}}");
    }
    if (refs.empty()) return Error(place, "calls the layer on no tensors");
    return refs;
  }

  // [[name, 0, 0], ...], or one [name, 0, 0].
  absl::StatusOr<std::vector<TensorRef>> Refs(const Json& j, const std::string& place) const {
    if (j.is_array() && !j.empty() && j[0].is_string()) {
      GF_ASSIGN_OR_RETURN(TensorRef ref, Triple(j, place));
      return std::vector<TensorRef>{ref};
    }
    if (!j.is_array() || j.empty()) return Error(place, "must be a non-empty list of [layer name, node, tensor]");
    std::vector<TensorRef> refs;
    for (size_t i = 0; i < j.size(); ++i) {
      GF_ASSIGN_OR_RETURN(TensorRef ref, Triple(j[i], absl::StrCat(place, "[", i, "]")));
      refs.push_back(std::move(ref));
    }
    return refs;
  }

 private:
  std::string where_;
};

// An entry's name: its own "name", else its config's.
std::string EntryName(const Json& entry) {
  if (entry.contains("name") && entry["name"].is_string()) return entry["name"].get<std::string>();
  if (entry.contains("config") && entry["config"].is_object() && entry["config"].contains("name") &&
      entry["config"]["name"].is_string()) {
    return entry["config"]["name"].get<std::string>();
  }
  return "";
}

}  // namespace

namespace {

// ReadLayerGraph's steps over one config: the entries, then the inputs, the
// calls in Kahn's order, and the outputs.
class LayerGraphReader {
 public:
  LayerGraphReader(const std::string& where, std::vector<std::string>* notes, const LayerJsonReader& read_layer)
      : reader_(where), where_(where), notes_(notes), read_layer_(read_layer) {}

  absl::StatusOr<FunctionalParts> Read(const Json& config) {
    for (const char* key : {"layers", "input_layers", "output_layers"}) {
      if (!config.is_object() || !config.contains(key)) return reader_.Error("", absl::StrCat("has no '", key, "'"));
    }
    const Json& entries = config["layers"];
    if (!entries.is_array() || entries.size() > size_t{kMaxModelConfigLayers}) {
      return reader_.Error(".layers", absl::StrCat("must be a list of at most ", kMaxModelConfigLayers, " layers"));
    }
    for (size_t i = 0; i < entries.size(); ++i) GF_RETURN_IF_ERROR(ReadEntry(entries[i], absl::StrCat(".layers[", i, "]")));
    GF_RETURN_IF_ERROR(PlaceInputs(config["input_layers"]));
    GF_RETURN_IF_ERROR(PlaceCalls());
    GF_ASSIGN_OR_RETURN(std::vector<TensorRef> outputs, reader_.Refs(config["output_layers"], ".output_layers"));
    for (const TensorRef& ref : outputs) {
      GF_ASSIGN_OR_RETURN(const PendingCall* call, Find(ref, ".output_layers"));
      parts_.graph.outputs.push_back(placed_.at(call));
    }
    return std::move(parts_);
  }

 private:
  // One call as the file gives it: an InputLayer's one, or a layer's node.
  struct PendingCall {
    int layer = -1;  // into parts_.layers; -1: an input
    std::vector<TensorRef> inputs;
    std::string place;
  };

  absl::Status ReadEntry(const Json& entry, const std::string& place) {
    const std::string name = EntryName(entry);
    if (name.empty()) return reader_.Error(place, "has no name");
    if (calls_.count(name)) return reader_.Error(place, absl::StrCat("repeats the layer name ", QuoteUserText(name)));
    if (IsInputLayerEntry(entry)) {
      absl::Status status;
      ConfigReader r(entry, absl::StrCat(where_, place, " (InputLayer)"), status, notes_);
      DType dtype = DType::kF32;
      std::optional<Shape> shape = ReadInputLayer(r, &dtype);
      GF_RETURN_IF_ERROR(status);
      std::vector<int64_t> dims = {-1};
      for (int64_t d : shape->dims()) dims.push_back(d);
      input_types_[name] = TensorType{dtype, Shape(dims)};
      calls_[name].push_back({-1, {}, place});
      return absl::OkStatus();
    }
    GF_ASSIGN_OR_RETURN(LayerPtr layer, read_layer_(entry, where_ + place));
    layer->set_name(name);
    const Json* nodes = entry.contains("inbound_nodes") ? &entry["inbound_nodes"] : nullptr;
    if (nodes == nullptr || !nodes->is_array() || nodes->empty()) {
      return reader_.Error(place, "needs 'inbound_nodes': a list with one entry per call of the layer");
    }
    std::vector<PendingCall>& layer_calls = calls_[name];
    for (size_t k = 0; k < nodes->size(); ++k) {
      const std::string node_place = absl::StrCat(place, ".inbound_nodes[", k, "]");
      GF_ASSIGN_OR_RETURN(std::vector<TensorRef> refs, reader_.Node((*nodes)[k], node_place));
      if (++total_calls_ > size_t{kMaxModelConfigLayers}) return reader_.Error(node_place, "too many layer calls");
      layer_calls.push_back({static_cast<int>(parts_.layers.size()), std::move(refs), node_place});
    }
    parts_.layers.push_back(std::move(layer));
    return absl::OkStatus();
  }

  absl::StatusOr<const PendingCall*> Find(const TensorRef& ref, const std::string& place) const {
    auto it = calls_.find(ref.layer);
    if (it == calls_.end()) return reader_.Error(place, absl::StrCat("names no layer ", QuoteUserText(ref.layer)));
    if (ref.node >= static_cast<int>(it->second.size())) {
      return reader_.Error(place, absl::StrCat("names call ", ref.node, " of layer ", QuoteUserText(ref.layer),
                                               ", which has ", it->second.size()));
    }
    return &it->second[ref.node];
  }

  void Place(const PendingCall* call, LayerGraph::Call made) {
    placed_[call] = static_cast<int>(parts_.graph.calls.size());
    parts_.graph.calls.push_back(std::move(made));
  }

  // The model inputs come first, in input_layers' order.
  absl::Status PlaceInputs(const Json& input_layers) {
    GF_ASSIGN_OR_RETURN(std::vector<TensorRef> inputs, reader_.Refs(input_layers, ".input_layers"));
    for (const TensorRef& ref : inputs) {
      GF_ASSIGN_OR_RETURN(const PendingCall* call, Find(ref, ".input_layers"));
      if (call->layer >= 0 || placed_.count(call)) {
        return reader_.Error(".input_layers",
                             absl::StrCat(QuoteUserText(ref.layer), " is not an InputLayer, or is listed twice"));
      }
      Place(call, {});
      parts_.graph.input_names.push_back(ref.layer);
      parts_.graph.input_types.push_back(input_types_.at(ref.layer));
    }
    return absl::OkStatus();
  }

  // Kahn's algorithm: a call is placed once what it reads is, and after the
  // layer's earlier calls (so node indices keep their meaning). What is
  // never placed waits on a cycle.
  absl::Status PlaceCalls() {
    std::map<const PendingCall*, int> waiting;  // how many of its sources are not placed yet
    std::map<const PendingCall*, std::vector<const PendingCall*>> readers;
    std::deque<const PendingCall*> ready;
    for (const auto& [name, layer_calls] : calls_) {
      for (size_t k = 0; k < layer_calls.size(); ++k) {
        const PendingCall* call = &layer_calls[k];
        if (call->layer < 0) continue;
        std::vector<const PendingCall*> sources;
        if (k > 0) sources.push_back(&layer_calls[k - 1]);
        for (const TensorRef& ref : call->inputs) {
          GF_ASSIGN_OR_RETURN(const PendingCall* source, Find(ref, call->place));
          sources.push_back(source);
        }
        for (const PendingCall* source : sources) {
          if (placed_.count(source)) continue;
          ++waiting[call];
          readers[source].push_back(call);
        }
        if (!waiting.count(call)) ready.push_back(call);
      }
    }
    for (; !ready.empty(); ready.pop_front()) {
      const PendingCall* call = ready.front();
      LayerGraph::Call made{call->layer, {}};
      for (const TensorRef& ref : call->inputs) made.inputs.push_back(placed_.at(*Find(ref, call->place)));
      Place(call, std::move(made));
      for (const PendingCall* next : readers[call]) {
        if (--waiting[next] == 0) ready.push_back(next);
      }
    }
    for (const auto& [name, layer_calls] : calls_) {
      for (const PendingCall& call : layer_calls) {
        if (placed_.count(&call)) continue;
        return reader_.Error(call.place, call.layer < 0 ? "is an InputLayer missing from input_layers"
                                                        : "is never reached from the inputs (its inputs form a cycle "
                                                          "or come from an InputLayer that is not a model input)");
      }
    }
    return absl::OkStatus();
  }

  const GraphReader reader_;
  const std::string where_;
  std::vector<std::string>* notes_;
  const LayerJsonReader& read_layer_;
  FunctionalParts parts_;
  std::map<std::string, std::vector<PendingCall>> calls_;  // by layer name, in node order
  std::map<std::string, TensorType> input_types_;
  std::map<const PendingCall*, int> placed_;  // into parts_.graph.calls
  size_t total_calls_ = 0;
};

}  // namespace

absl::StatusOr<FunctionalParts> ReadLayerGraph(const Json& config, const std::string& where,
                                               std::vector<std::string>* notes, const LayerJsonReader& read_layer) {
  return LayerGraphReader(where, notes, read_layer).Read(config);
}

}  // namespace gradflow::nn
