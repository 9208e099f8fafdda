#include "nn/gaussian_noise.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "ops/gaussian_noise.h"

namespace gradflow::nn {
namespace {

class GaussianNoiseLayer : public BuiltinLayer<GaussianNoiseLayer> {
 public:
  static constexpr char kClassName[] = "GaussianNoise";
  static constexpr char kExampleConfig[] = R"({"stddev": 0.1})";
  GaussianNoiseLayer(double stddev, std::optional<int64_t> seed) : stddev_(stddev), seed_(seed) {}
  nlohmann::json Config() const override {
    return {{"stddev", stddev_}, {"seed", seed_ ? nlohmann::json(*seed_) : nlohmann::json()}};
  }
  static LayerPtr FromConfig(ConfigReader& r) {
    const double stddev = r.NumberIn("stddev", std::nullopt, 0, std::numeric_limits<double>::max());
    std::optional<int64_t> seed;
    if (!r.IsNull("seed")) {
      seed = r.Integer("seed", std::nullopt, std::numeric_limits<int64_t>::min(),
                       std::numeric_limits<int64_t>::max());
    }
    return r.ok() ? GaussianNoise(stddev, seed) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    return ops::GaussianNoise(scope, x, stddev_, {.seed = seed_});
  }

 private:
  double stddev_;
  std::optional<int64_t> seed_;
};
}  // namespace

LayerPtr GaussianNoise(double stddev, std::optional<int64_t> seed) {
  return std::make_shared<GaussianNoiseLayer>(stddev, seed);
}

}  // namespace gradflow::nn
