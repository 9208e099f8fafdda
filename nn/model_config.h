#ifndef GRADFLOW_NN_MODEL_CONFIG_H_
#define GRADFLOW_NN_MODEL_CONFIG_H_

// A Sequential model's configuration as JSON text: what a saved model keeps
// in its safetensors header (metadata key "gradflow.model") so that one file
// rebuilds the whole model (nn::LoadModel), and what nn::CloneModel copies.
//
//   {"format": "gradflow.model", "format_version": 1,
//    "class_name": "Sequential", "name": "sequential",
//    "layers": [
//      {"class_name": "Flatten", "config": {"name": "flatten", "trainable": true,
//                                           "input_shape": [28, 28]}},
//      {"class_name": "Dense", "config": {"name": "dense", "trainable": true,
//                                         "input_shape": null, "units": 300,
//                                         "activation": "relu",   // or a layer object:
//                                             // {"module": "keras.layers", "class_name": "LeakyReLU",
//                                             //  "config": {...}, "registered_name": null}
//                                         "kernel_initializer": {
//                                             "module": "keras.initializers",
//                                             "class_name": "HeNormal",
//                                             "config": {"seed": null},
//                                             "registered_name": null}, ...}},
//      ...],
//    "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
//                "seed": 42, "optimizer": {"class_name": "SGD",
//                                          "config": {"learning_rate": 0.01, ...}},
//                "clip": null, "learning_rate_schedule": null,
//                "loss_config": null}}   // or a loss object: {"class_name": "Huber", "config": {...}}
//
// "compile" is absent (or null) for a model saved before Compile. Every layer
// config has "name", "trainable" and "input_shape" (null, or the shape
// without the batch dimension) beside the layer's own settings
// (Layer::Config()); a layer type is turned back into a layer by the factory
// registered under its class name (nn/layer_registry.h: each of nn/'s layers
// registers itself beside its Config()). Initializers, regularizers and
// constraints are read from that object form or from a Keras name
// ("he_normal"), as Keras reads them (nn/config_reader.h).
//
// The parser is meant for untrusted files: any input gives a layer list or an
// InvalidArgument error naming the place and the problem (unknown layer
// types, activations, initializers, optimizers; wrong JSON types; missing or
// unknown fields; out-of-range values), never a crash. Sizes are bounded
// before anything is allocated (the limits below); the weights themselves are
// not allocated by the parser at all.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/config_reader.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow::nn {

// The safetensors metadata key holding the configuration, and the value of
// its "format" field.
inline constexpr char kModelConfigMetadataKey[] = "gradflow.model";
inline constexpr char kModelConfigFormat[] = "gradflow.model";
inline constexpr int kModelConfigFormatVersion = 1;

// Limits checked before anything is built. They are far above the chapter's
// models (784-300-100-10) and keep a hostile file from asking for absurd
// allocations: a layer's output is at most kMaxConfigUnits floats per sample.
inline constexpr size_t kMaxModelConfigBytes = size_t{16} << 20;
inline constexpr int kMaxModelConfigDepth = 16;  // nesting of JSON arrays/objects
inline constexpr int kMaxModelConfigLayers = 10000;
inline constexpr int64_t kMaxConfigUnits = int64_t{1} << 20;
inline constexpr int64_t kMaxConfigInputElements = int64_t{1} << 24;
inline constexpr int kMaxConfigInputRank = 8;
inline constexpr size_t kMaxConfigNameLength = 256;
inline constexpr size_t kMaxConfigMetrics = 64;  // compile metrics in a config
inline constexpr size_t kMaxConfigListLength = ConfigReader::kMaxListLength;  // metrics, schedule boundaries

// A functional model's configuration has "class_name": "Functional", its
// "layers" with their "inbound_nodes", "input_layers" and "output_layers"
// (Keras 3's layout, nn/layer_graph_json.h).
struct ModelConfig {
  std::string name = "sequential";
  std::vector<LayerPtr> layers;  // fresh layer objects, unbuilt, without weights
  std::optional<CompileOptions> compile;
  std::optional<LayerGraph> graph;  // a functional model's calls; none: Sequential
};

// The configuration of `model` (its layer objects themselves, and its
// compile options if compiled), and the model a configuration describes.
ModelConfig ConfigOf(const Model& model);
absl::StatusOr<Model> ModelFromConfig(const ModelConfig& config);

// Parses a configuration written by ModelConfigToJson (or by hand / another
// tool following the layout above).
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text);

// The layers only (ParseModelConfig(json_text)->layers).
absl::StatusOr<std::vector<LayerPtr>> ParseLayersConfig(std::string_view json_text);

// The JSON text of `config` (compact, keys sorted). Fails for a layer whose
// type has no Config() or no registered factory, so a model that could not
// be loaded back is never saved.
absl::StatusOr<std::string> ModelConfigToJson(const ModelConfig& config);

// One layer as {"class_name": type, "config": {...}} and back.
absl::StatusOr<nlohmann::json> LayerToJson(const Layer& layer);
// `where` starts error messages ("model config: layers[2]"). Keras's own
// layer configs are read too (their "dtype", "batch_shape", Keras 3's
// "module" ...); what is read but changes nothing is noted in `notes`.
absl::StatusOr<LayerPtr> LayerFromJson(const nlohmann::json& layer, const std::string& where = "layer",
                                       std::vector<std::string>* notes = nullptr);

// A fresh layer of the same type and configuration (name, trainable flag and
// input shape included), without weights.
absl::StatusOr<LayerPtr> CloneLayer(const Layer& layer);

// Compile options as the "compile" object and back.
nlohmann::json CompileOptionsToJson(const CompileOptions& options);
absl::StatusOr<CompileOptions> CompileOptionsFromJson(const nlohmann::json& compile);

// Makes a layer type loadable: `factory` receives the layer's "config"
// object (including "name", "trainable" and "input_shape", which
// LayerFromJson applies afterwards) and returns the layer or an error.
// Registering a class name twice is an AlreadyExists error.
using LayerFactory = std::function<absl::StatusOr<LayerPtr>(const nlohmann::json& config)>;
absl::Status RegisterLayerType(const std::string& class_name, LayerFactory factory);
// The registered class names, sorted.
std::vector<std::string> LayerTypeNames();

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MODEL_CONFIG_H_
