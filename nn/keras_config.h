#ifndef GRADFLOW_NN_KERAS_CONFIG_H_
#define GRADFLOW_NN_KERAS_CONFIG_H_

// Keras's model and compile configs (JSON) to gradflow's and back, for
// nn/keras.cc. The layers themselves are read and written by each layer
// type's own FromConfig / Config() (nn/layer_registry.h), which speak
// Keras 3's keys; this file handles what surrounds them: the Sequential
// wrapper, InputLayer, dtype policies, module / registered_name /
// build_config, and the compile config's loss, metrics and optimizer
// (Keras 3 and tf.keras 2.x spellings).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "nn/model.h"
#include "nn/model_config.h"

namespace gradflow::nn::keras_config {

// The Keras version whose layout gradflow writes (metadata.json, the h5 root).
inline constexpr char kWrittenKerasVersion[] = "3.10.0";

// A Sequential model config ({"class_name": "Sequential", "config": {...}},
// Keras 3's with "module" too): its layers (InputLayer becomes the first
// layer's input shape) and name. `where` starts messages.
absl::StatusOr<ModelConfig> ReadModel(const nlohmann::json& model, const std::string& where,
                                      std::vector<std::string>* notes);

// The layer names of the model's outputs, in output order: what Keras keys
// per-output compile settings by (its model.output_names).
std::vector<std::string> OutputLayerNames(const ModelConfig& config);

// Keras 3's compile_config, or a legacy .h5 training_config (with
// "optimizer_config"). `keras_version` is the file's: tf.keras before 2.11
// follows Nadam's 2.x momentum schedule, and gives a flat metrics list to
// every output (Keras 3 reads it as one entry per output). `loss`,
// `loss_weights` and `metrics` may be per output, as lists in the order of
// `output_names` (OutputLayerNames) or dicts keyed by them; they become
// CompileOptions::outputs.
absl::StatusOr<CompileOptions> ReadCompile(const nlohmann::json& compile, const std::string& keras_version,
                                           const std::vector<std::string>& output_names, const std::string& where,
                                           std::vector<std::string>* notes);

// The model's Keras 3 config (`legacy_h5`: the legacy .h5 form, without
// module / registered_name / build_config on the layers). `model` is compiled.
absl::StatusOr<nlohmann::json> WriteModel(const Model& model, bool legacy_h5);
// Keras 3's compile_config (`legacy_h5`: training_config, with
// "optimizer_config"), at the model's current learning rate. A model with
// several outputs gets its metrics as a list per output, and with
// CompileOptions::outputs its loss and loss_weights as lists too.
absl::StatusOr<nlohmann::json> WriteCompile(const Model& model, bool legacy_h5);

// A compile config's metrics: a list of names ("accuracy", "mae") and Keras
// metric objects ({"class_name": "AUC", "config": {"name": "auc",
// "num_thresholds": 200, ...}}; tf.keras 2.x's nested lists too), appended
// to `out`. Objects of the classes nn/metrics.h describes keep their
// settings and name; settings gradflow lacks (multi_label, class_id, ...)
// must hold Keras's defaults. WriteMetrics is the inverse (names as
// strings, configured metrics as Keras 3 objects).
absl::Status ReadMetrics(const nlohmann::json& metrics, const std::string& where, std::vector<std::string>* notes,
                         std::vector<Metric>& out);
absl::StatusOr<nlohmann::json> WriteMetrics(const std::vector<Metric>& metrics, bool legacy_h5);

}  // namespace gradflow::nn::keras_config

#endif  // GRADFLOW_NN_KERAS_CONFIG_H_
