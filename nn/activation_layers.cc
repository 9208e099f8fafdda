#include "nn/activation_layers.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "nn/model_config.h"
#include "ops/activations.h"
#include "ops/prelu.h"

namespace gradflow::nn {
namespace {

// Records why a layer parameter is unusable (a saved model must load back,
// and the config reader refuses non-finite numbers) and fails the build.
bool CheckFinite(const Scope& scope, const char* layer, const char* field, double value) {
  if (std::isfinite(value)) return true;
  scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(
      layer, " layer '", scope.prefix(), "': '", field, "' must be a finite number, got ", value)));
  return false;
}

class LeakyReLULayer : public BuiltinLayer<LeakyReLULayer> {
 public:
  static constexpr char kClassName[] = "LeakyReLU";
  static constexpr char kExampleConfig[] = "{}";
  explicit LeakyReLULayer(double alpha) : alpha_(alpha) {}
  nlohmann::json Config() const override { return {{"alpha", alpha_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const double alpha = r.Number("alpha", kLeakyReLULayerDefaultAlpha);
    return r.ok() ? LeakyReLU(alpha) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    if (!CheckFinite(scope, "LeakyReLU", "alpha", alpha_)) return {};
    return ops::LeakyRelu(scope, x, alpha_);
  }

 private:
  double alpha_;
};

class ELULayer : public BuiltinLayer<ELULayer> {
 public:
  static constexpr char kClassName[] = "ELU";
  static constexpr char kExampleConfig[] = "{}";
  explicit ELULayer(double alpha) : alpha_(alpha) {}
  nlohmann::json Config() const override { return {{"alpha", alpha_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const double alpha = r.Number("alpha", kELULayerDefaultAlpha);
    return r.ok() ? ELU(alpha) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    if (!CheckFinite(scope, "ELU", "alpha", alpha_)) return {};
    return ops::Elu(scope, x, alpha_);
  }

 private:
  double alpha_;
};

class RReLULayer : public BuiltinLayer<RReLULayer> {
 public:
  static constexpr char kClassName[] = "RReLU";
  static constexpr char kExampleConfig[] = "{}";
  RReLULayer(double lower, double upper) : lower_(lower), upper_(upper) {}
  nlohmann::json Config() const override { return {{"lower", lower_}, {"upper", upper_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const double lower = r.NumberIn("lower", ops::kRReluDefaultLower, 0, 1);
    const double upper = r.NumberIn("upper", ops::kRReluDefaultUpper, 0, 1);
    if (r.ok() && lower > upper) r.Fail(absl::StrCat("'lower' (", lower, ") must be <= 'upper' (", upper, ")"));
    return r.ok() ? RReLU(lower, upper) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    if (!CheckFinite(scope, "RReLU", "lower", lower_) || !CheckFinite(scope, "RReLU", "upper", upper_)) return {};
    return ops::RRelu(scope, x, lower_, upper_);
  }

 private:
  double lower_, upper_;
};

class PReLULayer : public BuiltinLayer<PReLULayer> {
 public:
  static constexpr char kClassName[] = "PReLU";
  static constexpr char kExampleConfig[] = "{}";
  explicit PReLULayer(PReLUOptions options) : options_(std::move(options)) {
    input_shape_ = options_.input_shape;
    if (!options_.name.empty()) set_name(options_.name);
  }
  nlohmann::json Config() const override {
    return {{"alpha_initializer", options_.alpha_initializer.ToJson()}, {"shared_axes", options_.shared_axes}};
  }
  static LayerPtr FromConfig(ConfigReader& r) {
    PReLUOptions o;
    if (auto init = r.Initializer("alpha_initializer")) o.alpha_initializer = *init;
    for (int64_t axis : r.List<int64_t>("shared_axes", std::vector<int64_t>{})) {
      if (axis < 1 || axis > kMaxConfigInputRank) {
        r.FailField("shared_axes", absl::StrCat("has axis ", axis, "; axes are in [1, ",
                                                kMaxConfigInputRank, "] (0 is the batch)"));
      }
      o.shared_axes.push_back(static_cast<int>(axis));
    }
    return r.ok() ? PReLU(std::move(o)) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    Graph& g = scope.graph();
    if (!x.valid()) return {};
    auto fail = [&](const std::string& message) {
      g.RecordError(absl::InvalidArgumentError(absl::StrCat("PReLU layer '", scope.prefix(), "': ", message)));
      return Output{};
    };
    if (x.shape().rank() < 2) {
      return fail(absl::StrCat("needs an input with a batch dim and features, got '", x.name(), "' ",
                               x.type().ToString()));
    }
    std::vector<int64_t> alpha_shape(x.shape().dims().begin() + 1, x.shape().dims().end());
    for (int axis : options_.shared_axes) {
      if (axis < 1 || axis >= x.shape().rank()) {
        return fail(absl::StrCat("shared axis ", axis, " is not in [1, ", x.shape().rank() - 1,
                                 "] for input ", x.type().ToString(), " (axis 0 is the batch)"));
      }
      alpha_shape[axis - 1] = 1;
    }
    auto init = options_.alpha_initializer.get();
    if (!init.ok()) return fail(std::string(init.status().message()));
    Output alpha = AddVariable(scope, "alpha", Shape(alpha_shape), *init);
    return ops::PRelu(scope, x, alpha);
  }

 private:
  PReLUOptions options_;
};
}  // namespace

LayerPtr LeakyReLU(double alpha) { return std::make_shared<LeakyReLULayer>(alpha); }
LayerPtr ELU(double alpha) { return std::make_shared<ELULayer>(alpha); }
LayerPtr PReLU(PReLUOptions options) { return std::make_shared<PReLULayer>(std::move(options)); }
LayerPtr RReLU(double lower, double upper) { return std::make_shared<RReLULayer>(lower, upper); }

}  // namespace gradflow::nn
