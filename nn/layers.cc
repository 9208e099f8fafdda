#include "nn/layers.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "graph/session.h"
#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "nn/model_config.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"

namespace gradflow::nn {

Output Layer::Apply(const Scope& scope, const std::vector<Output>& inputs, bool first_call) {
  if (first_call) {
    variables_.clear();
    updates_.clear();
  }
  softmax_logits_ = Output{};
  reuse_variables_ = !first_call;
  output_ = BuildCall(scope, inputs);
  reuse_variables_ = false;
  return output_;
}

Output Layer::BuildCall(const Scope& scope, const std::vector<Output>& inputs) {
  if (inputs.size() == 1) return Build(scope, inputs[0]);
  scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(
      "layer '", name_, "' (", type(), ") takes one input but was called on ", inputs.size())));
  return Output{};
}

Output Layer::Build(const Scope& scope, Output) {
  scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(
      "layer '", name_, "' (", type(), ") takes a list of inputs; call it on several tensors")));
  return Output{};
}

void Layer::RestoreBuild(BuildRecord record) {
  variables_ = std::move(record.variables);
  updates_ = std::move(record.updates);
  output_ = record.output;
  softmax_logits_ = record.softmax_logits;
  compute_dtype_ = record.compute_dtype;
}

nlohmann::json Layer::Config() const { return nullptr; }

std::map<std::string, Tensor> Layer::GetWeights() const {
  std::map<std::string, Tensor> copies;
  for (const auto& [local, value] : weights_) copies[local] = value.Clone();
  return copies;
}

absl::Status Layer::SetWeights(const std::map<std::string, Tensor>& weights) {
  // Check everything first, so a refused call changes nothing.
  for (const auto& [local, value] : weights) {
    auto held = weights_.find(local);
    if (held == weights_.end()) {
      const std::string full = absl::StrCat(name_, "/", local);
      auto built = [&](const Output& v) { return v.node->name == full; };
      // Not built yet, or built by a Compile that failed: Compile checks it.
      if (variables_.empty() || std::any_of(variables_.begin(), variables_.end(), built)) continue;
      return absl::NotFoundError(absl::StrCat("layer '", name_, "' (", type(), ") has no weight '", local, "'"));
    }
    if (held->second.dtype() != value.dtype() || held->second.shape() != value.shape()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", name_, "': weight '", local, "' is ", TensorType{held->second.dtype(), held->second.shape()}.ToString(),
          " but the new value is ", TensorType{value.dtype(), value.shape()}.ToString()));
    }
  }
  bool wrote_shared = false;
  for (const auto& [local, value] : weights) {
    auto held = weights_.find(local);
    if (held == weights_.end()) {
      weights_[local] = value.Clone();
      continue;
    }
    std::memcpy(held->second.raw(), value.raw(), value.num_bytes());  // plans keep their pointers
    wrote_shared = true;
  }
  if (wrote_shared) VariableStore::MarkSharedStorageWritten();
  return absl::OkStatus();
}

Output Layer::AddVariable(const Scope& scope, const std::string& name, Shape shape,
                          const Initializer& init, bool weight_trainable, DType dtype) {
  if (reuse_variables_) return SharedVariable(scope, name, TensorType{dtype, shape});
  const bool train = trainable && weight_trainable && dtype == DType::kF32;
  Output v = ops::Variable(scope, name, std::move(shape), init, train, dtype);
  variables_.push_back(v);
  return v;
}

Output Layer::SharedVariable(const Scope& scope, const std::string& local, const TensorType& wanted) {
  for (const Output& v : variables_) {
    if (!absl::EndsWith(v.node->name, absl::StrCat("/", local))) continue;
    if (v.dtype() == wanted.dtype && v.shape() == wanted.shape) return v;
    scope.graph().RecordError(absl::InvalidArgumentError(absl::StrCat(
        "layer '", name_, "' (", type(), ") is called again on an input that needs its '", local,
        "' as ", wanted.ToString(), ", but its first call built ", v.type().ToString(),
        "; a shared layer must be called on inputs of the same shape")));
    return Output{};
  }
  scope.graph().RecordError(absl::InternalError(absl::StrCat(
      "layer '", name_, "' builds a variable '", local, "' only in a later call")));
  return Output{};
}

InitializerOption::InitializerOption(Initializer init) : init_(std::move(init)) {
  status_ = ValidateInitializer(*init_);
}

InitializerOption::InitializerOption(const std::string& name) : name_(name) {
  absl::StatusOr<Initializer> found = InitializerFromName(name);
  if (found.ok()) init_ = *std::move(found);
  status_ = found.status();
}

absl::StatusOr<Initializer> InitializerOption::get() const {
  if (!status_.ok()) return status_;
  return *init_;
}

nlohmann::json InitializerOption::ToJson() const {
  return init_ ? InitializerToJson(*init_) : nlohmann::json(name_);
}

namespace {

// A constraint of any kind on `var` (optimizers/constraints.h).
void SetConstraint(Output var, const std::optional<optimizers::Constraint>& constraint) {
  if (constraint) std::visit([&](const auto& c) { optimizers::SetConstraint(var, c); }, *constraint);
}

class FlattenLayer : public BuiltinLayer<FlattenLayer> {
 public:
  static constexpr char kClassName[] = "Flatten";
  static constexpr char kExampleConfig[] = "{}";
  explicit FlattenLayer(std::optional<Shape> input_shape) { input_shape_ = std::move(input_shape); }
  nlohmann::json Config() const override { return nlohmann::json::object(); }
  static LayerPtr FromConfig(ConfigReader& r) {
    r.Unsupported("data_format", "channels_last", "gradflow flattens in channels-last order");
    return Flatten();
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    return ops::Flatten(scope, x);
  }
};
class DenseLayer : public BuiltinLayer<DenseLayer> {
 public:
  static constexpr char kClassName[] = "Dense";
  static constexpr char kExampleConfig[] = R"({"units": 3})";
  DenseLayer(int64_t units, DenseOptions options) : units_(units), options_(std::move(options)) {
    input_shape_ = options_.input_shape;
    if (!options_.name.empty()) set_name(options_.name);
  }
  nlohmann::json Config() const override {
    absl::StatusOr<nlohmann::json> activation = options_.activation.ToJson();
    if (!activation.ok()) return nullptr;  // cannot be saved (LayerToJson says so)
    return {{"units", units_},
            {"activation", *std::move(activation)},
            {"kernel_initializer", options_.kernel_initializer.ToJson()},
            {"bias_initializer", options_.bias_initializer.ToJson()},
            {"use_bias", options_.use_bias},
            {"kernel_regularizer", RegularizerToJson(options_.kernel_regularizer)},
            {"bias_regularizer", RegularizerToJson(options_.bias_regularizer)},
            {"kernel_constraint", ConstraintToJson(options_.kernel_constraint)},
            {"bias_constraint", ConstraintToJson(options_.bias_constraint)}};
  }
  bool ComputesInBFloat16() const override { return true; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const DenseOptions defaults;
    const int64_t units = r.Integer("units", std::nullopt, 1, kMaxConfigUnits);
    DenseOptions o;
    o.activation = r.Activation("activation", "linear");
    if (auto init = r.Initializer("kernel_initializer")) o.kernel_initializer = *init;
    if (auto init = r.Initializer("bias_initializer")) o.bias_initializer = *init;
    o.use_bias = r.Bool("use_bias", defaults.use_bias);
    o.kernel_regularizer = r.Regularizer("kernel_regularizer");
    o.bias_regularizer = r.Regularizer("bias_regularizer");
    o.kernel_constraint = r.Constraint("kernel_constraint");
    o.bias_constraint = r.Constraint("bias_constraint");
    r.Unsupported("lora_rank", nullptr, "gradflow has no LoRA adapters");
    r.Accept({"lora_alpha"});  // used by Keras only with lora_rank
    r.Unsupported("quantization_config", nullptr, "gradflow does not quantize Dense layers");
    return r.ok() ? Dense(units, std::move(o)) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    Graph& g = scope.graph();
    if (!x.valid()) return {};
    if (x.shape().rank() != 2) {
      g.RecordError(absl::InvalidArgumentError(absl::StrCat(
          "Dense layer '", scope.prefix(), "' needs a rank-2 input [batch, features], got '",
          x.name(), "' ", x.type().ToString(), "; put a Flatten layer before it")));
      return {};
    }
    if (units_ <= 0) {
      g.RecordError(absl::InvalidArgumentError(
          absl::StrCat("Dense layer '", scope.prefix(), "': units must be > 0, got ", units_)));
      return {};
    }
    auto kernel_init = options_.kernel_initializer.get();
    auto bias_init = options_.bias_initializer.get();
    for (const auto* init : {&kernel_init, &bias_init}) {
      if (!init->ok()) {
        g.RecordError(absl::InvalidArgumentError(
            absl::StrCat("Dense layer '", scope.prefix(), "': ", init->status().message())));
        return {};
      }
    }
    Output kernel = AddVariable(scope, "kernel", {x.shape()[1], units_}, *kernel_init);
    Output bias;
    if (options_.use_bias) bias = AddVariable(scope, "bias", {units_}, *bias_init);
    if (options_.kernel_regularizer) optimizers::SetRegularizer(kernel, *options_.kernel_regularizer);
    SetConstraint(kernel, options_.kernel_constraint);
    if (bias.valid() && options_.bias_regularizer) optimizers::SetRegularizer(bias, *options_.bias_regularizer);
    if (bias.valid()) SetConstraint(bias, options_.bias_constraint);
    // Activations oneDNN can apply as a post-op of the inner product (and
    // differentiate from the output) run inside the Dense primitive: one pass
    // over the output instead of two, forward and backward. The unfused pair
    // computes the same values (tests/nn/dense_fusion_test.cc).
    const ActivationOption& act = options_.activation;
    if (std::optional<ops::FusedActivation> fused = act.Fused()) {
      return ops::Dense(scope, x, kernel, bias, *fused, compute_dtype());
    }
    Output logits;
    Output y = act.Apply(scope, ops::Dense(scope, x, kernel, bias, {}, compute_dtype()),
                         absl::StrCat("Dense layer '", scope.prefix(), "'"), &logits);
    if (logits.valid()) set_softmax_logits(logits);
    return y;
  }

 private:
  int64_t units_;
  DenseOptions options_;
};

class ActivationLayer : public BuiltinLayer<ActivationLayer> {
 public:
  static constexpr char kClassName[] = "Activation";
  static constexpr char kExampleConfig[] = R"({"activation": "relu"})";
  explicit ActivationLayer(ActivationOption activation) : activation_(std::move(activation)) {}
  nlohmann::json Config() const override {
    absl::StatusOr<nlohmann::json> activation = activation_.ToJson();
    if (!activation.ok()) return nullptr;
    return {{"activation", *std::move(activation)}};
  }
  static LayerPtr FromConfig(ConfigReader& r) {
    ActivationOption activation = r.Activation("activation", std::nullopt);
    return r.ok() ? Activation(std::move(activation)) : nullptr;
  }

 protected:
  Output Build(const Scope& scope, Output x) override {
    Output logits;
    Output y = activation_.Apply(scope, x, absl::StrCat("Activation layer '", scope.prefix(), "'"), &logits);
    if (logits.valid()) set_softmax_logits(logits);
    return y;
  }

 private:
  ActivationOption activation_;
};
}  // namespace

LayerPtr Flatten(std::optional<Shape> input_shape) {
  return std::make_shared<FlattenLayer>(std::move(input_shape));
}
LayerPtr Dense(int64_t units, DenseOptions options) {
  return std::make_shared<DenseLayer>(units, std::move(options));
}
LayerPtr Activation(ActivationOption activation) {
  return std::make_shared<ActivationLayer>(std::move(activation));
}

}  // namespace gradflow::nn
