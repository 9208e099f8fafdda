#ifndef GRADFLOW_NN_LAYERS_H_
#define GRADFLOW_NN_LAYERS_H_

// Keras-like layers. A layer adds its nodes and variables to a graph when a
// model is compiled; until then it only holds its configuration.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/initializers.h"
#include "graph/graph.h"
#include "ops/dense.h"
#include "optimizers/constraints.h"
#include "optimizers/regularizers.h"

namespace gradflow::nn {

class KerasTensor;  // nn/functional.h

class Layer {
 public:
  virtual ~Layer() = default;
  // The Keras class name ("Dense") and the base of the default layer name.
  virtual std::string type() const = 0;
  // Adds the nodes of one call of the layer on `inputs` under `scope` and
  // returns its output. The first call in a graph creates the layer's
  // variables (forgetting those of any earlier build); later calls
  // (`first_call` false: a layer shared within a functional model) use the
  // same variables, and a call that would need them in another shape is a
  // graph error naming the layer.
  Output Apply(const Scope& scope, const std::vector<Output>& inputs, bool first_call = true);
  Output Apply(const Scope& scope, Output x) { return Apply(scope, std::vector<Output>{x}); }

  // "dense_1": set from the scope when built (or by the user beforehand).
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // The input shape without the batch dimension, for a model's first layer.
  const std::optional<Shape>& input_shape() const { return input_shape_; }
  void set_input_shape(std::optional<Shape> shape) { input_shape_ = std::move(shape); }
  // The layer's own settings (units, activation, rates, initializers,
  // ...) as a JSON object: what nn/model_config.h saves with a model and
  // hands back to the layer type's factory. The name, trainable flag and input
  // shape are saved beside it. Layer types that cannot be saved return null
  // (the default), and saving a model with one is an error naming it.
  virtual nlohmann::json Config() const;
  // The values of the layer's variables by local name ("kernel", "bias"),
  // filled when a model is compiled with this layer (or by SetWeights /
  // LoadModel before that). Every model compiled with this layer object binds
  // these very tensors into its VariableStore (VariableStore::Bind), so
  // models built from shared layers train one set of weights, as Keras's
  // layer reuse does; CloneModel makes fresh layers instead.
  //
  // A read-only view: the tensors are the live weights, which kernels may
  // cache values from (a Dense with batch norm folded in), so change them
  // only through SetWeights, which the executor sees.
  const std::map<std::string, Tensor>& weights() const { return weights_; }
  // Keras's get_weights / set_weights. GetWeights copies. SetWeights copies
  // each value into the weight of that local name (dtype and shape must
  // match a weight the layer holds) and marks every variable store the
  // weights are bound into as written (VariableStore::MarkSharedStorageWritten),
  // so the next step sees them. Before the layer holds a weight (it has not
  // been built), the value is kept for Compile, which checks it.
  std::map<std::string, Tensor> GetWeights() const;
  absl::Status SetWeights(const std::map<std::string, Tensor>& weights);
  // Variables created by the most recent build (kernel, bias, ...); a layer
  // shared by several models points into the graph compiled last
  // (Model::layer_variables(i) gives a model's own).
  const std::vector<Output>& variables() const { return variables_; }
  // Update nodes every training step must run (batch norm's moving
  // statistics); Sequential passes them to Minimize as extra_updates.
  const std::vector<Node*>& updates() const { return updates_; }
  Output output() const { return output_; }
  // When the most recent Build ended in a softmax: its input, so a
  // cross-entropy loss can be computed from the logits (Keras does the same;
  // more stable, same value). Invalid otherwise.
  Output softmax_logits() const { return softmax_logits_; }
  bool trainable = true;
  // Keras's dtype= (nn/dtype_policy.h): "" follows the model's
  // CompileOptions::dtype_policy; "float32" or "mixed_bfloat16" set this
  // layer's own. Saved with the layer.
  std::string dtype_policy;
  // Whether the layer multiplies in bf16 under a mixed_bfloat16 policy
  // (Dense); the others compute in f32 under every policy, as Keras's batch
  // normalization does. compute_dtype() is what its most recent build used.
  virtual bool ComputesInBFloat16() const { return false; }
  DType compute_dtype() const { return compute_dtype_; }
  // An activation layer used as another layer's activation (Dense's
  // activation = nn::LeakyReLU(0.2)): the same function as a post-op that
  // layer can fuse into its primitive, or nullopt (the default) to apply the
  // object as it is.
  virtual std::optional<ops::FusedActivation> AsFusedActivation() const { return std::nullopt; }

  // What the most recent Build left in the layer (above). A model whose
  // re-Compile fails puts back what its own graph built, so the layer never
  // points into a graph that was discarded.
  struct BuildRecord {
    std::vector<Output> variables;
    std::vector<Node*> updates;
    Output output, softmax_logits;
    DType compute_dtype = DType::kF32;
  };
  BuildRecord build_record() const { return {variables_, updates_, output_, softmax_logits_, compute_dtype_}; }
  void RestoreBuild(BuildRecord record);

 protected:
  // The nodes of one call. Most layers take one input and override Build;
  // merge layers (several inputs) override BuildCall, whose default passes
  // exactly one input to Build.
  virtual Output Build(const Scope& scope, Output x);
  virtual Output BuildCall(const Scope& scope, const std::vector<Output>& inputs);
  // A weight is trainable when both the layer and `weight_trainable` say so
  // (Keras add_weight(trainable=False) for moving statistics). Integer
  // weights (`dtype`, Normalization's count) are never trainable.
  Output AddVariable(const Scope& scope, const std::string& name, Shape shape,
                     const Initializer& init, bool weight_trainable = true,
                     DType dtype = DType::kF32);
  void AddUpdate(Node* update) {
    if (update != nullptr) updates_.push_back(update);
  }
  // For Build: `y` = softmax(logits) is the layer's output.
  void set_softmax_logits(Output logits) { softmax_logits_ = logits; }
  std::optional<Shape> input_shape_;

 private:
  // Compile shares the store's tensors with the layer and LoadModel hands it
  // the file's tensors: both without a copy and before any plan runs.
  friend class Model;
  friend class ModelFile;
  void HoldWeight(const std::string& local, Tensor value) { weights_[local] = std::move(value); }
  // AddVariable in a later call: the first call's variable `local`.
  Output SharedVariable(const Scope& scope, const std::string& local, const TensorType& wanted);

  std::string name_;
  Output softmax_logits_;
  bool reuse_variables_ = false;  // during a later call of a shared layer
  DType compute_dtype_ = DType::kF32;  // set by Model before it builds the layer
  std::vector<Output> variables_;
  std::vector<Node*> updates_;
  Output output_;
  std::map<std::string, Tensor> weights_;
};

// A layer handle (shared: models built from the same layer objects share
// their weights). Calling it on symbolic tensors is the functional API
// (nn/functional.h): `nn::KerasTensor h = nn::Dense(30, {.activation = "relu"})(x);`.
class LayerPtr : public std::shared_ptr<Layer> {
 public:
  LayerPtr() = default;
  LayerPtr(std::nullptr_t) {}  // NOLINT: as shared_ptr
  template <typename T>
    requires std::is_base_of_v<Layer, T>
  LayerPtr(std::shared_ptr<T> layer) : std::shared_ptr<Layer>(std::move(layer)) {}  // NOLINT: as shared_ptr

  // A call of the layer on `x` (or, for merge layers, on several tensors).
  // Its output type is known at once; an error (wrong shapes, a null layer)
  // travels in the result (KerasTensor::status()) to nn::Model::Create.
  KerasTensor operator()(const KerasTensor& x) const;
  KerasTensor operator()(const std::vector<KerasTensor>& inputs) const;
};

// Flattens [batch, d1, d2, ...] to [batch, d1*d2*...]. `input_shape` (without
// the batch dimension) makes it usable as a model's first layer.
LayerPtr Flatten(std::optional<Shape> input_shape = std::nullopt);

// Keras's regularizers and constraints under nn:: (nn::L2(0.01), nn::MaxNorm{1.0}).
using optimizers::L1;
using optimizers::L1L2;
using optimizers::L2;
using optimizers::MaxNorm;

// A layer's initializer setting: an Initializer (HeNormal(),
// init::RandomNormal{.stddev = 0.01}) or a Keras name ("he_normal" or
// "HeNormal"), resolved and range-checked at once. A bad one is kept as its
// error, which the layer reports when it is built (as an unknown activation
// name is), so layer options stay plain values that are written as Keras
// writes them: {"class_name": "HeNormal", "config": {...}}.
class InitializerOption {
 public:
  InitializerOption(Initializer init);  // NOLINT: implicit, as Keras takes objects
  template <typename T>
    requires std::is_constructible_v<Initializer::Variant, T>
  InitializerOption(T alternative) : InitializerOption(Initializer(std::move(alternative))) {}  // NOLINT
  InitializerOption(const char* name) : InitializerOption(std::string(name)) {}  // NOLINT: and names
  InitializerOption(const std::string& name);  // NOLINT

  // The initializer, or why there is none.
  absl::StatusOr<Initializer> get() const;
  // Its config (an unresolved name is written back as given).
  nlohmann::json ToJson() const;

 private:
  std::optional<Initializer> init_;  // nullopt: name_ named no initializer
  std::string name_;
  absl::Status status_;
};

// A layer's activation setting, as Keras's `activation=`: a Keras name
// ("relu", "leaky_relu", ...; "" or "linear" for none) or an activation layer
// object (nn::LeakyReLU(0.2), nn::ELU(0.5), nn::ReLU(), nn::Softmax(): see
// nn/activation_layers.h), which the layer applies to its output with that
// object's own Build (or fuses, when the object has a fused form:
// Layer::AsFusedActivation). The object must be weightless: one with weights
// (nn::PReLU()) would need them saved under the owning layer, so it is refused
// when the layer is built; add it as a layer of its own instead. Written to
// configs as Keras 3 writes it: a name as "relu", an object as
// {"module": "keras.layers", "class_name": "LeakyReLU", "config": {...},
// "registered_name": null} (nn/activation_layers.cc).
class ActivationOption {
 public:
  ActivationOption() = default;  // linear
  ActivationOption(const char* name) : name_(name) {}  // NOLINT: implicit, as Keras takes names
  ActivationOption(std::string name) : name_(std::move(name)) {}  // NOLINT
  ActivationOption(std::shared_ptr<Layer> layer);  // NOLINT: and objects

  // The Keras name ("" when an object is set, or for linear).
  const std::string& name() const { return name_; }
  // The activation layer object, or null when a name is set.
  const std::shared_ptr<Layer>& layer() const { return layer_; }
  // No activation: "", "linear", and no object.
  bool is_linear() const { return !has_layer_ && (name_.empty() || name_ == "linear"); }
  // The activation as a post-op a Dense can fuse (a fusable name, or an
  // object's Layer::AsFusedActivation), or nullopt.
  std::optional<ops::FusedActivation> Fused() const;
  // Adds the activation of `y` under `scope`. When it ends in a softmax,
  // `*softmax_logits` is set to its input. A bad setting (an unknown name, a
  // null object, an object with weights) records an error starting with
  // `owner` ("Dense layer 'dense'") and returns an invalid Output.
  Output Apply(const Scope& scope, Output y, const std::string& owner, Output* softmax_logits) const;
  // The config value; an object whose layer type cannot be saved is an error.
  absl::StatusOr<nlohmann::json> ToJson() const;

 private:
  std::string name_;
  std::shared_ptr<Layer> layer_;
  bool has_layer_ = false;  // set from an object (even a null one: an error when built)
};

// One value can configure many layers (the chapter's functools.partial): copy
// it and change what differs, e.g. `auto out = hidden; out.activation = "softmax";`.
// (Copies share an activation object, which is fine: it is weightless.)
struct DenseOptions {
  ActivationOption activation;                       // Keras name or object; "" = linear
  InitializerOption kernel_initializer = GlorotUniform();  // Keras default
  InitializerOption bias_initializer = Zeros();
  bool use_bias = true;
  // Penalties added to the loss (Keras kernel_regularizer / bias_regularizer)
  // and max-norm constraints applied after every update.
  std::optional<optimizers::Regularizer> kernel_regularizer;
  std::optional<optimizers::Regularizer> bias_regularizer;
  std::optional<optimizers::Constraint> kernel_constraint;
  std::optional<optimizers::Constraint> bias_constraint;
  std::string name;  // "" = dense, dense_1, ...
  std::optional<Shape> input_shape;
};

// y = activation(x W + b), W of shape [in, units].
LayerPtr Dense(int64_t units, DenseOptions options = {});

// A standalone activation layer (Keras `Activation("relu")`); it takes the
// same names and objects as DenseOptions::activation.
LayerPtr Activation(ActivationOption activation);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_LAYERS_H_
