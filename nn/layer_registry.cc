#include "nn/layer_registry.h"

#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "nn/config_reader.h"

namespace gradflow::nn {
namespace {

// The keys every layer config has; LayerFromJson reads them.
// Read by LayerFromJson (nn/model_config.cc) for every layer type.
constexpr std::initializer_list<const char*> kCommonLayerKeys = {
    "name", "trainable", "input_shape", "dtype", "batch_shape", "batch_input_shape", "activity_regularizer"};

struct Registry {
  std::mutex mutex;
  std::map<std::string, LayerTypeInfo, std::less<>> types;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace

absl::Status RegisterLayerTypeInfo(LayerTypeInfo info) {
  if (info.class_name.empty() || !info.from_json) {
    return absl::InvalidArgumentError("registering a layer type needs a class name and a factory");
  }
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  const std::string name = info.class_name;
  if (!registry.types.emplace(name, std::move(info)).second) {
    return absl::AlreadyExistsError(absl::StrCat("layer type '", name, "' is already registered"));
  }
  return absl::OkStatus();
}

bool RegisterBuiltinLayer(std::string class_name, LayerPtr (*from_config)(ConfigReader&),
                          std::string example_config, bool in_keras, int test_inputs) {
  auto from_json = [from_config, class_name](const nlohmann::json& config,
                                             std::vector<std::string>* notes) -> absl::StatusOr<LayerPtr> {
    absl::Status status;
    ConfigReader reader(config, "config", status, notes);
    reader.Accept(kCommonLayerKeys);
    LayerPtr layer = from_config(reader);
    reader.Finish();
    if (!status.ok()) return status;
    if (layer == nullptr) return absl::InternalError(absl::StrCat(class_name, " factory returned null"));
    return layer;
  };
  // A name registered twice is a programming error in nn/ itself; the
  // registry-walking test fails on it (the second registration is missing).
  return RegisterLayerTypeInfo({class_name, std::move(from_json), std::move(example_config), in_keras, test_inputs}).ok();
}

const LayerTypeInfo* FindLayerType(std::string_view class_name) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.types.find(class_name);
  return it == registry.types.end() ? nullptr : &it->second;
}

std::vector<LayerTypeInfo> LayerTypes() {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  std::vector<LayerTypeInfo> types;
  for (const auto& [name, info] : registry.types) types.push_back(info);
  return types;
}

}  // namespace gradflow::nn
