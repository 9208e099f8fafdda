#ifndef GRADFLOW_NN_MODEL_H_
#define GRADFLOW_NN_MODEL_H_

// Keras-style models: a graph of layer calls -> compile -> fit / evaluate /
// predict. nn::Sequential is the chain of layers; nn::Model::Create makes a
// functional model (nn/functional.h: several inputs and outputs, branches,
// shared layers). Compile builds one graph (forward, losses, metrics, the
// optimizer's training step) and three plans over it (train, evaluate,
// predict).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "graph/session.h"
#include "nn/callbacks.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/metrics.h"
#include "nn/progress_bar.h"
#include "ops/losses.h"
#include "optimizers/optimizers.h"

namespace gradflow::nn {

// What a model with several outputs is compiled with for one of them; the
// unset fields take CompileOptions' (Keras's loss={"main": ..., "aux": ...},
// loss_weights, metrics per output).
struct OutputCompileOptions {
  std::optional<std::string> loss;            // a Keras loss name
  std::optional<losses::Loss> loss_config;    // or a configured loss
  double loss_weight = 1;                     // its weight in the total loss (>= 0)
  std::optional<std::vector<Metric>> metrics;
};

// CompileOptions::data_parallel. Every rank compiles the same model and
// calls Fit with the same data and options, FitOptions::batch_size being
// the rows per rank and step: step s trains on the s-th batch of
// batch_size x ranks rows of the epoch's order (one seed: the same order on
// every rank), each rank on its part, so N ranks at batch B train as one
// process at batch N·B (to rounding). A last, shorter batch is split evenly
// over the ranks, padded by wrapping around. Gradients are averaged over the ranks before
// clipping and the updates; Fit starts by copying rank 0's weights and
// optimizer state to every rank; the losses and metrics Fit and Evaluate
// report are over every rank's samples; only rank 0 prints, and
// ModelCheckpoint and CSVLogger write on rank 0 only.
struct DataParallel {
  Communicator* communicator = nullptr;  // required; not owned: it outlives the model
  optimizers::DataParallelOptions buckets;
};

struct CompileOptions {
  // A Keras loss name (nn::LossNames(): "sparse_categorical_crossentropy",
  // "categorical_crossentropy", "binary_crossentropy", "mse", "huber", ...),
  // meaning that loss with Keras 3's defaults.
  std::string loss = "sparse_categorical_crossentropy";
  // A configured loss object (Keras's loss=keras.losses.Huber(delta=2)):
  // losses::Huber{.delta = 2}, losses::BinaryCrossentropy{.label_smoothing =
  // 0.1, .keras2_log_epsilon = true}, ... (ops/losses.h). When set it is the
  // loss: Compile replaces `loss` by its Keras name ("huber"). Its reduction
  // must give a scalar (sum_over_batch_size or sum).
  std::optional<losses::Loss> loss_config;
  // An optimizer object (optimizers/optimizers.h) or a Keras name ("adam",
  // "rmsprop", ...: Keras 3's defaults). gradflow's default is SGD (Keras's
  // compile() defaults to "rmsprop"; nn/README.md, Differences from Keras).
  optimizers::OptimizerSpec optimizer = optimizers::SGD{};
  // Keras names ("accuracy", "mae", "auc", nn::MetricNames()) or configured
  // metric objects (nn/metrics.h): {"accuracy", nn::metrics::AUC{.curve =
  // nn::metrics::AucCurve::kPR}}. Each streams over the batches of a pass.
  std::vector<Metric> metrics;
  // Empty, or one entry per model output, in the order of the outputs: that
  // output's loss, loss weight and metrics. The model's loss is the weighted
  // sum (Keras); Fit and Evaluate report it as "loss", each output's as
  // "<output layer>_loss", and each metric as "<output layer>_<metric>" (a
  // single-output model keeps "loss" and the metric names).
  std::vector<OutputCompileOptions> outputs;
  uint64_t seed = 42;                // initializers, shuffling
  // Gradient clipping (Keras's optimizer clipvalue / clipnorm /
  // global_clipnorm): optimizers::ClipByValue(v), ClipByNorm(n), ClipByGlobalNorm(n).
  std::optional<optimizers::GradientClipping> clip;
  // A learning-rate schedule over the training steps (optimizers/schedules.h),
  // replacing the optimizer's constant learning_rate as Keras's
  // `learning_rate=schedule` does. learning_rate()/SetLearningRate and the
  // learning-rate callbacks need a constant rate.
  std::optional<optimizers::Schedule> learning_rate_schedule;
  // Debugging aid (SessionOptions::check_numerics): every step fails at the
  // first node producing NaN or Inf, naming it, its op and its shape. Off by
  // default (it scans every f32 value a step produces). Not saved with the model.
  bool check_numerics = false;
  // Plan-time fusions (SessionOptions::fuse_ops), e.g. batch norm folded into
  // the preceding Dense for Predict/Evaluate. Off only to compare.
  bool fuse_ops = true;
  // Builds the loss with a per-sample weight feed, so that Fit and Evaluate
  // take sample_weight and class_weight (a static graph fixes its loss at
  // Compile; tf.keras 1's compile built that placeholder always). Each
  // output's loss becomes sum_i w_i l_i / batch (sum_over_batch_size) or
  // sum_i w_i l_i (sum), as Keras; a pass without weights weighs 1.
  bool sample_weights = false;
  // How Dense picks oneDNN's inner product or matmul for each shape
  // (SessionOptions::autotune): "first" (a fixed route per shape: the
  // matmul for f32 products of 16+ rows on 2+ threads, else the inner
  // product), "inner_product", "matmul", or
  // "fastest" (timed when a plan first runs a batch size; results may then
  // differ in the last bits between processes). Not saved.
  std::string autotune = "first";
  // Keras's dtype policy for every layer that does not set its own
  // (Layer::dtype_policy): "float32", or "mixed_bfloat16": Dense layers
  // multiply in bf16 with f32 accumulation while variables, optimizer slots,
  // updates, the loss, softmax, batch norm and metrics stay f32 (master
  // weights). Needs a CPU with bf16 (oneDNN ISA avx512_core_bf16 or AMX).
  std::string dtype_policy = "float32";
  // Data-parallel training over the ranks of a Communicator (an
  // MpiCommunicator under mpirun; docs/data_parallel.md). Not saved.
  std::optional<DataParallel> data_parallel;
};

// One tensor per model input (or output): `model.Fit(x, y)` for one, `{x_wide,
// x_deep}` for several, in the order of Model::Create's lists.
class TensorList : public std::vector<Tensor> {
 public:
  TensorList() = default;
  TensorList(Tensor t) { push_back(std::move(t)); }  // NOLINT: one tensor is a list of one
  TensorList(std::initializer_list<Tensor> tensors) : std::vector<Tensor>(tensors) {}
  TensorList(std::vector<Tensor> tensors) : std::vector<Tensor>(std::move(tensors)) {}  // NOLINT
};

struct CallOptions {
  // Keras's model(x, training=True): every dropout layer drops (a new mask
  // each call) and batch normalization uses the batch's statistics. Nothing
  // is updated: no optimizer step, no moving statistics.
  bool training = false;
};

struct ValidationData {
  TensorList x, y;
  std::optional<Tensor> sample_weight;  // f32 [rows], as FitOptions::sample_weight
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;  // Keras default
  std::optional<ValidationData> validation_data;
  double validation_split = 0;  // fraction taken from the end of x, y (Keras)
  bool shuffle = true;
  int verbose = 1;  // 0 silent, 1 progress bar, 2 one line per epoch
  std::vector<CallbackPtr> callbacks;
  // Keras's initial_epoch: the epoch to start at (resuming a run); Fit runs
  // epochs initial_epoch .. epochs - 1, and callbacks see those indices.
  int initial_epoch = 0;
  // Keras's validation_freq: validate after every validation_freq-th epoch
  // (epoch + 1 divisible by it); the other epochs have no val_ entries.
  int validation_freq = 1;
  // Fit stops with an Aborted error at the first NaN/Inf training loss
  // (Keras trains on unless TerminateOnNaN is given). true trains on, as
  // Keras does: the loss and History show the NaN, and the weights are
  // whatever the updates made of it.
  bool keep_training_through_nan = false;
  // Keras's sample_weight: f32 [rows of x], each sample's weight in the loss
  // (the metrics stay unweighted, as Keras 3's `metrics`); validation_split
  // splits it with x. Needs CompileOptions::sample_weights.
  std::optional<Tensor> sample_weight;
  // Keras's class_weight: a weight per class index, for one output; a
  // sample's weight is its class's (the label, the argmax of a one-hot row,
  // or the rounded binary label), 1 for a class not listed. Not with
  // sample_weight. Needs CompileOptions::sample_weights.
  std::map<int64_t, double> class_weight;
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 0;  // 1: a progress bar
  std::vector<CallbackPtr> callbacks;  // their test hooks
  std::optional<Tensor> sample_weight;  // as FitOptions::sample_weight
};

struct PredictOptions {
  int64_t batch_size = 32;
  std::vector<CallbackPtr> callbacks;  // their predict hooks
};

// Per-epoch metrics by name: "loss", "accuracy", "val_loss", ...
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<double> seconds_per_epoch;
};

// The model files gradflow reads and writes (nn/keras.h for the Keras ones).
enum class ModelFormat {
  kGradflow,  // one safetensors file (nn/saving.h)
  kKeras,     // Keras 3's .keras zip archive
  kKerasH5,   // Keras's legacy HDF5 .h5 (written in Keras 3's layout)
};

struct SaveOptions {
  // nullopt: from the path's extension (".keras", ".h5", else gradflow's).
  std::optional<ModelFormat> format;
  // Also save the optimizer's state: its slots ("dense/kernel/m"), the step
  // counter and the learning-rate variable (Keras's default, include_optimizer=True).
  bool include_optimizer = true;
};

struct LoadWeightsOptions {
  // false: the file's layers with weights are matched to the model's in order
  // (the architectures must agree). true: weights are matched by name
  // ("dense_1/kernel"); model weights the file lacks keep their values.
  bool by_name = false;
  // With by_name: a weight whose shape differs is skipped and reported
  // instead of failing the whole load (Keras's skip_mismatch).
  bool skip_mismatch = false;
};

// What LoadWeights did, weight by weight (model names).
struct LoadWeightsReport {
  struct Mismatch {
    std::string name;
    Shape model_shape, file_shape;
  };
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // model weights the file does not have (by_name)
  std::vector<Mismatch> mismatched;     // skipped because the shapes differ (skip_mismatch)
  std::vector<std::string> unused;      // file tensors that matched no model weight
  std::string ToString() const;
};

// A layer variable as a Compile would create it.
struct WeightSpec {
  std::string local;  // "kernel"
  TensorType type;
  bool trainable;     // whether the optimizer updates it (the layer and the weight say so)
};

// A model's layer graph: its inputs, then its layer calls, each after the
// calls it reads (nn::CallsInOrder), and which calls are its outputs.
struct LayerGraph {
  struct Call {
    int layer = -1;           // index into the model's layers(); -1: a model input
    std::vector<int> inputs;  // earlier calls
  };
  std::vector<Call> calls;               // the inputs first, in order
  std::vector<std::string> input_names;  // one per input
  std::vector<TensorType> input_types;   // batch dimension -1
  std::vector<int> outputs;              // calls
};

class Model {
 public:
  // Keras's keras.Model(inputs, outputs): the layer calls between `inputs`
  // (nn::Input tensors) and `outputs`. Errors (InvalidArgument) for a tensor
  // whose layer call failed, an output that needs an input not in `inputs`,
  // an input no output uses, a tensor given twice, and duplicate layer names.
  // Layers without a name get Keras's defaults ("dense", "dense_1", ...),
  // inputs without one "input_layer", "input_layer_1", ...
  static absl::StatusOr<Model> Create(const std::vector<KerasTensor>& inputs,
                                      const std::vector<KerasTensor>& outputs,
                                      std::string name = "functional");
  // A model from an explicit layer graph (what loaders and CloneModel
  // build): `graph` must list its inputs first and every call after the calls
  // it reads, use every layer and every input, and output only layer calls.
  static absl::StatusOr<Model> FromLayerGraph(std::string name, std::vector<LayerPtr> layers, LayerGraph graph);

  // Threads: the methods of one model may be called from several threads;
  // each call (Compile, Fit, Evaluate, Predict, weights, saving) runs alone,
  // the others wait (a callback may call back into the model from Fit's thread).

  absl::Status Compile(CompileOptions options);
  // x: one tensor per input, y one per output (a Tensor for one).
  absl::StatusOr<History> Fit(const TensorList& x, const TensorList& y, FitOptions options = {});
  // Loss and metrics over (x, y), by name.
  absl::StatusOr<Logs> Evaluate(const TensorList& x, const TensorList& y, EvaluateOptions options);
  absl::StatusOr<Logs> Evaluate(const TensorList& x, const TensorList& y, int64_t batch_size = 32, int verbose = 0) {
    return Evaluate(x, y, EvaluateOptions{.batch_size = batch_size, .verbose = verbose});
  }
  // The output of a single-output model; PredictOutputs gives every output.
  absl::StatusOr<Tensor> Predict(const TensorList& x, PredictOptions options);
  absl::StatusOr<Tensor> Predict(const TensorList& x, int64_t batch_size = 32) {
    return Predict(x, PredictOptions{.batch_size = batch_size});
  }
  absl::StatusOr<std::vector<Tensor>> PredictOutputs(const TensorList& x, PredictOptions options);
  absl::StatusOr<std::vector<Tensor>> PredictOutputs(const TensorList& x, int64_t batch_size = 32) {
    return PredictOutputs(x, PredictOptions{.batch_size = batch_size});
  }
  // Keras's model(x) / model(x, training=True): one pass over all of x as one
  // batch, every output. With training, the masks come from a random stream
  // of their own (never the training steps'), fresh for every call.
  absl::StatusOr<std::vector<Tensor>> Call(const TensorList& x, CallOptions options = {});
  // Keras's model(x) on symbolic tensors, a model used as a layer of another
  // (nn/functional.h): this model's layer calls applied to `inputs` (one per
  // input, of its input types), one tensor per output. The calls use this
  // model's layer objects, so a model created from them trains these very
  // weights (freeze them with this model's layers). Keras nests the model as
  // one layer; here its layers join the new model's, in Summary and in the
  // saved configuration. Errors travel in the tensors to Model::Create.
  std::vector<KerasTensor> operator()(const std::vector<KerasTensor>& inputs) const;
  KerasTensor operator()(const KerasTensor& x) const;  // one input, one output

  // The optimizer's learning-rate variable (callbacks and schedules change it).
  absl::StatusOr<double> learning_rate() const;
  absl::Status SetLearningRate(double rate);
  // The rate the next training step uses, readable under a step schedule
  // too (Keras's optimizer.learning_rate): the schedule at the step counter,
  // else learning_rate().
  absl::StatusOr<double> CurrentLearningRate() const;
  // Copies of the layers' variables by name ("dense/kernel"), and back.
  // Before Compile, GetWeights returns what the layers hold (e.g. layers
  // reused from a trained model) and SetWeights hands the values to the named
  // layers; Compile then checks each against the variable it builds.
  absl::StatusOr<std::map<std::string, Tensor>> GetWeights() const;
  absl::Status SetWeights(const std::map<std::string, Tensor>& weights);

  // Saving and loading (nn/saving.cc; nn::LoadModel and nn::CloneModel are in
  // nn/saving.h). Save writes one file, atomically (temporary file, fsync,
  // rename): by default (and for any path not ending in .keras or .h5) a
  // safetensors file (core/checkpoint.h) with every layer variable by name,
  // optionally the optimizer's state, and the configuration (layers and
  // compile options) as JSON under the metadata key "gradflow.model"
  // (nn/model_config.h); for ".keras" / ".h5" (or SaveOptions::format)
  // Keras 3's layouts (nn/keras.h).
  absl::Status Save(const std::string& path, SaveOptions options = {});
  // The layer variables only (plus the metadata "gradflow.layers": the
  // layers with weights, in order, for LoadWeights without by_name).
  absl::Status SaveWeights(const std::string& path);
  // Loads weights saved by Save or SaveWeights (or any safetensors file with
  // the same names) into this compiled model.
  absl::StatusOr<LoadWeightsReport> LoadWeights(const std::string& path, LoadWeightsOptions options = {});
  // Graphviz DOT of the compiled model's graph: layers, loss, gradients and
  // the optimizer's update nodes (Graph::ToDot).
  absl::StatusOr<std::string> ToDot() const;
  // Graphviz DOT of the layer graph, as Keras's plot_model(show_shapes=True):
  // a node per input and per layer call (name, class, output shape) and an
  // edge from each call's inputs. Also before Compile.
  absl::StatusOr<std::string> LayersToDot() const;
  // A callback sets this to end Fit after the current epoch (Keras's
  // model.stop_training) — or, set by a batch hook, after the current batch;
  // Fit clears it when it starts.
  bool stop_training = false;
  // Data parallel (CompileOptions::data_parallel): this process's rank and
  // the number of ranks; 0 and 1 otherwise.
  int rank() const;
  int num_ranks() const;

  // Per layer, the variables a Compile would create, in creation order
  // (Keras's weight order), without allocating any: the forward graph is
  // built aside and forgotten. Unnamed layers get their default names, as
  // Compile gives them. Loaders check a file's tensors against these before
  // reading them.
  absl::StatusOr<std::vector<std::vector<WeightSpec>>> WeightSpecs();

  // Keras-style table: layers, output shapes, parameter counts. Before
  // Compile the layers are built aside (nothing allocated), so the table is
  // the same once the first layer has its input shape.
  std::string Summary() const;
  int64_t CountParams(bool trainable) const;
  // Keras's model.get_layer(name): NotFound listing the layer names.
  absl::StatusOr<LayerPtr> GetLayer(const std::string& name) const;

  // Each layer once, in the order of its first call.
  const std::vector<LayerPtr>& layers() const { return layers_; }
  const std::string& name() const { return name_; }
  // Whether the model is a chain of its layers (nn::Sequential, or a loaded
  // Sequential), as opposed to a functional model.
  bool sequential() const { return sequential_; }
  // The calls between the inputs and the outputs (a Sequential: the chain).
  absl::StatusOr<LayerGraph> layer_graph() const;
  // The output type of each call of layer_graph() (built aside before Compile).
  absl::StatusOr<std::vector<TensorType>> CallTypes() const;
  bool compiled() const { return train_plan_.has_value(); }
  // The options of the last successful Compile (nullptr before).
  const CompileOptions* compile_options() const { return compiled() ? &options_ : nullptr; }
  // Layer i's variables and output in this model's graph (empty / invalid
  // before Compile).
  const std::vector<Output>& layer_variables(size_t i) const;
  Output layer_output(size_t i) const {
    return i < layer_outputs_.size() ? layer_outputs_[i] : Output{};
  }
  Graph* graph() { return graph_.get(); }
  Session* session() { return session_.get(); }
  // The placeholders (a Sequential's: "x" and "y"; a functional model's
  // inputs are named by their input names, its targets "y" for one output,
  // "y_<output layer>" for several) and the outputs, in the model's order.
  const std::vector<Output>& inputs() const { return inputs_; }
  const std::vector<Output>& outputs() const { return outputs_; }
  const std::vector<Output>& targets() const { return targets_; }
  Output input() const { return inputs_.empty() ? Output{} : inputs_[0]; }
  Output output() const { return outputs_.empty() ? Output{} : outputs_[0]; }
  Output target() const { return targets_.empty() ? Output{} : targets_[0]; }
  Output loss() const { return loss_; }  // the training loss (with penalties)
  // The compiled plans (null before Compile): benchmarks read their arena sizes.
  Plan* train_plan() { return train_plan_ ? &*train_plan_ : nullptr; }
  Plan* predict_plan() { return predict_plan_ ? &*predict_plan_ : nullptr; }

 private:
  // Everything one Compile makes; the model takes it over only when all of it
  // succeeded, so a failed Compile keeps the previous compiled state.
  struct Compiled {
    CompileOptions options;
    std::unique_ptr<Graph> graph;
    std::unique_ptr<Session> session;
    std::vector<Output> inputs, targets, outputs;
    std::vector<Output> output_logits;  // per output: its softmax's input, or invalid
    std::vector<Output> output_losses;  // per output (fetched when there are several)
    std::vector<Node*> updates;         // every call's (batch norm's moving statistics)
    std::vector<Output> call_outputs;   // per call of the layer graph
    Output loss, train;
    Output sample_weight;
    std::vector<CompiledMetric> metrics;
    std::optional<Plan> train_plan, eval_plan, predict_plan;
    std::vector<std::vector<Output>> layer_variables;
    std::vector<Output> layer_outputs;
    struct LayerWeight {
      size_t layer;
      std::string local;
      Tensor value;  // the store's tensor, shared with the layer on commit
    };
    std::vector<LayerWeight> layer_weights;
    int64_t macs_per_sample = 0;
  };
  Model(std::string name, bool sequential) : name_(std::move(name)), sequential_(sequential) {}
  // Compile's steps, in order.
  absl::Status CheckLayers() const;
  absl::Status AssignDefaultNames();
  void NameLayersIfPossible();
  absl::StatusOr<LayerGraph> SequentialGraph() const;
  // CompileOptions for output k (options.outputs[k] over the model's).
  absl::StatusOr<OutputCompileOptions> OutputOptions(const CompileOptions& options, size_t k) const;
  // The forward pass built into a graph of its own and forgotten (the
  // layers keep what their last real build left): shapes and variables
  // without a Compile.
  absl::StatusOr<Compiled> BuildAside() const;
  absl::StatusOr<Compiled> BuildCompiled(CompileOptions options) const;
  // Sets each layer's compute dtype from its own policy or `model_policy`;
  // true when some layer computes in bf16.
  absl::StatusOr<bool> SetComputeDTypes(const std::string& model_policy) const;
  absl::Status BuildForward(Compiled& c) const;
  absl::Status BuildLossAndMetrics(Compiled& c) const;
  // Output k's loss node against targets y (weighted with sample_weights).
  absl::StatusOr<Output> OutputLoss(Compiled& c, size_t k, losses::Loss config, Output y) const;
  absl::Status BuildTrainStep(Compiled& c) const;
  absl::Status CheckHeldWeight(const Layer& layer, const Output& v, const Tensor* held) const;
  absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> HeldWeightBindings(const Compiled& c) const;
  absl::Status CompilePlans(Compiled& c, const std::vector<std::pair<std::string, Tensor>>& bindings) const;
  absl::Status CollectLayerWeights(Compiled& c) const;
  void Commit(Compiled c);

  // Fit's steps.
  struct FitData {
    TensorList x, y;  // the training samples
    Tensor sample_weight;  // f32 [rows] when compiled with sample_weights, else empty
    std::optional<ValidationData> validation;
  };
  absl::Status CheckFeeds(const char* what, const TensorList& x, const TensorList* y) const;
  absl::StatusOr<FitData> SplitFitData(const TensorList& x_all, const TensorList& y_all,
                                       const FitOptions& options) const;
  absl::Status ResumeStepStream();
  void NextEpochOrder(bool shuffle, std::vector<int64_t>& order);
  absl::Status FitEpoch(const FitData& data, const FitOptions& options, std::vector<int64_t>& order,
                        History& history);
  // The per-sample weights a pass over `rows` samples feeds (empty when the
  // model was compiled without sample_weights): `given`, or 1 each; errors
  // name `what`.
  absl::StatusOr<Tensor> SampleWeights(const char* what, const std::optional<Tensor>& given, int64_t rows) const;
  absl::StatusOr<Tensor> FitSampleWeights(const FitOptions& options, const TensorList& y) const;
  absl::StatusOr<Tensor> ClassWeights(const std::map<int64_t, double>& class_weight, const Tensor& y) const;
  // Data parallel: adds rank 0..size-1's sums into every rank's (a pass's
  // losses and metric statistics, and its sample count).
  absl::Status SumOverRanks(std::vector<double>& losses, std::vector<MetricSums>& metrics, int64_t& seen) const;
  // What Fit and Evaluate report, in Keras's order, then what callbacks added.
  NamedValues InReportedOrder(Logs logs) const;

  absl::Status CheckCompiled() const;
  // Holds off the model's other callers until the returned lock goes.
  std::unique_lock<std::recursive_mutex> Serialize() const { return std::unique_lock(*calls_); }
  // Fit's error for a NaN/Inf training loss at batch `step` of `steps` of epoch_.
  absl::Status DivergedError(float loss, int64_t step, int64_t steps) const;
  // A pass's feeds (inputs, targets, the sample weights) and the tensor each
  // gathers its rows from.
  std::vector<Feed> PassFeeds(const TensorList& x, const TensorList& y, const Tensor& sample_weight,
                              std::vector<const Tensor*>& sources) const;
  // One pass of `plan` (the train plan: the train hooks, else the test
  // hooks) over the batches, in `order` or as given.
  absl::StatusOr<Logs> RunEpoch(Plan& plan, const TensorList& x, const TensorList& y, const Tensor& sample_weight,
                                int64_t batch_size, const std::vector<int64_t>* order, ProgressBar* bar,
                                const std::vector<CallbackPtr>& callbacks);
  // Evaluate's pass, and Fit's validation: the test hooks around RunEpoch.
  absl::StatusOr<Logs> RunTest(const TensorList& x, const TensorList& y, const Tensor& sample_weight,
                               int64_t batch_size, ProgressBar* bar, const std::vector<CallbackPtr>& callbacks);

  // The names of what Fit and Evaluate report, in Keras's order: "loss",
  // each output's loss (several outputs), the metrics.
  std::vector<std::string> ReportedNames() const;
  size_t outputs_count() const { return sequential_ ? 1 : functional_graph_.outputs.size(); }
  // The name of the layer whose call is output k.
  std::string OutputName(size_t k) const;

  std::string name_;
  bool sequential_ = true;
  std::vector<LayerPtr> layers_;
  LayerGraph functional_graph_;  // a functional model's (Sequential's comes from layers_)
  CompileOptions options_;
  std::unique_ptr<Graph> graph_;
  std::unique_ptr<Session> session_;
  std::vector<Output> inputs_, targets_, outputs_;
  Output loss_, train_;
  Output sample_weight_;  // the f32 [batch] feed, with CompileOptions::sample_weights
  std::vector<CompiledMetric> metrics_;  // their statistics are fetched after the loss
  std::optional<Plan> train_plan_, eval_plan_, predict_plan_;
  std::optional<Plan> call_plan_;  // Call(training): made at the first such call
  int64_t macs_per_sample_ = 0;  // multiply-adds of the Dense layers' forward pass
  int epoch_ = 0;  // the epoch Fit is running (0-based), for its messages
  bool keep_training_through_nan_ = false;  // the running Fit's FitOptions::keep_training_through_nan
  // Across Fit calls each epoch gets a new order; Save records the count
  // ("gradflow.fit") so a loaded model continues the sequence.
  uint64_t epochs_shuffled_ = 0;
  // Per layer, as built into this model's graph (a shared layer's own
  // variables()/output() point into the graph compiled last).
  std::vector<std::vector<Output>> layer_variables_;
  std::vector<Output> layer_outputs_;
  std::vector<Output> call_outputs_;
  // Set by LoadModel: Compile must find every layer weight in the layers
  // (i.e. in the file) instead of initializing it, so a hostile configuration
  // cannot make it allocate what the file does not hold.
  bool require_held_weights_ = false;
  std::unique_ptr<std::recursive_mutex> calls_ = std::make_unique<std::recursive_mutex>();
  friend class ModelFile;
  friend class Sequential;
};

// Keras's Sequential: each layer's output is the next one's input; the
// first layer needs an input shape (e.g. nn::Flatten({28, 28})).
class Sequential : public Model {
 public:
  explicit Sequential(std::vector<LayerPtr> layers = {}, std::string name = "sequential");
  // Appends a layer. After Compile this marks the model uncompiled (as
  // Keras does): Fit, Predict and Save ask for a new Compile, which builds
  // the new layer and keeps the others' weights. (A loaded Sequential is a
  // Model: nn::Sequential(loaded->layers()) continues it, sharing its layers.)
  void Add(LayerPtr layer);
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MODEL_H_
