#ifndef GRADFLOW_NN_LAYER_GRAPH_JSON_H_
#define GRADFLOW_NN_LAYER_GRAPH_JSON_H_

// A functional model's layer graph in Keras 3's functional config layout,
// written and read here for both gradflow's own config (nn/model_config.h)
// and Keras files (nn/keras_config.h):
//
//   "layers": [
//     {"class_name": "InputLayer", "name": "wide", "config": {...}, "inbound_nodes": []},
//     {"class_name": "Dense", "name": "shared", "config": {...},
//      "inbound_nodes": [                       // one per call of the layer
//        {"args": [{"class_name": "__keras_tensor__",
//                   "config": {"shape": [null, 4], "dtype": "float32",
//                              "keras_history": ["deep", 0, 0]}}],   // layer, its call, 0
//         "kwargs": {}},
//        ...]},
//     {"class_name": "Concatenate", ..., "inbound_nodes": [{"args": [[tensor, tensor]], "kwargs": {}}]},
//     ...],
//   "input_layers": [["wide", 0, 0], ["deep", 0, 0]],
//   "output_layers": [["main", 0, 0], ["aux", 0, 0]]
//
// tf.keras 2's inbound nodes ([[["deep", 0, 0, {}], ...], ...]) are read too.
// The reader is meant for untrusted files: references to unknown layers or
// calls, cycles, repeated names and wrong JSON types are InvalidArgument
// errors naming the place; nothing recurses on the input.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "nn/config_reader.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow::nn {

// The "layers", "input_layers" and "output_layers" values.
struct FunctionalJson {
  nlohmann::json layers, input_layers, output_layers;
};

// Writes one layer's {"class_name", "config", ...} object, given the types
// of the inputs of its first call (empty without call_types).
using LayerJsonWriter =
    std::function<absl::StatusOr<nlohmann::json>(const Layer& layer, const std::vector<TensorType>& inputs)>;
// `call_types` (Model::CallTypes(), or null): each call's output type, for
// the tensors' "shape" (null without; the readers go by keras_history, and a
// config that is only read and written needs no build). `keras_module`: the
// InputLayers get Keras 3's "module" and "registered_name". `layer_order`
// (null: model.layers()'s): the order of the layer entries, as indices into
// model.layers().
absl::StatusOr<FunctionalJson> WriteLayerGraph(const Model& model, const std::vector<TensorType>* call_types,
                                               const LayerJsonWriter& write_layer, bool keras_module,
                                               const std::vector<int>* layer_order = nullptr);

// The order Keras 3 gives a model's layers when it builds the model from
// its graph (Function's map_graph): by decreasing depth (the longest path to
// an output), ties in the order a depth-first walk from the outputs first
// meets them. Keras numbers a .keras file's weight groups ("dense",
// "dense_1") and matches a legacy .h5 file's weights in this order, so the
// Keras writers list the layers in it. Indices into the `layers` layers.
std::vector<int> KerasLayerOrder(const LayerGraph& graph, size_t layers);

// Reads one layer entry (not an InputLayer) / one InputLayer entry.
using LayerJsonReader = std::function<absl::StatusOr<LayerPtr>(const nlohmann::json& entry, const std::string& where)>;
struct FunctionalParts {
  std::vector<LayerPtr> layers;  // in the order of "layers"
  LayerGraph graph;
};
// `config` holds the three keys; `where` starts error messages.
absl::StatusOr<FunctionalParts> ReadLayerGraph(const nlohmann::json& config, const std::string& where,
                                               std::vector<std::string>* notes, const LayerJsonReader& read_layer);

// Keras's InputLayer entry ({"class_name": "InputLayer", "config":
// {"batch_shape": [null, ...], "dtype": "float32", ...}}), and back: the
// shape of one sample and, given `dtype`, the input's dtype ("int32" and
// "int64" too; without `dtype` only "float32" is read).
bool IsInputLayerEntry(const nlohmann::json& entry);
// [null, d1, d2, ...]: a Keras batch shape (dimension 0 is the batch).
nlohmann::json BatchShapeJson(const Shape& shape);
// "float32", "int32", "int64".
std::string KerasDTypeName(DType dtype);
// `type`: the batch shape and the dtype.
nlohmann::json InputLayerJson(const std::string& name, const TensorType& type, bool keras_module);
std::optional<Shape> ReadInputLayer(ConfigReader& entry, DType* dtype = nullptr);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_LAYER_GRAPH_JSON_H_
