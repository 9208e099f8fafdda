#ifndef GRADFLOW_NN_LAYER_REGISTRY_H_
#define GRADFLOW_NN_LAYER_REGISTRY_H_

// The one list of layer types. A built-in layer is one class, derived from
// BuiltinLayer<Self>, that declares its Keras class name and an example
// config, and writes its settings (Config()) and reads them back
// (FromConfig) side by side; deriving from BuiltinLayer registers it:
//
//   class GaussianNoiseLayer : public BuiltinLayer<GaussianNoiseLayer> {
//    public:
//     static constexpr char kClassName[] = "GaussianNoise";
//     static constexpr char kExampleConfig[] = R"({"stddev": 0.1})";
//     nlohmann::json Config() const override { return {{"stddev", stddev_}}; }
//     static LayerPtr FromConfig(ConfigReader& r) { ... }
//     ...
//   };
//
// type(), LayerFromJson / LayerToJson, LayerTypeNames(), Summary and the
// registry-walking tests (tests/nn/registry_test.cc builds, trains, saves and
// reloads every registered type from its example config) all read this
// registry; nothing else lists layer types. Layer types from outside nn/ use
// nn::RegisterLayerType (nn/model_config.h), which feeds the same registry.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "nn/layers.h"

namespace gradflow::nn {

class ConfigReader;

// A layer type as the registry holds it.
struct LayerTypeInfo {
  std::string class_name;  // Keras's class name: the config's "class_name" and Layer::type()
  // Makes a layer from its "config" object (the common keys "name",
  // "trainable", "input_shape" and Keras's "dtype", "batch_shape", ... are
  // applied by LayerFromJson afterwards); what it reads but ignores goes to
  // `notes` (may be null).
  std::function<absl::StatusOr<LayerPtr>(const nlohmann::json& config, std::vector<std::string>* notes)> from_json;
  // A valid "config" object (JSON text) for the registry-walking tests; empty
  // for types registered from outside nn/.
  std::string example_config;
  // Whether Keras has this class (keras.layers), so a Keras file may hold it.
  bool in_keras = false;
  // How many tensors the registry-walking tests call it on: 1, or 2 for the
  // merge layers (a class declares `static constexpr int kTestInputs = 2;`).
  int test_inputs = 1;
};

// Adds a type; AlreadyExists if the class name is taken.
absl::Status RegisterLayerTypeInfo(LayerTypeInfo info);
// Wraps a FromConfig(ConfigReader&) reader into a registration.
bool RegisterBuiltinLayer(std::string class_name, LayerPtr (*from_config)(ConfigReader&),
                          std::string example_config, bool in_keras, int test_inputs);

// The base of nn/'s layers. Deriving from it is the registration: Self's
// kClassName, FromConfig and kExampleConfig are registered when the program
// starts, and a class missing one of them does not compile. A layer Keras
// has no class for declares `static constexpr bool kGradflowOnly = true;`.
// type() returns kClassName, the same constant, so the two cannot disagree.
template <typename Self>
class BuiltinLayer : public Layer {
 public:
  std::string type() const final { return Self::kClassName; }

 protected:
  BuiltinLayer() { static_cast<void>(registered_); }  // instantiates the registration

 private:
  static constexpr bool GradflowOnly() {
    if constexpr (requires { Self::kGradflowOnly; }) return Self::kGradflowOnly;
    return false;
  }
  static constexpr int TestInputs() {
    if constexpr (requires { Self::kTestInputs; }) return Self::kTestInputs;
    return 1;
  }
  static inline const bool registered_ =
      RegisterBuiltinLayer(Self::kClassName, &Self::FromConfig, Self::kExampleConfig,
                           /*in_keras=*/!BuiltinLayer::GradflowOnly(), BuiltinLayer::TestInputs());
};

// The registered type of that class name, or nullptr.
const LayerTypeInfo* FindLayerType(std::string_view class_name);
// Every registered type, by class name.
std::vector<LayerTypeInfo> LayerTypes();

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_LAYER_REGISTRY_H_
