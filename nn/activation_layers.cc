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

// A relu with that negative slope as Dense's post-op; the post-op's
// derivative (from the output) needs a slope >= 0.
std::optional<ops::FusedActivation> FusedRelu(double slope) {
  if (!(slope >= 0 && std::isfinite(slope))) return std::nullopt;
  return ops::FusedActivation{.name = "relu", .alpha = slope};
}

class LeakyReLULayer : public BuiltinLayer<LeakyReLULayer> {
 public:
  static constexpr char kClassName[] = "LeakyReLU";
  static constexpr char kExampleConfig[] = "{}";
  explicit LeakyReLULayer(double alpha) : alpha_(alpha) {}
  // Keras 3 calls the slope negative_slope; tf.keras 2.x (and gradflow
  // files before 2026-12) alpha.
  nlohmann::json Config() const override { return {{"negative_slope", alpha_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const char* key = r.IsNull("alpha") ? "negative_slope" : "alpha";
    const double alpha = r.Number(key, kLeakyReLULayerDefaultAlpha);
    return r.ok() ? LeakyReLU(alpha) : nullptr;
  }
  std::optional<ops::FusedActivation> AsFusedActivation() const override { return FusedRelu(alpha_); }

 protected:
  Output Build(const Scope& scope, Output x) override {
    if (!CheckFinite(scope, "LeakyReLU", "negative_slope", alpha_)) return {};
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
  std::optional<ops::FusedActivation> AsFusedActivation() const override {
    if (!(alpha_ >= 0 && std::isfinite(alpha_))) return std::nullopt;  // the post-op's derivative needs it
    return ops::FusedActivation{.name = "elu", .alpha = alpha_};
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
  static constexpr bool kGradflowOnly = true;  // not a Keras layer
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
    r.Unsupported("alpha_regularizer", nullptr, "gradflow's PReLU has no regularizer");
    r.Unsupported("alpha_constraint", nullptr, "gradflow's PReLU has no constraint");
    const std::vector<int64_t> shared =
        r.IsNull("shared_axes") ? std::vector<int64_t>{} : r.List<int64_t>("shared_axes", std::nullopt);  // Keras: None
    for (int64_t axis : shared) {
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
// Keras's ReLU layer: max(x, 0), or with negative_slope a leaky ReLU.
class ReLULayer : public BuiltinLayer<ReLULayer> {
 public:
  static constexpr char kClassName[] = "ReLU";
  static constexpr char kExampleConfig[] = "{}";
  explicit ReLULayer(double negative_slope) : negative_slope_(negative_slope) {}
  nlohmann::json Config() const override {
    return {{"max_value", nullptr}, {"negative_slope", negative_slope_}, {"threshold", 0.0}};
  }
  static LayerPtr FromConfig(ConfigReader& r) {
    r.Unsupported("max_value", nullptr, "gradflow's ReLU layer has no cap (use the \"relu6\" activation for 6)");
    r.Unsupported("threshold", 0.0, "gradflow's ReLU layer has no threshold");
    const double slope = r.NumberIn("negative_slope", 0.0, 0, 1e30);
    return r.ok() ? ReLU(slope) : nullptr;
  }
  std::optional<ops::FusedActivation> AsFusedActivation() const override { return FusedRelu(negative_slope_); }

 protected:
  Output Build(const Scope& scope, Output x) override {
    if (!CheckFinite(scope, "ReLU", "negative_slope", negative_slope_)) return {};
    return negative_slope_ == 0 ? ops::Activation(scope, x, "relu") : ops::LeakyRelu(scope, x, negative_slope_);
  }

 private:
  double negative_slope_;
};

// Keras's Softmax layer over the last axis.
class SoftmaxLayer : public BuiltinLayer<SoftmaxLayer> {
 public:
  static constexpr char kClassName[] = "Softmax";
  static constexpr char kExampleConfig[] = "{}";
  nlohmann::json Config() const override { return {{"axis", -1}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    r.Unsupported("axis", -1, "gradflow's softmax runs over the last axis");
    return r.ok() ? Softmax() : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    Output y = ops::Activation(scope, x, "softmax");
    set_softmax_logits(x);
    return y;
  }
};

// "dense/alpha, dense/beta": the variables an activation object's build made.
std::string VariableNames(const Layer& layer) {
  std::vector<std::string> names;
  for (const Output& v : layer.variables()) names.push_back(v.name());
  return absl::StrJoin(names, ", ");
}

}  // namespace

// ------------------------------------------------------------ ActivationOption
// (declared in nn/layers.h beside DenseOptions)

ActivationOption::ActivationOption(std::shared_ptr<Layer> layer) : layer_(std::move(layer)), has_layer_(true) {}

Output ActivationOption::Apply(const Scope& scope, Output y, const std::string& owner, Output* softmax_logits) const {
  auto fail = [&](const std::string& message) {
    scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(owner, ": ", message)));
    return Output{};
  };
  if (!has_layer_) {
    if (is_linear()) return y;
    if (name_ == "softmax") *softmax_logits = y;
    return ops::Activation(scope, y, name_);
  }
  if (layer_ == nullptr) return fail("the activation is a null layer pointer; use \"linear\" for none");
  if (!y.valid()) return {};
  // The object's own Build, under the owner's scope (its nodes are named
  // like those of a named activation: "dense/LeakyRelu").
  Output out = layer_->Apply(scope, y);
  if (!layer_->variables().empty()) {
    return fail(absl::StrCat("its activation, a ", layer_->type(), " layer, has weights (", VariableNames(*layer_),
                             "), which gradflow does not keep inside another layer; use a weightless activation "
                             "(a name, or e.g. nn::LeakyReLU(0.2)), or add the ", layer_->type(),
                             " as a layer of its own after this one"));
  }
  if (layer_->softmax_logits().valid()) *softmax_logits = layer_->softmax_logits();
  return out;
}

std::optional<ops::FusedActivation> ActivationOption::Fused() const {
  if (!has_layer_) {
    if (!ops::IsFusableActivation(name_)) return std::nullopt;
    return ops::FusedActivation{.name = name_};
  }
  return layer_ ? layer_->AsFusedActivation() : std::nullopt;
}

absl::StatusOr<nlohmann::json> ActivationOption::ToJson() const {
  // Keras 3 writes a name by its canonical spelling ("swish" as "silu").
  if (!has_layer_) return nlohmann::json(is_linear() ? "linear" : ops::CanonicalActivationName(name_));
  if (layer_ == nullptr) return absl::InvalidArgumentError("the activation is a null layer pointer");
  // Keras 3's serialize_keras_object of a layer: its module, class and
  // config (without gradflow's input_shape, which an activation never has).
  absl::StatusOr<nlohmann::json> json = LayerToJson(*layer_);
  if (!json.ok()) return json.status();
  nlohmann::json& config = (*json)["config"];
  config.erase("input_shape");
  if (config["name"] == "") config["name"] = KerasSnakeCase(layer_->type());  // as Keras names it
  (*json)["module"] = "keras.layers";
  (*json)["registered_name"] = nullptr;
  return json;
}

LayerPtr ReLU(double negative_slope) { return std::make_shared<ReLULayer>(negative_slope); }
LayerPtr Softmax() { return std::make_shared<SoftmaxLayer>(); }
LayerPtr LeakyReLU(double alpha) { return std::make_shared<LeakyReLULayer>(alpha); }
LayerPtr ELU(double alpha) { return std::make_shared<ELULayer>(alpha); }
LayerPtr PReLU(PReLUOptions options) { return std::make_shared<PReLULayer>(std::move(options)); }
LayerPtr RReLU(double lower, double upper) { return std::make_shared<RReLULayer>(lower, upper); }

}  // namespace gradflow::nn
