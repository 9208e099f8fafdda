#include "nn/dropout_layers.h"

#include <string>

#include <nlohmann/json.hpp>

#include "ops/dropout.h"

namespace gradflow::nn {
namespace {

class DropoutLayer : public Layer {
 public:
  DropoutLayer(std::string type, double rate, bool alpha, bool monte_carlo)
      : type_(std::move(type)), rate_(rate), alpha_(alpha), monte_carlo_(monte_carlo) {}
  std::string type() const override { return type_; }
  nlohmann::json Config() const override { return {{"rate", rate_}}; }

 protected:
  Output Build(const Scope& scope, Output x) override {
    ops::DropoutOptions options{.active_in_inference = monte_carlo_};
    return alpha_ ? ops::AlphaDropout(scope, x, rate_, options)
                  : ops::Dropout(scope, x, rate_, options);
  }

 private:
  std::string type_;
  double rate_;
  bool alpha_, monte_carlo_;
};

}  // namespace

LayerPtr Dropout(double rate) {
  return std::make_shared<DropoutLayer>("Dropout", rate, /*alpha=*/false, /*monte_carlo=*/false);
}
LayerPtr AlphaDropout(double rate) {
  return std::make_shared<DropoutLayer>("AlphaDropout", rate, /*alpha=*/true, /*monte_carlo=*/false);
}
LayerPtr MCDropout(double rate) {
  return std::make_shared<DropoutLayer>("MCDropout", rate, /*alpha=*/false, /*monte_carlo=*/true);
}
LayerPtr MCAlphaDropout(double rate) {
  return std::make_shared<DropoutLayer>("MCAlphaDropout", rate, /*alpha=*/true, /*monte_carlo=*/true);
}

}  // namespace gradflow::nn
