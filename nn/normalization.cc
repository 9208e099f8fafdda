#include "nn/normalization.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "nn/model_config.h"

namespace gradflow::nn {
namespace {

class BatchNormalizationLayer : public BuiltinLayer<BatchNormalizationLayer> {
 public:
  static constexpr char kClassName[] = "BatchNormalization";
  static constexpr char kExampleConfig[] = "{}";
  explicit BatchNormalizationLayer(BatchNormalizationOptions options) : options_(std::move(options)) {
    input_shape_ = options_.input_shape;
    if (!options_.name.empty()) set_name(options_.name);
  }
  nlohmann::json Config() const override {
    return {{"axis", options_.axis},
            {"momentum", options_.momentum},
            {"epsilon", options_.epsilon},
            {"center", options_.center},
            {"scale", options_.scale},
            {"beta_initializer", options_.beta_initializer.ToJson()},
            {"gamma_initializer", options_.gamma_initializer.ToJson()},
            {"moving_mean_initializer", options_.moving_mean_initializer.ToJson()},
            {"moving_variance_initializer", options_.moving_variance_initializer.ToJson()},
            {"synchronized", options_.synchronized}};
  }
  // Keras 3 writes -1; tf.keras 2.x the built layer's list ([1] for [batch, features]).
  static int ReadAxis(ConfigReader& r) {
    const nlohmann::json* given = r.Find("axis");
    if (given == nullptr) return -1;
    const nlohmann::json& axis = given->is_array() && given->size() == 1 ? (*given)[0] : *given;
    if (!axis.is_number_integer() || axis.get<int64_t>() < -1 || axis.get<int64_t>() > kMaxConfigInputRank) {
      r.FailField("axis", absl::StrCat("must be one axis, -1 or in [1, ", kMaxConfigInputRank, "], got ",
                                       DescribeJson(*given)));
      return -1;
    }
    return static_cast<int>(axis.get<int64_t>());
  }
  // tf.keras 2.x and Keras 3 fields gradflow has no counterpart for.
  static void ReadKerasOnlyFields(ConfigReader& r) {
    r.Unsupported("renorm", false, "gradflow has no batch renormalization");
    r.Accept({"renorm_clipping", "renorm_momentum"});  // used only with renorm
    r.Unsupported("virtual_batch_size", nullptr, "gradflow has no ghost batch normalization");
    r.Unsupported("adjustment", nullptr, "gradflow has no batch-norm adjustment function");
    for (const char* key : {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"}) {
      r.Unsupported(key, nullptr, "gradflow's BatchNormalization has no regularizers or constraints");
    }
    r.Ignored("fused", nullptr, "a kernel choice; gradflow always uses oneDNN's");
  }
  static LayerPtr FromConfig(ConfigReader& r) {
    BatchNormalizationOptions o;
    o.axis = ReadAxis(r);
    o.momentum = r.NumberIn("momentum", o.momentum, 0, 1);
    o.epsilon = r.NumberIn("epsilon", o.epsilon, 0, 1e30);
    if (r.ok() && !(o.epsilon > 0)) r.FailField("epsilon", "must be > 0");
    o.center = r.Bool("center", o.center);
    o.scale = r.Bool("scale", o.scale);
    o.synchronized = r.Bool("synchronized", o.synchronized);
    if (auto init = r.Initializer("beta_initializer")) o.beta_initializer = *init;
    if (auto init = r.Initializer("gamma_initializer")) o.gamma_initializer = *init;
    if (auto init = r.Initializer("moving_mean_initializer")) o.moving_mean_initializer = *init;
    if (auto init = r.Initializer("moving_variance_initializer")) o.moving_variance_initializer = *init;
    ReadKerasOnlyFields(r);
    return r.ok() ? BatchNormalization(std::move(o)) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    Graph& g = scope.graph();
    if (!x.valid()) return {};
    auto fail = [&](const std::string& message) {
      g.RecordError(absl::InvalidArgumentError(
          absl::StrCat("BatchNormalization layer '", scope.prefix(), "': ", message)));
      return Output{};
    };
    if (x.shape().rank() < 2) {
      return fail(absl::StrCat("needs an input [batch, ..., features], got '", x.name(), "' ",
                               x.type().ToString()));
    }
    const int last = x.shape().rank() - 1;
    if (options_.axis != -1 && options_.axis != last) {
      return fail(absl::StrCat("axis ", options_.axis, " is not the last axis (", last, ") of its input ",
                               x.type().ToString(), "; gradflow normalizes the last axis"));
    }
    if (!(options_.momentum >= 0 && options_.momentum <= 1)) {
      return fail(absl::StrCat("momentum must be in [0, 1], got ", options_.momentum));
    }
    const Shape features{x.shape()[x.shape().rank() - 1]};
    auto gamma_init = options_.gamma_initializer.get(), beta_init = options_.beta_initializer.get();
    auto mean_init = options_.moving_mean_initializer.get();
    auto variance_init = options_.moving_variance_initializer.get();
    for (const auto* i : {&gamma_init, &beta_init, &mean_init, &variance_init}) {
      if (!i->ok()) return fail(std::string(i->status().message()));
    }
    // Keras's weight order: gamma, beta, moving_mean, moving_variance.
    ops::BatchNormParams params{
        .epsilon = options_.epsilon, .frozen = !trainable, .synchronized = options_.synchronized};
    if (options_.scale) params.gamma = AddVariable(scope, "gamma", features, *gamma_init);
    if (options_.center) params.beta = AddVariable(scope, "beta", features, *beta_init);
    params.moving_mean = AddVariable(scope, "moving_mean", features, *mean_init, /*weight_trainable=*/false);
    params.moving_variance =
        AddVariable(scope, "moving_variance", features, *variance_init, /*weight_trainable=*/false);
    ops::BatchNormOutputs bn = ops::BatchNorm(scope, x, params);
    if (!params.frozen) {  // a frozen layer keeps its statistics
      AddUpdate(ops::AssignMovingAverage(scope, params.moving_mean, bn.mean, options_.momentum));
      AddUpdate(ops::AssignMovingAverage(scope, params.moving_variance, bn.variance, options_.momentum));
    }
    return bn.y;
  }

 private:
  BatchNormalizationOptions options_;
};
}  // namespace

LayerPtr BatchNormalization(BatchNormalizationOptions options) {
  return std::make_shared<BatchNormalizationLayer>(std::move(options));
}

}  // namespace gradflow::nn
