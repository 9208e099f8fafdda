// libFuzzer target for the model configuration parser (nn/model_config.h),
// which reads the "gradflow.model" metadata of saved models from untrusted
// files.
//
// ParseModelConfig must return a status for any text. What it accepts must
// be a fixed point of writing: ModelConfigToJson succeeds, and parsing and
// writing that text again gives the same text. Small accepted models (the
// size gate keeps a hostile config from asking for gigabytes of weights, as
// LoadModel's check against the file's tensors does) are then compiled and
// run on zeros: building layers from accepted values must give a status too,
// never a crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nn/layers.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// Compile and run only models this small.
constexpr int64_t kMaxFuzzInputElements = 1024;
constexpr int64_t kMaxFuzzUnits = 256;
constexpr size_t kMaxFuzzLayers = 8;
constexpr int64_t kFuzzBatch = 2;

bool SmallEnoughToBuild(const gradflow::nn::ModelConfig& config) {
  if (config.layers.empty() || config.layers.size() > kMaxFuzzLayers) return false;
  const auto& input = config.layers[0]->input_shape();
  if (!input || input->NumElements() > kMaxFuzzInputElements) return false;
  for (const gradflow::nn::LayerPtr& layer : config.layers) {
    nlohmann::json c = layer->Config();
    for (const char* key : {"units", "target_shape"}) {
      if (!c.is_object() || !c.contains(key)) continue;
      const nlohmann::json& v = c[key];
      if (v.is_number() && v.get<double>() > kMaxFuzzUnits) return false;
      if (v.is_array()) {
        for (const auto& d : v) {
          if (d.is_number() && d.get<double>() > kMaxFuzzInputElements) return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace nn = gradflow::nn;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<nn::ModelConfig> config = nn::ParseModelConfig(text);
  if (!config.ok()) {
    GF_FUZZ_CHECK(!config.status().message().empty(), "an error without a message");
    return 0;
  }
  absl::StatusOr<std::string> written = nn::ModelConfigToJson(*config);
  GF_FUZZ_CHECK(written.ok(), "an accepted config cannot be written: %s",
                std::string(written.status().message()).c_str());
  absl::StatusOr<nn::ModelConfig> again = nn::ParseModelConfig(*written);
  GF_FUZZ_CHECK(again.ok(), "the written config does not parse: %s\n%s",
                std::string(again.status().message()).c_str(), written->c_str());
  absl::StatusOr<std::string> rewritten = nn::ModelConfigToJson(*again);
  GF_FUZZ_CHECK(rewritten.ok() && *rewritten == *written, "writing is not a fixed point:\n%s\n%s",
                written->c_str(), rewritten.ok() ? rewritten->c_str() : "(error)");

  if (!SmallEnoughToBuild(*config)) return 0;
  nn::Sequential model(config->layers, config->name);
  absl::Status compiled = model.Compile(config->compile.value_or(nn::CompileOptions{.loss = "mse"}));
  if (!compiled.ok()) return 0;
  gradflow::Shape shape = *config->layers[0]->input_shape();
  std::vector<int64_t> dims = {kFuzzBatch};
  dims.insert(dims.end(), shape.dims().begin(), shape.dims().end());
  absl::StatusOr<gradflow::Tensor> predicted =
      model.Predict(gradflow::Tensor(gradflow::DType::kF32, gradflow::Shape(dims)));
  if (predicted.ok()) {
    GF_FUZZ_CHECK(predicted->shape().rank() >= 1 && predicted->shape()[0] == kFuzzBatch,
                  "prediction of %lld rows for %lld samples",
                  static_cast<long long>(predicted->shape().rank() ? predicted->shape()[0] : -1),
                  static_cast<long long>(kFuzzBatch));
  }
  return 0;
}
