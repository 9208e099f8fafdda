#include "nn/model.h"

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/describe.h"
#include "core/dnnl_context.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/random.h"
#include "core/status.h"
#include "nn/progress_bar.h"
#include "nn/validation.h"
#include "ops/array.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "nn/dtype_policy.h"
#include "nn/layer_graph_json.h"
#include "nn/losses.h"
#include "nn/metrics.h"
#include "optimizers/regularizers.h"

namespace gradflow::nn {
namespace {

constexpr int64_t kParallelCopyBytes = 64 << 10;

// Copies rows order[begin, end) of `src` (rows [begin, end) without an
// order) into `dst` (preallocated, same row size). A batch is a few hundred
// KiB: on one thread, the step's other threads waited (7% of a bf16 W1 step).
void GatherRows(const Tensor& src, const std::vector<int64_t>* order, int64_t begin, int64_t end,
                Tensor& dst) {
  const size_t row_bytes = src.num_bytes() / src.shape()[0];
  const auto* from = static_cast<const uint8_t*>(src.raw());
  auto* to = static_cast<uint8_t*>(dst.raw());
  const int64_t bytes = (end - begin) * static_cast<int64_t>(row_bytes);
#pragma omp parallel for schedule(static) if (bytes > kParallelCopyBytes)
  for (int64_t i = begin; i < end; ++i) {
    const int64_t row = order ? (*order)[i] : i;
    std::memcpy(to + (i - begin) * row_bytes, from + row * row_bytes, row_bytes);
  }
}

std::string ShapeWithNone(const Shape& shape) {
  std::string s = "(";
  for (int i = 0; i < shape.rank(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", shape[i] < 0 ? "None" : std::to_string(shape[i]));
  }
  return s + ")";
}

std::string WithThousands(int64_t n) {
  std::string digits = std::to_string(n), s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

// A forward pass with fewer multiply-adds than this runs on one OpenMP
// thread (oneDNN's primitives and our loops alike): there, the fork/join of
// every primitive costs more than a second thread saves, and on a shared
// machine each parallel region waits for a descheduled thread (W1 predict at
// batch 1 measured 2-6k samples/s on 2 threads vs 37-43k on 1 with the 2
// cores loaded). 1M covers batch 1-3 of the chapter's MLP.
constexpr int64_t kSingleThreadMacs = int64_t{1} << 20;

// Runs small steps on one OpenMP thread. One policy covers one pass over
// the data (an epoch, an evaluation, a prediction): it changes the calling
// thread's OpenMP setting only when a step's size class differs from the
// previous step's (with a fixed batch size: at most twice, the full batches
// and the last one), hands the caller's own setting back to callbacks, and
// restores it when the pass ends. Executables (and their oneDNN primitives)
// are per batch size and created inside the first Run, so each batch size
// always runs with the same count.
class StepThreadPolicy {
 public:
  explicit StepThreadPolicy(int64_t macs_per_sample)
      : caller_(omp_get_max_threads()), current_(caller_), macs_per_sample_(macs_per_sample) {}
  ~StepThreadPolicy() { Use(caller_); }
  StepThreadPolicy(const StepThreadPolicy&) = delete;
  StepThreadPolicy& operator=(const StepThreadPolicy&) = delete;

  // Before a step of `rows` samples. rows * macs < limit, without overflow.
  void ForStep(int64_t rows) {
    const bool small = macs_per_sample_ <= 0 ||
                       rows < (kSingleThreadMacs + macs_per_sample_ - 1) / macs_per_sample_;
    Use(small ? 1 : caller_);
  }
  // Before user code (callbacks) runs between steps.
  void ForCaller() { Use(caller_); }

 private:
  void Use(int threads) {
    if (threads == current_) return;
    omp_set_num_threads(threads);
    current_ = threads;
  }
  const int caller_;
  int current_;
  const int64_t macs_per_sample_;
};

}  // namespace

Sequential::Sequential(std::vector<LayerPtr> layers, std::string name) : Model(std::move(name), true) {
  layers_ = std::move(layers);
  NameLayersIfPossible();
}

void Model::NameLayersIfPossible() {
  // Keras names a layer when it is made; here, when it joins a model, so
  // names and Summary are there before Compile. A model that cannot name its
  // layers (a null layer, a duplicate name) says so at Compile.
  for (const LayerPtr& layer : layers_) {
    if (layer == nullptr) return;
  }
  AssignDefaultNames().IgnoreError();
}

void Sequential::Add(LayerPtr layer) {
  auto serialized = Serialize();
  layers_.push_back(std::move(layer));
  NameLayersIfPossible();
  require_held_weights_ = false;
  // The plans run the old graph; the layers keep their weights for the next Compile.
  call_plan_.reset();
  train_plan_.reset();
  eval_plan_.reset();
  predict_plan_.reset();
}

absl::Status Model::CheckLayers() const {
  if (!sequential_) return absl::OkStatus();  // Create checked the layer graph
  if (layers_.empty()) return absl::InvalidArgumentError("Compile: the model has no layers");
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i] == nullptr) return absl::InvalidArgumentError(absl::StrCat("Compile: layer ", i, " is null"));
    for (size_t j = 0; j < i; ++j) {
      if (layers_[j] == layers_[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Compile: layer ", i, " ('", layers_[i]->name(), "') is the same object as layer ", j,
            "; a Sequential model uses each layer once"));
      }
    }
  }
  const Layer& first = *layers_[0];
  if (!first.input_shape()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Compile: the first layer ('", first.type(),
        "') needs an input shape, e.g. nn::Flatten({28, 28}) or DenseOptions{.input_shape = {784}}"));
  }
  for (int64_t d : first.input_shape()->dims()) {
    if (d < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Compile: the first layer ('", first.type(), "') has input_shape ", first.input_shape()->ToString(),
          "; every dimension of a sample must be >= 1 (the batch dimension is not part of it)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerGraph> Model::SequentialGraph() const {
  GF_RETURN_IF_ERROR(CheckLayers());
  std::vector<int64_t> dims = {-1};
  for (int64_t d : layers_[0]->input_shape()->dims()) dims.push_back(d);
  LayerGraph chain{.calls = {{}}, .input_names = {"x"}, .input_types = {TensorType{DType::kF32, Shape(dims)}}};
  for (size_t i = 0; i < layers_.size(); ++i) chain.calls.push_back({static_cast<int>(i), {static_cast<int>(i)}});
  chain.outputs = {static_cast<int>(layers_.size())};
  return chain;
}

absl::StatusOr<LayerGraph> Model::layer_graph() const {
  if (sequential_) return SequentialGraph();
  return functional_graph_;
}

absl::StatusOr<std::vector<TensorType>> Model::CallTypes() const {
  auto serialized = Serialize();
  std::vector<TensorType> types;
  if (compiled()) {
    for (const Output& out : call_outputs_) types.push_back(out.type());
    return types;
  }
  GF_ASSIGN_OR_RETURN(const Compiled aside, BuildAside());
  for (const Output& out : aside.call_outputs) types.push_back(out.type());
  return types;
}

namespace {

// FromLayerGraph's checks, so that no later step indexes out of range.
absl::Status CheckLayerGraph(const LayerGraph& lg, size_t layer_count) {
  const size_t n_inputs = lg.input_names.size();
  auto error = [](auto... parts) { return absl::InvalidArgumentError(absl::StrCat("layer graph: ", parts...)); };
  if (lg.input_types.size() != n_inputs || n_inputs == 0 || lg.calls.size() < n_inputs || lg.outputs.empty()) {
    return error("needs at least one input (with a name and type each), its calls and an output");
  }
  std::vector<bool> used_layer(layer_count, false), read(lg.calls.size(), false);
  for (size_t i = 0; i < lg.calls.size(); ++i) {
    const LayerGraph::Call& call = lg.calls[i];
    if ((i < n_inputs) != (call.layer < 0)) return error("call ", i, ": the inputs must come first, and only they");
    if (call.layer >= static_cast<int>(layer_count)) return error("call ", i, " names layer ", call.layer, " of ", layer_count);
    if (call.layer >= 0) used_layer[call.layer] = true;
    if (call.layer >= 0 && call.inputs.empty()) return error("call ", i, " has no inputs");
    for (int j : call.inputs) {
      if (j < 0 || j >= static_cast<int>(i)) return error("call ", i, " reads call ", j, ", which does not come before it");
      read[j] = true;
    }
  }
  for (int o : lg.outputs) {
    if (o < static_cast<int>(n_inputs) || o >= static_cast<int>(lg.calls.size())) return error("output ", o, " is not a layer call");
    read[o] = true;
  }
  for (size_t l = 0; l < layer_count; ++l) {
    if (!used_layer[l]) return error("layer ", l, " is never called");
  }
  for (size_t i = 0; i < n_inputs; ++i) {
    if (!read[i]) {
      return error("inputs[", i, "] (shape ", lg.input_types[i].shape.ToString(),
                   ") is used by no layer; remove it or connect it");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Model> Model::FromLayerGraph(std::string name, std::vector<LayerPtr> layers, LayerGraph graph) {
  for (const LayerPtr& layer : layers) {
    if (layer == nullptr) return absl::InvalidArgumentError("layer graph: a layer is null");
  }
  GF_RETURN_IF_ERROR(CheckLayerGraph(graph, layers.size()));
  Model model(std::move(name), false);
  model.layers_ = std::move(layers);
  model.functional_graph_ = std::move(graph);
  GF_RETURN_IF_ERROR(model.AssignDefaultNames());
  std::set<int> output_layers;
  for (int o : model.functional_graph_.outputs) {
    const int layer = model.functional_graph_.calls[o].layer;
    if (!output_layers.insert(layer).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "two outputs come from layer '", model.layers_[layer]->name(),
          "'; outputs are named by their layers, so give each output its own layer (e.g. an nn::Activation(\"linear\"))"));
    }
  }
  return model;
}

namespace {

absl::Status CheckTensors(const char* what, const std::vector<KerasTensor>& tensors) {
  if (tensors.empty()) return absl::InvalidArgumentError(absl::StrCat("Model::Create: no ", what, " given"));
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].ok()) {
      return absl::InvalidArgumentError(absl::StrCat("Model::Create: ", what, "[", i, "]: ", tensors[i].status().message()));
    }
    for (size_t j = 0; j < i; ++j) {
      if (tensors[j].call() == tensors[i].call()) {
        return absl::InvalidArgumentError(absl::StrCat("Model::Create: ", what, "[", j, "] and [", i,
                                                       "] are the same tensor; give each once"));
      }
    }
  }
  return absl::OkStatus();
}

std::string Describe(const LayerCall& input) {
  return absl::StrCat("the Input ", input.input_name.empty() ? "" : absl::StrCat("'", input.input_name, "' "),
                      "of shape ", input.type.shape.ToString());
}

}  // namespace

absl::StatusOr<Model> Model::Create(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs,
                                    std::string name) {
  GF_RETURN_IF_ERROR(CheckTensors("inputs", inputs));
  GF_RETURN_IF_ERROR(CheckTensors("outputs", outputs));
  Model model(std::move(name), false);
  LayerGraph& lg = model.functional_graph_;
  std::map<const LayerCall*, int> index;  // call -> its place in lg.calls
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LayerCall& input = *inputs[i].call();
    if (input.layer != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("Model::Create: inputs[", i, "] is the output of layer '",
                                                     input.layer->name(), "', not an nn::Input"));
    }
    index[&input] = static_cast<int>(i);
    lg.calls.push_back({});
    lg.input_names.push_back(input.input_name);
    lg.input_types.push_back(input.type);
  }
  for (const LayerCall* call : CallsInOrder(outputs)) {
    if (call->layer == nullptr) {
      if (!index.count(call)) {
        return absl::InvalidArgumentError(absl::StrCat("Model::Create: an output needs ", Describe(*call),
                                                       ", which is not among the model's inputs; add it to them"));
      }
      continue;
    }
    auto known = std::find(model.layers_.begin(), model.layers_.end(), call->layer);
    const int layer = static_cast<int>(known - model.layers_.begin());
    if (known == model.layers_.end()) model.layers_.push_back(call->layer);
    LayerGraph::Call& added = lg.calls.emplace_back(LayerGraph::Call{layer, {}});
    for (const KerasTensor& in : call->inputs) added.inputs.push_back(index.at(in.call()));
    index[call] = static_cast<int>(lg.calls.size()) - 1;
  }
  for (size_t k = 0; k < outputs.size(); ++k) {
    const LayerCall& out = *outputs[k].call();
    if (out.layer == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("Model::Create: outputs[", k, "] is ", Describe(out),
                                                     "; an output must come from a layer"));
    }
    lg.outputs.push_back(index.at(&out));
  }
  return FromLayerGraph(model.name_, std::move(model.layers_), std::move(lg));
}

absl::Status Model::AssignDefaultNames() {
  // Explicit names (or those of an earlier build, e.g. layers reused from
  // another model) are kept; the others get Keras's snake-case default made
  // unique within the model ("dense", "dense_1", ...; inputs "input_layer").
  // A functional model's inputs count as layers, as Keras's InputLayers do.
  std::vector<std::string>& input_names = functional_graph_.input_names;
  std::set<std::string> taken;
  auto claim = [&](const std::string& name) -> absl::Status {
    if (name.empty()) return absl::OkStatus();
    GF_RETURN_IF_ERROR(ValidateLayerName(name));
    if (taken.insert(name).second) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(sequential_ ? "Compile" : "Model::Create", ": two layers are named '",
                                                   name, "'; layer (and input) names must be unique in a model"));
  };
  for (const std::string& name : input_names) GF_RETURN_IF_ERROR(claim(name));
  for (const LayerPtr& layer : layers_) GF_RETURN_IF_ERROR(claim(layer->name()));
  auto unique = [&](const std::string& base) {
    std::string name = base;
    for (int k = 1; taken.count(name); ++k) name = absl::StrCat(base, "_", k);
    taken.insert(name);
    return name;
  };
  for (std::string& name : input_names) {
    if (name.empty()) name = unique("input_layer");
  }
  for (const LayerPtr& layer : layers_) {
    if (layer->name().empty()) layer->set_name(unique(KerasSnakeCase(layer->type())));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Model::SetComputeDTypes(const std::string& model_policy) const {
  GF_ASSIGN_OR_RETURN(const DTypePolicyInfo fallback, FindDTypePolicy(model_policy, "CompileOptions::dtype_policy"));
  bool any_bf16 = false;
  for (const LayerPtr& layer : layers_) {
    DTypePolicyInfo policy = fallback;
    if (!layer->dtype_policy.empty()) {
      GF_ASSIGN_OR_RETURN(policy, FindDTypePolicy(layer->dtype_policy, absl::StrCat("layer '", layer->name(), "'")));
    }
    layer->compute_dtype_ = layer->ComputesInBFloat16() ? policy.compute : DType::kF32;
    any_bf16 |= layer->compute_dtype_ == DType::kBF16;
  }
  return any_bf16;
}

absl::Status Model::BuildForward(Compiled& c) const {
  GF_RETURN_IF_ERROR(SetComputeDTypes(c.options.dtype_policy).status());
  GF_ASSIGN_OR_RETURN(const LayerGraph lg, layer_graph());
  Graph& g = *c.graph;
  std::vector<Output> values(lg.calls.size());
  std::vector<Output> logits(lg.calls.size());
  std::vector<int> calls_made(layers_.size(), 0);
  c.layer_variables.resize(layers_.size());
  c.layer_outputs.resize(layers_.size());
  for (size_t i = 0; i < lg.calls.size(); ++i) {
    const LayerGraph::Call& call = lg.calls[i];
    if (call.layer < 0) {  // the model inputs come first
      const TensorType& type = lg.input_types[c.inputs.size()];
      values[i] = ops::Placeholder(g, lg.input_names[c.inputs.size()], type.dtype, type.shape);
      c.inputs.push_back(values[i]);
      continue;
    }
    Layer& layer = *layers_[call.layer];
    // A shared layer's later calls are built under its scope and reuse the
    // first call's variables.
    const int k = calls_made[call.layer]++;
    Scope scope = k == 0 ? g.Scope(layer.name()) : g.Scope(absl::StrCat(layer.name(), "/call_", k));
    if (k == 0 && scope.prefix() != layer.name()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Compile: the layer name '", layer.name(), "' is taken by the model's own nodes; rename the layer"));
    }
    std::vector<Output> inputs;
    for (int j : call.inputs) inputs.push_back(values[j]);
    values[i] = layer.Apply(scope, inputs, k == 0);
    logits[i] = layer.softmax_logits();
    if (k == 0) {
      c.layer_variables[call.layer] = layer.variables();
      c.layer_outputs[call.layer] = values[i];
    }
  }
  c.call_outputs = values;
  for (int o : lg.outputs) {
    c.outputs.push_back(values[o]);
    c.output_logits.push_back(logits[o]);
  }
  if (!g.ok()) return g.status();
  for (const LayerPtr& layer : layers_) c.updates.insert(c.updates.end(), layer->updates().begin(), layer->updates().end());
  // Every weight takes part in about one multiply-add per sample of the
  // forward pass (a Dense kernel element exactly one): what decides which
  // steps are small enough for one thread.
  for (const std::vector<Output>& variables : c.layer_variables) {
    for (const Output& v : variables) c.macs_per_sample += v.shape().NumElements();
  }
  return absl::OkStatus();
}

namespace {

// A placeholder Fit feeds (targets, weights), under exactly `name`.
absl::StatusOr<Output> FeedPlaceholder(Graph& g, const std::string& name, DType dtype, const Shape& shape) {
  Output feed = ops::Placeholder(g, name, dtype, shape);
  if (feed.valid() && feed.node->name != name) {
    return absl::InvalidArgumentError(absl::StrCat("Compile: the placeholder name '", name,
                                                   "' is taken by an input or layer of that name; rename it"));
  }
  return feed;
}

// The loss Compile builds for an output: its loss_config, else the loss its
// name names; it must reduce to a scalar (Fit minimizes and reports it).
absl::StatusOr<losses::Loss> CompiledLoss(const OutputCompileOptions& options) {
  losses::Loss config;
  if (options.loss_config) {
    config = *options.loss_config;
  } else {
    absl::StatusOr<const LossInfo*> named = FindLoss(*options.loss);
    if (!named.ok()) return absl::InvalidArgumentError(absl::StrCat("Compile: ", named.status().message()));
    config = (*named)->config;
  }
  if (absl::Status valid = losses::ValidateLoss(config); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("Compile: ", valid.message()));
  }
  const bool per_sample = std::visit([](const auto& l) { return l.reduction == losses::Reduction::kNone; }, config);
  if (per_sample) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Compile: loss ", VariantName(config), ": reduction 'none' gives one value per sample, but a model "
        "trains on a scalar loss; use reduction sum_over_batch_size (the default) or sum, or build the "
        "per-sample loss with ops::Loss"));
  }
  return config;
}

}  // namespace

absl::StatusOr<OutputCompileOptions> Model::OutputOptions(const CompileOptions& options, size_t k) const {
  const size_t n = outputs_count();
  if (!options.outputs.empty() && options.outputs.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("Compile: CompileOptions::outputs has ", options.outputs.size(),
                                                   " entries but the model has ", n, " outputs; give one per output or none"));
  }
  OutputCompileOptions out = options.outputs.empty() ? OutputCompileOptions{} : options.outputs[k];
  if (!out.loss && !out.loss_config) {
    out.loss = options.loss;
    out.loss_config = options.loss_config;
  }
  if (!out.metrics) out.metrics = options.metrics;
  if (!(out.loss_weight >= 0 && std::isfinite(out.loss_weight))) {
    return absl::InvalidArgumentError(absl::StrCat("Compile: output ", k, "'s loss_weight is ", out.loss_weight,
                                                   "; it must be finite and >= 0"));
  }
  return out;
}

absl::StatusOr<Output> Model::OutputLoss(Compiled& c, size_t k, losses::Loss config, Output y) const {
  Graph& g = *c.graph;
  if (!c.options.sample_weights) return BuildLoss(g, config, y, c.outputs[k], c.output_logits[k]);
  if (c.outputs[k].shape().rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Compile: sample_weights needs outputs of rank 2 (one loss per sample), but output '", OutputName(k),
        "' is ", c.outputs[k].type().ToString(), "; compile without sample_weights"));
  }
  if (!c.sample_weight.valid()) {
    GF_ASSIGN_OR_RETURN(c.sample_weight, FeedPlaceholder(g, "sample_weight", DType::kF32, Shape{-1}));
  }
  // Keras: the per-sample losses times the weights, then the loss's reduction.
  const losses::Reduction reduction = std::visit([](auto& l) { return l.reduction; }, config);
  std::visit([](auto& l) { l.reduction = losses::Reduction::kNone; }, config);
  Output weighted = ops::Mul(g, BuildLoss(g, config, y, c.outputs[k], c.output_logits[k]), c.sample_weight);
  return reduction == losses::Reduction::kSum ? ops::ReduceSum(g, weighted) : ops::ReduceMean(g, weighted);
}

absl::Status Model::BuildLossAndMetrics(Compiled& c) const {
  Graph& g = *c.graph;
  const size_t n = c.outputs.size();
  std::vector<Output> weighted;
  for (size_t k = 0; k < n; ++k) {
    GF_ASSIGN_OR_RETURN(const OutputCompileOptions out, OutputOptions(c.options, k));
    GF_ASSIGN_OR_RETURN(const losses::Loss config, CompiledLoss(out));
    const LossInfo* loss = &LossInfoOf(config);
    const std::string target = n == 1 ? "y" : absl::StrCat("y_", OutputName(k));
    GF_ASSIGN_OR_RETURN(Output y, loss->class_index_targets
                                      ? FeedPlaceholder(g, target, DType::kI32, Shape{-1})
                                      : FeedPlaceholder(g, target, DType::kF32, c.outputs[k].shape()));
    c.targets.push_back(y);
    GF_ASSIGN_OR_RETURN(Output output_loss, OutputLoss(c, k, config, y));
    c.output_losses.push_back(output_loss);
    weighted.push_back(out.loss_weight == 1 ? output_loss : ops::Mul(g, output_loss, static_cast<float>(out.loss_weight)));
    GF_ASSIGN_OR_RETURN(std::vector<CompiledMetric> metrics, BuildMetrics(*out.metrics, {g, y, c.outputs[k], *loss}));
    for (CompiledMetric& m : metrics) {
      if (n > 1) m.name = absl::StrCat(OutputName(k), "_", m.name);  // Keras 3's "<output>_<metric>"
      c.metrics.push_back(std::move(m));
    }
  }
  c.loss = n == 1 ? weighted[0] : ops::AddN(g, weighted);
  // Keras reports (in fit and evaluate) the loss plus the layers' penalties.
  c.loss = optimizers::AddRegularizationLosses(g, c.loss);
  return g.status();
}

absl::Status Model::BuildTrainStep(Compiled& c) const {
  GF_RETURN_IF_ERROR(c.options.optimizer.status());  // an unknown optimizer name
  optimizers::MinimizeOptions minimize_options{.clip = c.options.clip,
                                               .schedule = c.options.learning_rate_schedule};
  if (c.options.data_parallel) minimize_options.data_parallel = c.options.data_parallel->buckets;
  minimize_options.extra_updates = c.updates;  // e.g. batch norm's moving statistics
  if (!c.options.learning_rate_schedule) {  // stored as an f32 variable
    const double rate = std::visit([](const auto& o) { return o.learning_rate; }, c.options.optimizer);
    if (rate > 0 && std::isfinite(rate)) GF_RETURN_IF_ERROR(CheckLearningRate(rate));
  }
  c.train = optimizers::Minimize(*c.graph, c.loss, c.options.optimizer, minimize_options);
  GF_RETURN_IF_ERROR(c.graph->status());
  return CheckVariablesLoadable(*c.graph, layers_);
}

absl::Status Model::CheckHeldWeight(const Layer& layer, const Output& v, const Tensor* held) const {
  if (held == nullptr) {
    if (!require_held_weights_) return absl::OkStatus();  // the session initializes it
    return absl::InvalidArgumentError(absl::StrCat(
        "Compile: the saved model has no weight '", v.node->name, "' ", v.type().ToString(),
        " for layer '", layer.name(), "' (", layer.type(), ")"));
  }
  if (held->dtype() == v.dtype() && held->shape() == v.shape()) return absl::OkStatus();
  const std::string held_type = TensorType{held->dtype(), held->shape()}.ToString();
  if (require_held_weights_) {
    return absl::InvalidArgumentError(absl::StrCat("the saved model's '", v.node->name, "' is ", held_type,
                                                   " but its configuration builds ", v.type().ToString()));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "Compile: layer '", layer.name(), "' holds '", v.node->name.substr(layer.name().size() + 1), "' as ",
      held_type, " (from an earlier model, SetWeights or a file) but this model builds it as ",
      v.type().ToString(), "; a layer keeps the input size it was first built with"));
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> Model::HeldWeightBindings(
    const Compiled& c) const {
  // The weights the layers already hold (from an earlier Compile of this or
  // another model, SetWeights or LoadModel) are bound into the new store with
  // shared storage; the others are initialized by the session. Everything is
  // checked before the session allocates anything.
  std::vector<std::pair<std::string, Tensor>> bindings;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = *layers_[i];
    const std::string prefix = layer.name() + "/";
    std::set<std::string> built;
    for (const Output& v : c.layer_variables[i]) {
      const std::string local = v.node->name.substr(prefix.size());
      built.insert(local);
      auto held = layer.weights().find(local);
      const Tensor* value = held == layer.weights().end() ? nullptr : &held->second;
      GF_RETURN_IF_ERROR(CheckHeldWeight(layer, v, value));
      if (value != nullptr) bindings.push_back({v.node->name, *value});
    }
    for (const auto& [local, value] : layer.weights()) {
      if (!built.count(local)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Compile: layer '", layer.name(), "' (", layer.type(), ") was given a weight '", local,
            "' that it does not have (it has: ", absl::StrJoin(built, ", "), ")"));
      }
    }
  }
  return bindings;
}

absl::Status Model::CompilePlans(Compiled& c,
                                      const std::vector<std::pair<std::string, Tensor>>& bindings) const {
  Communicator* communicator = c.options.data_parallel ? c.options.data_parallel->communicator : nullptr;
  c.session = std::make_unique<Session>(*c.graph, SessionOptions{.check_numerics = c.options.check_numerics,
                                                                 .fuse_ops = c.options.fuse_ops,
                                                                 .autotune = c.options.autotune,
                                                                 .communicator = communicator});
  for (const auto& [name, value] : bindings) GF_RETURN_IF_ERROR(c.session->variables().Bind(name, value));
  // The loss, each output's loss (several outputs), the metrics' statistics:
  // ReportedNames' order.
  std::vector<ValueRef> fetches = {c.loss};
  if (c.outputs.size() > 1) fetches.insert(fetches.end(), c.output_losses.begin(), c.output_losses.end());
  for (const CompiledMetric& m : c.metrics) fetches.insert(fetches.end(), m.statistics.begin(), m.statistics.end());
  GF_ASSIGN_OR_RETURN(Plan train, c.session->Compile(fetches, {c.train}, Phase::kTrain));
  GF_ASSIGN_OR_RETURN(Plan eval, c.session->Compile(fetches, {}, Phase::kInfer));
  GF_ASSIGN_OR_RETURN(Plan predict, c.session->Compile(std::vector<ValueRef>(c.outputs.begin(), c.outputs.end()), {},
                                                       Phase::kInfer));
  c.train_plan.emplace(std::move(train));
  c.eval_plan.emplace(std::move(eval));
  c.predict_plan.emplace(std::move(predict));
  return absl::OkStatus();
}

absl::StatusOr<Model::Compiled> Model::BuildCompiled(CompileOptions options) const {
  Compiled c;
  c.options = std::move(options);
  // `loss` names the configured loss, for whoever reads compile_options()
  // (saved files, inspect_model's choice of label format).
  if (c.options.loss_config) c.options.loss = LossInfoOf(*c.options.loss_config).names[0];
  if (c.options.data_parallel && c.options.data_parallel->communicator == nullptr) {
    return absl::InvalidArgumentError(
        "Compile: CompileOptions::data_parallel needs a communicator (an MpiCommunicator, "
        "core/mpi_communicator.h, or for one process a SoloCommunicator)");
  }
  c.graph = std::make_unique<Graph>(c.options.seed);
  // Before anything is built: a bf16 model on a CPU without bf16 fails here.
  GF_ASSIGN_OR_RETURN(const bool any_bf16, SetComputeDTypes(c.options.dtype_policy));
  if (any_bf16) {
    GF_RETURN_IF_ERROR(CheckBFloat16Support(absl::StrCat("model '", name_, "' (dtype policy mixed_bfloat16)")));
  }
  GF_RETURN_IF_ERROR(BuildForward(c));
  GF_RETURN_IF_ERROR(BuildLossAndMetrics(c));
  GF_RETURN_IF_ERROR(BuildTrainStep(c));
  GF_ASSIGN_OR_RETURN(auto bindings, HeldWeightBindings(c));
  GF_RETURN_IF_ERROR(CompilePlans(c, bindings));
  GF_RETURN_IF_ERROR(CollectLayerWeights(c));
  return c;
}

absl::Status Model::CollectLayerWeights(Compiled& c) const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string prefix = layers_[i]->name() + "/";
    for (const Output& v : c.layer_variables[i]) {
      GF_ASSIGN_OR_RETURN(Tensor value, c.session->variables().Get(v.node->name));
      c.layer_weights.push_back({i, v.node->name.substr(prefix.size()), value});
    }
  }
  return absl::OkStatus();
}

void Model::Commit(Compiled c) {
  // The layers now share the store's tensors, so weights survive the next
  // Compile (e.g. after freezing layers), as in Keras; the optimizer starts
  // afresh.
  for (auto& [layer, local, value] : c.layer_weights) layers_[layer]->HoldWeight(local, value);
  options_ = std::move(c.options);
  // The plans and the session refer to the graph: release them first.
  call_plan_.reset();
  train_plan_ = std::move(c.train_plan);
  eval_plan_ = std::move(c.eval_plan);
  predict_plan_ = std::move(c.predict_plan);
  session_ = std::move(c.session);
  graph_ = std::move(c.graph);
  inputs_ = std::move(c.inputs);
  targets_ = std::move(c.targets);
  outputs_ = std::move(c.outputs);
  loss_ = c.loss;
  train_ = c.train;
  sample_weight_ = c.sample_weight;
  metrics_ = std::move(c.metrics);
  layer_variables_ = std::move(c.layer_variables);
  layer_outputs_ = std::move(c.layer_outputs);
  call_outputs_ = std::move(c.call_outputs);
  macs_per_sample_ = c.macs_per_sample;
  require_held_weights_ = false;
}

absl::StatusOr<std::vector<std::vector<WeightSpec>>> Model::WeightSpecs() {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckLayers());
  GF_RETURN_IF_ERROR(AssignDefaultNames());
  GF_ASSIGN_OR_RETURN(const Compiled c, BuildAside());
  std::vector<std::vector<WeightSpec>> specs;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const size_t prefix = layers_[i]->name().size() + 1;
    std::vector<WeightSpec>& layer = specs.emplace_back();
    for (const Output& v : c.layer_variables[i]) {
      layer.push_back({v.node->name.substr(prefix), v.type(), v.node->attr<bool>("trainable")});
    }
  }
  return specs;
}

absl::Status Model::Compile(CompileOptions options) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckLayers());
  GF_RETURN_IF_ERROR(ValidateModelName(name_));
  GF_RETURN_IF_ERROR(AssignDefaultNames());
  // A failed Compile leaves the model as it was (still compiled, if it
  // was): the new graph is built aside, and the layers get back what the
  // model's own graph built.
  std::vector<Layer::BuildRecord> previous;
  for (const LayerPtr& layer : layers_) previous.push_back(layer->build_record());
  absl::StatusOr<Compiled> compiled = BuildCompiled(std::move(options));
  if (!compiled.ok()) {
    for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->RestoreBuild(std::move(previous[i]));
    return compiled.status();
  }
  Commit(*std::move(compiled));
  return absl::OkStatus();
}

absl::Status Model::CheckCompiled() const {
  if (!train_plan_) return absl::FailedPreconditionError("call Compile before Fit/Evaluate/Predict");
  return absl::OkStatus();
}

namespace {

// Whether rows of `data` are rows of `want` (dim 0 aside): the same dims,
// or, as Keras 3's squeeze_or_expand_to_same_rank, one side with an extra
// trailing 1 (targets [N] for an output [N, 1], labels [N, 1] for [N]). A
// row then has the same bytes, so batches are gathered into the feed as
// they are.
bool SameRows(const Shape& data, const Shape& want) {
  const Shape& longer = data.rank() > want.rank() ? data : want;
  const Shape& shorter = data.rank() > want.rank() ? want : data;
  if (longer.rank() - shorter.rank() > 1 || shorter.rank() < 1) return false;
  if (longer.rank() != shorter.rank() && longer[longer.rank() - 1] != 1) return false;
  for (int d = 1; d < shorter.rank(); ++d) {
    if (data[d] != want[d]) return false;
  }
  return true;
}

// Checks a dataset against the model's placeholders; messages say what to
// fix. Targets (expected_rows >= 0) may differ by a trailing 1 (SameRows).
absl::Status CheckData(const char* what, const Tensor& t, Output placeholder,
                       int64_t expected_rows) {
  const Shape& want = placeholder.shape();
  const bool ok = t.dtype() == placeholder.dtype() &&
                  (expected_rows >= 0 ? SameRows(t.shape(), want) : t.shape().SameUpToBatch(want));
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", TensorType{t.dtype(), t.shape()}.ToString(), " but the model expects ",
        placeholder.type().ToString(), " (-1: any number of samples)"));
  }
  if (expected_rows >= 0 && t.shape()[0] != expected_rows) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", t.shape()[0],
                                                   " samples but x has ", expected_rows));
  }
  return absl::OkStatus();
}

// "x", or "x[1] ('deep')" for a model of several inputs.
std::string FeedLabel(const std::string& base, size_t i, const std::vector<Output>& placeholders) {
  if (placeholders.size() == 1) return base;
  return absl::StrCat(base, "[", i, "] ('", placeholders[i].node->name, "')");
}

// Rows [begin, end) of every tensor of `all`.
absl::StatusOr<TensorList> SliceAll(const TensorList& all, int64_t begin, int64_t end) {
  TensorList part;
  for (const Tensor& t : all) {
    GF_ASSIGN_OR_RETURN(Tensor rows, t.Slice(begin, end));
    part.push_back(std::move(rows));
  }
  return part;
}

}  // namespace

absl::Status Model::CheckFeeds(const char* what, const TensorList& x, const TensorList* y) const {
  auto count_error = [&](const char* which, size_t given, size_t wanted) {
    return absl::InvalidArgumentError(absl::StrCat(what, which, " has ", given, " tensors but the model has ", wanted,
                                                   wanted == 1 ? " (pass one tensor)" : " (one per input/output, in order)"));
  };
  if (x.size() != inputs_.size()) return count_error("x", x.size(), inputs_.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const std::string label = FeedLabel(absl::StrCat(what, "x"), i, inputs_);
    GF_RETURN_IF_ERROR(CheckData(label.c_str(), x[i], inputs_[i], -1));
    if (x[i].shape()[0] != x[0].shape()[0]) {
      return absl::InvalidArgumentError(absl::StrCat(label, " has ", x[i].shape()[0], " samples but ",
                                                     FeedLabel(absl::StrCat(what, "x"), 0, inputs_), " has ",
                                                     x[0].shape()[0]));
    }
  }
  if (y == nullptr) return absl::OkStatus();
  if (y->size() != targets_.size()) return count_error("y", y->size(), targets_.size());
  for (size_t i = 0; i < y->size(); ++i) {
    GF_RETURN_IF_ERROR(CheckData(FeedLabel(absl::StrCat(what, "y"), i, targets_).c_str(), (*y)[i], targets_[i],
                                 x[0].shape()[0]));
  }
  return absl::OkStatus();
}

absl::Status Model::DivergedError(float loss, int64_t step, int64_t steps) const {
  auto rate = learning_rate();
  return absl::AbortedError(absl::StrCat(
      "Fit: the loss became ", std::isnan(loss) ? "NaN" : "Inf", " at epoch ", epoch_ + 1,
      ", batch ", step + 1, " of ", steps, ": training diverged and was stopped. Lower the "
      "learning rate", rate.ok() ? absl::StrCat(" (now ", *rate, ")") : std::string(),
      ", clip the gradients (CompileOptions::clip, e.g. optimizers::ClipByGlobalNorm(1.0)), "
      "or check the data for NaN/Inf; CompileOptions::check_numerics names the first node "
      "that produces one. The weights hold this step's update; files saved earlier (e.g. by "
      "ModelCheckpoint) are untouched"));
}

std::vector<std::string> Model::ReportedNames() const {
  std::vector<std::string> names = {"loss"};
  if (outputs_.size() > 1) {
    for (size_t k = 0; k < outputs_.size(); ++k) names.push_back(absl::StrCat(OutputName(k), "_loss"));
  }
  for (const CompiledMetric& m : metrics_) names.push_back(m.name);
  return names;
}

std::string Model::OutputName(size_t k) const {
  if (sequential_) return layers_.back()->name();
  return layers_[functional_graph_.calls[functional_graph_.outputs[k]].layer]->name();
}

int Model::rank() const {
  return options_.data_parallel ? options_.data_parallel->communicator->rank() : 0;
}

int Model::num_ranks() const {
  return options_.data_parallel ? options_.data_parallel->communicator->size() : 1;
}

namespace {

// Data parallel: the rows of `order` (0..n-1 if null) that rank `rank` of
// `ranks` runs. Training: global batch s is rows [s·G, (s+1)·G) of the
// order, G = batch x ranks, as one process at batch G would take it, and
// rank r takes its r-th part. A last, shorter global batch is split evenly,
// padded by wrapping around to a multiple of the ranks (as PyTorch's
// DistributedSampler), so every rank runs as many steps, each with its
// all-reduce. Test passes (no collective per step) split the rows exactly.
std::vector<int64_t> RankShard(const std::vector<int64_t>* order, int64_t n, int rank, int ranks,
                               int64_t batch, bool training) {
  std::vector<int64_t> shard;
  auto take = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) shard.push_back(order ? (*order)[i % n] : i % n);
  };
  if (!training) {
    take(rank * n / ranks, (rank + 1) * n / ranks);
    return shard;
  }
  for (int64_t start = 0; start < n; start += batch * ranks) {
    const int64_t per_rank = (std::min(batch * ranks, n - start) + ranks - 1) / ranks;
    take(start + rank * per_rank, start + (rank + 1) * per_rank);
  }
  return shard;
}

// What a pass has summed over its batches: each loss (batch mean x rows) and
// each metric's statistics.
struct PassSums {
  std::vector<double> losses;
  std::vector<MetricSums> metrics;
};

// Adds one batch of `rows` (the plan's fetches: the losses, then the metric
// statistics) and sets `shown` to the values over the `seen` samples so far.
void AddBatch(const std::vector<Tensor>& fetched, int64_t rows, int64_t seen,
              const std::vector<CompiledMetric>& metrics, PassSums& sums, NamedValues& shown) {
  const size_t losses = sums.losses.size();
  for (size_t k = 0; k < losses; ++k) {
    sums.losses[k] += double(fetched[k].data<float>()[0]) * rows;
    shown[k].second = sums.losses[k] / seen;
  }
  for (size_t k = 0, next = losses; k < metrics.size(); ++k) {
    next = sums.metrics[k].Add(metrics[k], fetched, next);
    shown[losses + k].second = sums.metrics[k].Result(metrics[k], seen);
  }
}

}  // namespace

std::vector<Feed> Model::PassFeeds(const TensorList& x, const TensorList& y, const Tensor& sample_weight,
                                   std::vector<const Tensor*>& sources) const {
  std::vector<Feed> feeds;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    feeds.push_back({inputs_[i], Tensor()});
    sources.push_back(&x[i]);
  }
  for (size_t i = 0; i < targets_.size(); ++i) {
    feeds.push_back({targets_[i], Tensor()});
    sources.push_back(&y[i]);
  }
  if (sample_weight_.valid()) {
    feeds.push_back({sample_weight_, Tensor()});
    sources.push_back(&sample_weight);
  }
  return feeds;
}

absl::StatusOr<Logs> Model::RunEpoch(Plan& plan, const TensorList& x, const TensorList& y,
                                      const Tensor& sample_weight, int64_t batch_size,
                                      const std::vector<int64_t>* order, ProgressBar* bar,
                                      const std::vector<CallbackPtr>& callbacks) {
  const bool training = &plan == &*train_plan_;  // else the test hooks
  std::vector<int64_t> shard;
  if (num_ranks() > 1) {
    shard = RankShard(order, x[0].shape()[0], rank(), num_ranks(), batch_size, training);
    order = &shard;
  }
  const int64_t n = order ? static_cast<int64_t>(order->size()) : x[0].shape()[0];
  const int64_t steps = (n + batch_size - 1) / batch_size;
  // The plan's own feed buffers: gathering is the only copy.
  std::vector<const Tensor*> sources;
  std::vector<Feed> feeds = PassFeeds(x, y, sample_weight, sources);
  std::vector<Tensor> fetched;
  PassSums sums{std::vector<double>(outputs_.size() > 1 ? 1 + outputs_.size() : 1, 0.0),
                std::vector<MetricSums>(metrics_.size())};
  NamedValues shown;  // named once; each step updates the values
  for (const std::string& name : ReportedNames()) shown.push_back({name, 0.0});
  StepThreadPolicy threads(macs_per_sample_);
  for (int64_t step = 0; step < steps; ++step) {
    int64_t begin = step * batch_size, end = std::min(n, begin + batch_size);
    if (feeds[0].value.empty() || feeds[0].value.shape()[0] != end - begin) {  // only the last batch differs
      for (Feed& feed : feeds) {
        GF_ASSIGN_OR_RETURN(feed.value, plan.FeedBuffer(feed.key, end - begin));
      }
    }
    for (size_t i = 0; i < feeds.size(); ++i) GatherRows(*sources[i], order, begin, end, feeds[i].value);
    if (!callbacks.empty()) {
      threads.ForCaller();
      GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) {
        return training ? c.OnTrainBatchBegin(*this, step) : c.OnTestBatchBegin(*this, step);
      }));
    }
    threads.ForStep(end - begin);
    GF_RETURN_IF_ERROR(plan.Run(feeds, &fetched));
    AddBatch(fetched, end - begin, end, metrics_, sums, shown);
    if (bar) bar->Update(step + 1, shown);
    if (!callbacks.empty()) {
      threads.ForCaller();
      Logs logs(shown.begin(), shown.end());
      GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) {
        return training ? c.OnTrainBatchEnd(*this, step, logs) : c.OnTestBatchEnd(*this, step, logs);
      }));
      // A callback may end training after this batch (Keras checks
      // stop_training after every batch), e.g. a learning-rate finder that
      // saw the loss explode: Fit then returns its History normally.
      if (training && stop_training) break;
    }
    // Training never continues silently past a NaN/Inf loss (Keras does,
    // unless TerminateOnNaN is given; that callback, above, reports first).
    if (training && !keep_training_through_nan_ && !std::isfinite(fetched[0].data<float>()[0])) {
      return DivergedError(fetched[0].data<float>()[0], step, steps);
    }
  }
  if (num_ranks() > 1) {  // every rank reports the pass over all ranks' samples
    int64_t seen = n;
    GF_RETURN_IF_ERROR(SumOverRanks(sums.losses, sums.metrics, seen));
    for (size_t k = 0; k < sums.losses.size(); ++k) shown[k].second = sums.losses[k] / seen;
    for (size_t k = 0; k < metrics_.size(); ++k) {
      shown[sums.losses.size() + k].second = sums.metrics[k].Result(metrics_[k], seen);
    }
  }
  return Logs(shown.begin(), shown.end());
}

absl::Status Model::SumOverRanks(std::vector<double>& losses, std::vector<MetricSums>& metrics,
                                 int64_t& seen) const {
  std::vector<double> all = losses;
  for (size_t k = 0; k < metrics.size(); ++k) {
    // A rank without samples has added nothing yet: every rank sends as many sums.
    int64_t size = 0;
    for (const Output& statistic : metrics_[k].statistics) size += statistic.shape().NumElements();
    metrics[k].sums().resize(size, 0.0);
    all.insert(all.end(), metrics[k].sums().begin(), metrics[k].sums().end());
  }
  all.push_back(static_cast<double>(seen));
  GF_RETURN_IF_ERROR(options_.data_parallel->communicator->AllReduceSum(all.data(), all.size()));
  size_t next = 0;
  for (double& loss : losses) loss = all[next++];
  for (MetricSums& m : metrics) {
    for (double& sum : m.sums()) sum = all[next++];
  }
  seen = static_cast<int64_t>(all[next]);
  return absl::OkStatus();
}

absl::StatusOr<Logs> Model::RunTest(const TensorList& x, const TensorList& y, const Tensor& sample_weight,
                                    int64_t batch_size, ProgressBar* bar, const std::vector<CallbackPtr>& callbacks) {
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnTestBegin(*this); }));
  GF_ASSIGN_OR_RETURN(Logs logs, RunEpoch(*eval_plan_, x, y, sample_weight, batch_size, nullptr, bar, callbacks));
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnTestEnd(*this, logs); }));
  return logs;
}

absl::StatusOr<Model::FitData> Model::SplitFitData(const TensorList& x_all, const TensorList& y_all,
                                                   const FitOptions& options) const {
  GF_RETURN_IF_ERROR(CheckFeeds("", x_all, &y_all));
  if (options.batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("Fit: batch_size must be > 0, got ", options.batch_size));
  }
  if (options.initial_epoch < 0 || options.validation_freq < 1) {
    return absl::InvalidArgumentError(absl::StrCat("Fit: initial_epoch must be >= 0 and validation_freq >= 1, got ",
                                                   options.initial_epoch, " and ", options.validation_freq));
  }
  if (!(options.validation_split >= 0 && options.validation_split < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Fit: validation_split must be in [0, 1), got ", options.validation_split));
  }
  const int64_t n = x_all[0].shape()[0];
  FitData data{x_all, y_all, Tensor(), options.validation_data};
  GF_ASSIGN_OR_RETURN(data.sample_weight, FitSampleWeights(options, y_all));
  if (options.validation_split > 0 && !data.validation) {  // Keras: last samples, before shuffling
    int64_t split = n - static_cast<int64_t>(n * options.validation_split);
    GF_ASSIGN_OR_RETURN(TensorList x_valid, SliceAll(x_all, split, n));
    GF_ASSIGN_OR_RETURN(TensorList y_valid, SliceAll(y_all, split, n));
    data.validation = ValidationData{x_valid, y_valid};
    GF_ASSIGN_OR_RETURN(data.x, SliceAll(x_all, 0, split));
    GF_ASSIGN_OR_RETURN(data.y, SliceAll(y_all, 0, split));
    if (!data.sample_weight.empty()) {
      GF_ASSIGN_OR_RETURN(data.validation->sample_weight, data.sample_weight.Slice(split, n));
      GF_ASSIGN_OR_RETURN(data.sample_weight, data.sample_weight.Slice(0, split));
    }
  }
  if (data.x[0].shape()[0] == 0) {
    return absl::InvalidArgumentError("Fit: no training samples (x has 0 rows); pass at least one sample");
  }
  if (const std::optional<ValidationData>& validation = data.validation) {
    GF_RETURN_IF_ERROR(CheckFeeds("validation ", validation->x, &validation->y));
    // Keras refuses a split that leaves no validation sample, too.
    if (validation->x[0].shape()[0] == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Fit: the validation data has no samples",
          options.validation_data ? std::string()
                                  : absl::StrCat(" (validation_split ", options.validation_split, " of ", n, " samples)"),
          "; give more data or no validation"));
    }
    GF_ASSIGN_OR_RETURN(Tensor weights, SampleWeights("Fit: the validation sample_weight", validation->sample_weight,
                                                      validation->x[0].shape()[0]));
    if (!weights.empty()) data.validation->sample_weight = weights;
  }
  return data;
}

namespace {

absl::Status NoWeightFeedError(const char* what) {
  return absl::FailedPreconditionError(absl::StrCat(
      what, ": the model was compiled without sample weights (its loss has no weight feed); compile with "
            "CompileOptions::sample_weights = true"));
}

}  // namespace

absl::StatusOr<Tensor> Model::FitSampleWeights(const FitOptions& options, const TensorList& y) const {
  if (options.class_weight.empty()) {
    return SampleWeights("Fit: sample_weight", options.sample_weight, y[0].shape()[0]);
  }
  if (options.sample_weight) {
    return absl::InvalidArgumentError("Fit: give sample_weight or class_weight, not both (Keras refuses both too)");
  }
  if (!sample_weight_.valid()) return NoWeightFeedError("Fit: class_weight");
  if (y.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("Fit: class_weight is for a model with one output, this one has ",
                                                   y.size(), "; give sample_weight instead"));
  }
  return ClassWeights(options.class_weight, y[0]);
}

absl::StatusOr<Tensor> Model::ClassWeights(const std::map<int64_t, double>& class_weight, const Tensor& y) const {
  for (const auto& [label, weight] : class_weight) {
    if (!std::isfinite(weight)) {
      return absl::InvalidArgumentError(absl::StrCat("Fit: class_weight of class ", label, " is ", weight,
                                                     "; give finite weights"));
    }
  }
  if (y.shape().rank() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("Fit: class_weight needs targets of rank 1 or 2, got ",
                                                   y.shape().ToString(), " (Keras refuses them too); give sample_weight"));
  }
  const int64_t rows = y.shape()[0];
  const int64_t depth = y.shape().rank() == 2 ? y.shape()[1] : 1;
  Tensor weights(DType::kF32, Shape{rows});
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label;  // Keras: the class index, a one-hot row's argmax, or the rounded binary label
    if (y.dtype() == DType::kI32) {
      label = y.data<int32_t>()[r];
    } else {
      const float* row = y.data<float>() + r * depth;
      label = depth > 1 ? std::max_element(row, row + depth) - row : std::llround(row[0]);
    }
    auto it = class_weight.find(label);
    weights.data<float>()[r] = it == class_weight.end() ? 1.0f : static_cast<float>(it->second);
  }
  return weights;
}

absl::StatusOr<Tensor> Model::SampleWeights(const char* what, const std::optional<Tensor>& given, int64_t rows) const {
  if (!sample_weight_.valid()) {
    if (given) return NoWeightFeedError(what);
    return Tensor();
  }
  if (!given) {
    Tensor ones(DType::kF32, Shape{rows});
    std::fill_n(ones.data<float>(), rows, 1.0f);
    return ones;
  }
  if (given->dtype() != DType::kF32 || given->shape() != Shape{rows}) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", TensorType{given->dtype(), given->shape()}.ToString(),
                                                   " but the data has ", rows, " samples; give f32[", rows,
                                                   "], one weight per sample"));
  }
  const float* w = given->data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    if (!std::isfinite(w[r])) {
      return absl::InvalidArgumentError(absl::StrCat(what, "[", r, "] is ", w[r], "; give finite weights"));
    }
  }
  return *given;
}

absl::Status Model::ResumeStepStream() {
  // The random stream of the training steps follows the step counter, which
  // checkpoints save: a resumed Fit draws the masks an uninterrupted one would.
  if (session_->variables().Has(optimizers::kStepName)) {
    GF_ASSIGN_OR_RETURN(Tensor step, session_->variables().Get(optimizers::kStepName));
    train_plan_->set_run_count(static_cast<uint64_t>(step.data<int64_t>()[0]));
  }
  return absl::OkStatus();
}

void Model::NextEpochOrder(bool shuffle, std::vector<int64_t>& order) {
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return;
  // Fisher-Yates with the model's seeded generator; across Fit calls each
  // epoch gets a new order.
  Rng rng(Mix64(options_.seed ^ Mix64(++epochs_shuffled_)));
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {
    std::swap(order[i], order[rng.Below(i + 1)]);
  }
}

absl::Status Model::FitEpoch(const FitData& data, const FitOptions& options, std::vector<int64_t>& order,
                             History& history) {
  NextEpochOrder(options.shuffle, order);
  const int64_t global_batch = options.batch_size * num_ranks();  // data parallel: every rank's rows
  const int64_t steps = (data.x[0].shape()[0] + global_batch - 1) / global_batch;
  ProgressBar bar(steps, options.verbose);
  GF_ASSIGN_OR_RETURN(Logs logs, RunEpoch(*train_plan_, data.x, data.y, data.sample_weight, options.batch_size,
                                          &order, &bar, options.callbacks));
  history.seconds_per_epoch.push_back(bar.elapsed_seconds());
  if (data.validation && (epoch_ + 1) % options.validation_freq == 0) {
    const ValidationData& v = *data.validation;
    GF_ASSIGN_OR_RETURN(Logs val, RunTest(v.x, v.y, v.sample_weight.value_or(Tensor()), options.batch_size, nullptr,
                                          options.callbacks));
    for (const auto& [name, value] : val) logs["val_" + name] = value;
  }
  // As Keras's History and progress bar, which run after the user's
  // callbacks, these show what the callbacks changed or added.
  GF_RETURN_IF_ERROR(CallEach(options.callbacks, [&](Callback& c) { return c.OnEpochEnd(*this, epoch_, logs); }));
  for (const auto& [name, value] : logs) history.history[name].push_back(value);
  bar.Finish(InReportedOrder(logs));
  return absl::OkStatus();
}

NamedValues Model::InReportedOrder(Logs logs) const {
  NamedValues ordered;  // Keras's order: loss, metrics, val_loss, val_metrics, then what callbacks added
  for (const char* prefix : {"", "val_"}) {
    for (const std::string& name : ReportedNames()) {
      auto it = logs.find(prefix + name);
      if (it == logs.end()) continue;
      ordered.push_back(*it);
      logs.erase(it);
    }
  }
  ordered.insert(ordered.end(), logs.begin(), logs.end());
  return ordered;
}

absl::StatusOr<History> Model::Fit(const TensorList& x_all, const TensorList& y_all, FitOptions options) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  GF_ASSIGN_OR_RETURN(FitData data, SplitFitData(x_all, y_all, options));
  const int64_t n = data.x[0].shape()[0];
  // Keras clamps the batch to the data; the step arithmetic needs it too.
  options.batch_size = std::min(options.batch_size, n);
  History history;
  std::vector<int64_t> order(n);
  stop_training = false;
  keep_training_through_nan_ = options.keep_training_through_nan;
  if (num_ranks() > 1) {
    // Every rank starts from rank 0's weights and optimizer state, and only
    // rank 0 prints.
    GF_RETURN_IF_ERROR(session_->BroadcastVariables(*options_.data_parallel->communicator));
    if (rank() != 0) options.verbose = 0;
  }
  GF_RETURN_IF_ERROR(ResumeStepStream());
  const std::vector<CallbackPtr>& callbacks = options.callbacks;
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnTrainBegin(*this); }));
  for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training; ++epoch) {
    epoch_ = epoch;
    GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnEpochBegin(*this, epoch); }));
    if (options.verbose) std::printf("Epoch %d/%d\n", epoch + 1, options.epochs);
    GF_RETURN_IF_ERROR(FitEpoch(data, options, order, history));
    if (num_ranks() > 1) {  // a callback on one rank ends the epochs of all
      double stop = stop_training ? 1 : 0;
      GF_RETURN_IF_ERROR(options_.data_parallel->communicator->AllReduceSum(&stop, 1));
      stop_training = stop > 0;
    }
  }
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnTrainEnd(*this); }));
  return history;
}

absl::StatusOr<Logs> Model::Evaluate(const TensorList& x, const TensorList& y, EvaluateOptions options) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  GF_RETURN_IF_ERROR(CheckFeeds("", x, &y));
  const int64_t n = x[0].shape()[0];
  if (options.batch_size <= 0 || n == 0) {
    return absl::InvalidArgumentError(absl::StrCat("Evaluate: needs batch_size > 0 and at least one sample, got batch_size ",
                                                   options.batch_size, " and ", n, " samples"));
  }
  GF_ASSIGN_OR_RETURN(Tensor weights, SampleWeights("Evaluate: sample_weight", options.sample_weight, n));
  const int64_t batch_size = std::min(options.batch_size, n);  // as Keras; keeps the step count from overflowing
  const int64_t rows = (n + num_ranks() - 1) / num_ranks();  // about this rank's shard
  ProgressBar bar((rows + batch_size - 1) / batch_size, rank() == 0 ? options.verbose : 0);
  GF_ASSIGN_OR_RETURN(Logs logs, RunTest(x, y, weights, batch_size, &bar, options.callbacks));
  bar.Finish(InReportedOrder(logs));
  return logs;
}

absl::StatusOr<Tensor> Model::Predict(const TensorList& x, PredictOptions options) {
  if (outputs_count() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("Predict: the model has ", outputs_count(),
                                                   " outputs; PredictOutputs returns them all"));
  }
  GF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, PredictOutputs(x, std::move(options)));
  return std::move(outputs[0]);
}

absl::StatusOr<std::vector<Tensor>> Model::PredictOutputs(const TensorList& x, PredictOptions options) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  GF_RETURN_IF_ERROR(CheckFeeds("", x, nullptr));
  const int64_t batch_size = options.batch_size;
  const std::vector<CallbackPtr>& callbacks = options.callbacks;
  if (batch_size <= 0) return absl::InvalidArgumentError("Predict: batch_size must be > 0");
  const int64_t n = x[0].shape()[0];
  std::vector<Tensor> results;
  for (const Output& out : outputs_) results.emplace_back(out.dtype(), out.shape().WithBatch(n));
  std::vector<Tensor> fetched;
  std::vector<Feed> feeds;  // the plan's feed buffers: gathering is the only copy
  for (const Output& input : inputs_) feeds.push_back({input, Tensor()});
  StepThreadPolicy threads(macs_per_sample_);
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnPredictBegin(*this); }));
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    int64_t end = std::min(n, begin + batch_size);
    if (feeds[0].value.empty() || feeds[0].value.shape()[0] != end - begin) {  // only the last batch differs
      for (Feed& feed : feeds) {
        GF_ASSIGN_OR_RETURN(feed.value, predict_plan_->FeedBuffer(feed.key, end - begin));
      }
    }
    for (size_t i = 0; i < feeds.size(); ++i) GatherRows(x[i], nullptr, begin, end, feeds[i].value);
    const int64_t batch = begin / batch_size;
    if (!callbacks.empty()) threads.ForCaller();
    GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnPredictBatchBegin(*this, batch); }));
    threads.ForStep(end - begin);
    GF_RETURN_IF_ERROR(predict_plan_->Run(feeds, &fetched));
    for (size_t k = 0; k < results.size(); ++k) {
      const size_t row_bytes = results[k].num_bytes() / n;
      std::memcpy(static_cast<uint8_t*>(results[k].raw()) + begin * row_bytes, fetched[k].raw(),
                  fetched[k].num_bytes());
    }
    if (!callbacks.empty()) threads.ForCaller();
    GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnPredictBatchEnd(*this, batch, fetched); }));
  }
  GF_RETURN_IF_ERROR(CallEach(callbacks, [&](Callback& c) { return c.OnPredictEnd(*this); }));
  return results;
}

absl::StatusOr<std::vector<Tensor>> Model::Call(const TensorList& x, CallOptions options) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  GF_RETURN_IF_ERROR(CheckFeeds("Call: ", x, nullptr));
  if (!call_plan_ && options.training) {
    GF_ASSIGN_OR_RETURN(Plan plan, session_->Compile(std::vector<ValueRef>(outputs_.begin(), outputs_.end()), {},
                                                     Phase::kTrain));
    constexpr uint64_t kCallRandomStream = uint64_t{0x43414c4c} << 32;  // "CALL": far from the plans' own
    plan.set_random_stream(kCallRandomStream);
    call_plan_.emplace(std::move(plan));
  }
  std::vector<Feed> feeds;
  for (size_t i = 0; i < inputs_.size(); ++i) feeds.push_back({inputs_[i], x[i]});
  StepThreadPolicy threads(macs_per_sample_);
  threads.ForStep(x[0].shape()[0]);
  return (options.training ? *call_plan_ : *predict_plan_).Run(feeds);  // fresh tensors, not the plan's
}

absl::StatusOr<double> Model::learning_rate() const {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  if (options_.learning_rate_schedule) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the learning rate follows a '", optimizers::ScheduleName(*options_.learning_rate_schedule),
        "' schedule over the step counter: it has no variable to get or set"));
  }
  GF_ASSIGN_OR_RETURN(Tensor lr, session_->variables().Get(optimizers::kLearningRateName));
  return lr.data<float>()[0];
}

absl::StatusOr<double> Model::CurrentLearningRate() const {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  if (!options_.learning_rate_schedule) return learning_rate();
  // The schedule's own node, evaluated on the step counter alone.
  GF_ASSIGN_OR_RETURN(Plan plan, session_->Compile({optimizers::kScheduledLearningRateName}, {}, Phase::kInfer));
  GF_ASSIGN_OR_RETURN(std::vector<Tensor> rate, plan.Run({}));
  return rate[0].data<float>()[0];
}

absl::Status Model::SetLearningRate(double rate) {
  auto serialized = Serialize();
  GF_RETURN_IF_ERROR(CheckCompiled());
  if (options_.learning_rate_schedule) return learning_rate().status();  // no variable to set
  GF_RETURN_IF_ERROR(CheckLearningRate(rate));
  return session_->variables().Set(optimizers::kLearningRateName,
                                   Tensor::Scalar(static_cast<float>(rate)));
}

absl::StatusOr<std::map<std::string, Tensor>> Model::GetWeights() const {
  // The layers hold the weights (shared with the store once compiled), so an
  // uncompiled model built from trained layers has weights too.
  auto serialized = Serialize();
  std::map<std::string, Tensor> weights;
  for (const LayerPtr& layer : layers_) {
    for (const auto& [local, value] : layer->weights()) {
      weights[absl::StrCat(layer->name(), "/", local)] = value.Clone();
    }
  }
  return weights;
}

absl::Status Model::SetWeights(const std::map<std::string, Tensor>& weights) {
  auto serialized = Serialize();
  if (session_ != nullptr) {
    for (const auto& [name, value] : weights) {
      if (!session_->variables().Has(name)) {
        return absl::NotFoundError(absl::StrCat("SetWeights: the model has no variable '", name, "'"));
      }
      GF_RETURN_IF_ERROR(session_->variables().Set(name, value));
    }
    return absl::OkStatus();
  }
  // Before Compile (e.g. a CloneModel copy): the layers hold the values until
  // Compile binds them, checking each against the variable it builds.
  for (const auto& [name, value] : weights) {
    const size_t slash = name.rfind('/');
    const std::string layer_name = slash == std::string::npos ? "" : name.substr(0, slash);
    auto it = std::find_if(layers_.begin(), layers_.end(),
                           [&](const LayerPtr& l) { return l->name() == layer_name && !l->name().empty(); });
    if (it == layers_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "SetWeights: the model has no layer named '", layer_name, "' for '", name,
          "' (unnamed layers get their names when the model is compiled)"));
    }
    GF_RETURN_IF_ERROR((*it)->SetWeights({{name.substr(slash + 1), value}}));
  }
  return absl::OkStatus();
}

const std::vector<Output>& Model::layer_variables(size_t i) const {
  static const std::vector<Output>* none = new std::vector<Output>;
  return i < layer_variables_.size() ? layer_variables_[i] : *none;
}

namespace {

int64_t CountVariables(const std::vector<std::vector<Output>>& layer_variables, bool trainable) {
  int64_t total = 0;
  for (const std::vector<Output>& variables : layer_variables) {
    for (const Output& v : variables) {
      if (v.node->attr_or<bool>("trainable", false) == trainable) total += v.shape().NumElements();
    }
  }
  return total;
}

}  // namespace

int64_t Model::CountParams(bool trainable) const {
  auto serialized = Serialize();
  if (compiled()) return CountVariables(layer_variables_, trainable);
  absl::StatusOr<Compiled> built = BuildAside();
  return built.ok() ? CountVariables(built->layer_variables, trainable) : 0;
}

absl::StatusOr<Model::Compiled> Model::BuildAside() const {
  GF_RETURN_IF_ERROR(CheckLayers());
  std::vector<Layer::BuildRecord> previous;
  for (const LayerPtr& layer : layers_) previous.push_back(layer->build_record());
  Compiled c;
  c.options = options_;  // its seed and dtype policy
  c.graph = std::make_unique<Graph>(options_.seed);
  absl::Status built = BuildForward(c);
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->RestoreBuild(std::move(previous[i]));
  GF_RETURN_IF_ERROR(built);
  return c;
}

absl::StatusOr<LayerPtr> Model::GetLayer(const std::string& name) const {
  auto serialized = Serialize();
  std::vector<std::string> names;
  for (const LayerPtr& layer : layers_) {
    if (layer->name() == name) return layer;
    names.push_back(layer->name());
  }
  return absl::NotFoundError(absl::StrCat("model '", name_, "' has no layer named ", QuoteUserText(name),
                                          "; its layers: ", absl::StrJoin(names, ", ")));
}

namespace {

struct SummaryRow {
  std::string label, shape, params, connected, compute_dtype;
};

// Keras's "Connected to" entries: per call, its inputs as "name[node][0]"
// (node: which call of that layer made the tensor), and per layer its calls'.
std::vector<std::string> ConnectedTo(const LayerGraph& lg, const std::vector<LayerPtr>& layers) {
  std::vector<std::string> source(lg.calls.size()), per_layer(layers.size());
  std::vector<int> calls_made(layers.size(), 0);
  for (size_t i = 0; i < lg.calls.size(); ++i) {
    const LayerGraph::Call& call = lg.calls[i];
    if (call.layer < 0) {
      source[i] = absl::StrCat(lg.input_names[i], "[0][0]");
      continue;
    }
    source[i] = absl::StrCat(layers[call.layer]->name(), "[", calls_made[call.layer]++, "][0]");
    std::vector<std::string> inputs;
    for (int j : call.inputs) inputs.push_back(source[j]);
    std::string& entry = per_layer[call.layer];
    absl::StrAppend(&entry, entry.empty() ? "" : ", ", absl::StrJoin(inputs, ", "));
  }
  return per_layer;
}

// `compute_dtype`: a column of each layer's compute dtype (a mixed policy).
std::string SummaryTable(const std::string& model_name, const std::vector<SummaryRow>& rows, bool connected,
                         bool compute_dtype, int64_t trainable, int64_t frozen) {
  // Keras's column widths, widened for labels or shapes that do not fit.
  int label_width = 27, shape_width = 25;
  for (const SummaryRow& row : rows) {
    label_width = std::max(label_width, static_cast<int>(row.label.size()) + 1);
    shape_width = std::max(shape_width, static_cast<int>(row.shape.size()) + 1);
  }
  const int params_end = label_width + shape_width + 13, dtype_end = params_end + (compute_dtype ? 12 : 0);
  const std::string rule(dtype_end + (connected ? 30 : 0), '_'), double_rule(rule.size(), '=');
  auto line = [&](const SummaryRow& row) {
    std::string s = absl::StrFormat(" %-*s %-*s %s", label_width, row.label, shape_width, row.shape, row.params);
    if (compute_dtype) s = absl::StrFormat("%-*s %s", params_end, s, row.compute_dtype);
    if (connected) s = absl::StrFormat("%-*s %s", dtype_end, s, row.connected);
    return s + "\n";
  };
  std::string s = absl::StrCat("Model: \"", model_name, "\"\n", rule, "\n",
                               line({"Layer (type)", "Output Shape", "Param #", "Connected to", "Compute"}), double_rule,
                               "\n");
  for (size_t i = 0; i < rows.size(); ++i) absl::StrAppend(&s, line(rows[i]), i + 1 < rows.size() ? "\n" : "");
  absl::StrAppend(&s, double_rule, "\nTotal params: ", WithThousands(trainable + frozen),
                  "\nTrainable params: ", WithThousands(trainable),
                  "\nNon-trainable params: ", WithThousands(frozen), "\n", rule, "\n");
  return s;
}

}  // namespace

std::string Model::Summary() const {
  auto serialized = Serialize();
  // Before Compile the layers are built aside, as Keras builds a layer once
  // its input shape is known: the same names, shapes and counts.
  absl::StatusOr<Compiled> aside = compiled() ? absl::StatusOr<Compiled>() : BuildAside();
  const Compiled unbuilt;  // no shapes, no counts
  const Compiled& built_aside = aside.ok() ? *aside : unbuilt;
  const auto& layer_variables = compiled() ? layer_variables_ : built_aside.layer_variables;
  const auto& layer_outputs = compiled() ? layer_outputs_ : built_aside.layer_outputs;
  std::vector<SummaryRow> rows;
  std::vector<std::string> connected;
  bool any_bf16 = false;  // then a column shows each layer's compute dtype
  if (!sequential_) {  // Keras lists a functional model's inputs as InputLayers
    const LayerGraph& lg = functional_graph_;
    connected = ConnectedTo(lg, layers_);
    for (size_t i = 0; i < lg.input_names.size(); ++i) {
      rows.push_back({absl::StrCat(lg.input_names[i], " (InputLayer)"), ShapeWithNone(lg.input_types[i].shape), "0", "-",
                      KerasDTypeName(lg.input_types[i].dtype)});
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerPtr& layer = layers_[i];
    int64_t params = 0;
    const bool built = i < layer_outputs.size() && layer_outputs[i].valid();
    if (built) {
      for (const Output& v : layer_variables[i]) params += v.shape().NumElements();
    }
    rows.push_back({absl::StrCat(layer->name(), " (", layer->type(), ")"),
                    built ? ShapeWithNone(layer_outputs[i].shape()) : "?", WithThousands(params),
                    connected.empty() ? "" : connected[i], KerasDTypeName(layer->compute_dtype())});
    any_bf16 |= layer->compute_dtype() == DType::kBF16;
  }
  return SummaryTable(name_, rows, !sequential_, any_bf16, CountVariables(layer_variables, true),
                      CountVariables(layer_variables, false));
}

}  // namespace gradflow::nn
