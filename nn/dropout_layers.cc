#include "nn/dropout_layers.h"

#include <string>

#include <nlohmann/json.hpp>

#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "ops/dropout.h"

namespace gradflow::nn {
namespace {

constexpr char kDropout[] = "Dropout";
constexpr char kAlphaDropout[] = "AlphaDropout";
constexpr char kMCDropout[] = "MCDropout";
constexpr char kMCAlphaDropout[] = "MCAlphaDropout";

// One class per Keras name; `kAlpha` picks alpha dropout, `kMonteCarlo`
// keeps it on in inference plans.
template <const char* kName, bool kAlpha, bool kMonteCarlo>
class DropoutLayer : public BuiltinLayer<DropoutLayer<kName, kAlpha, kMonteCarlo>> {
 public:
  static constexpr const char* kClassName = kName;
  // The chapter's MCDropout classes are its own, not Keras's.
  static constexpr bool kGradflowOnly = kMonteCarlo;
  static constexpr char kExampleConfig[] = R"({"rate": 0.25})";
  // The default names come from the model (Keras's snake case of the class
  // name, made unique: "mc_dropout", "mc_dropout_1", ...).
  explicit DropoutLayer(double rate) : rate_(rate) {}
  nlohmann::json Config() const override { return {{"rate", rate_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const double rate = r.NumberIn("rate", std::nullopt, 0, 1, /*hi_open=*/true);
    r.Unsupported("noise_shape", nullptr, "gradflow drops elements independently");
    r.Ignored("seed", nullptr, "gradflow draws dropout masks from the model's seed");
    return r.ok() ? std::make_shared<DropoutLayer>(rate) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    ops::DropoutOptions options{.active_in_inference = kMonteCarlo};
    return kAlpha ? ops::AlphaDropout(scope, x, rate_, options) : ops::Dropout(scope, x, rate_, options);
  }

 private:
  double rate_;
};

using PlainDropout = DropoutLayer<kDropout, /*kAlpha=*/false, /*kMonteCarlo=*/false>;
using AlphaDropoutLayer = DropoutLayer<kAlphaDropout, /*kAlpha=*/true, /*kMonteCarlo=*/false>;
using MCDropoutLayer = DropoutLayer<kMCDropout, /*kAlpha=*/false, /*kMonteCarlo=*/true>;
using MCAlphaDropoutLayer = DropoutLayer<kMCAlphaDropout, /*kAlpha=*/true, /*kMonteCarlo=*/true>;

}  // namespace

LayerPtr Dropout(double rate) { return std::make_shared<PlainDropout>(rate); }
LayerPtr AlphaDropout(double rate) { return std::make_shared<AlphaDropoutLayer>(rate); }
LayerPtr MCDropout(double rate) { return std::make_shared<MCDropoutLayer>(rate); }
LayerPtr MCAlphaDropout(double rate) { return std::make_shared<MCAlphaDropoutLayer>(rate); }

}  // namespace gradflow::nn
