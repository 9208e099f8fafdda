#ifndef GRADFLOW_NN_MODEL_H_
#define GRADFLOW_NN_MODEL_H_

// A Keras-style Sequential model: layers -> compile -> fit / evaluate /
// predict. Compile builds one graph (forward, loss, metrics, the optimizer's
// training step) and three plans over it (train, evaluate, predict).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "graph/session.h"
#include "nn/callbacks.h"
#include "nn/layers.h"
#include "nn/progress_bar.h"
#include "optimizers/optimizers.h"

namespace gradflow::nn {

struct CompileOptions {
  // "sparse_categorical_crossentropy", "categorical_crossentropy",
  // "binary_crossentropy" or "mse".
  std::string loss = "sparse_categorical_crossentropy";
  optimizers::Optimizer optimizer = optimizers::SGD{};
  std::vector<std::string> metrics;  // "accuracy"
  uint64_t seed = 42;                // initializers, shuffling
  // Gradient clipping (Keras's optimizer clipvalue / clipnorm /
  // global_clipnorm): optimizers::ClipByValue(v), ClipByNorm(n), ClipByGlobalNorm(n).
  std::optional<optimizers::GradientClipping> clip;
  // A learning-rate schedule over the training steps (optimizers/schedules.h),
  // replacing the optimizer's constant learning_rate as Keras's
  // `learning_rate=schedule` does. learning_rate()/SetLearningRate and the
  // learning-rate callbacks need a constant rate.
  std::optional<optimizers::Schedule> learning_rate_schedule;
};

struct ValidationData {
  Tensor x, y;
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;  // Keras default
  std::optional<ValidationData> validation_data;
  double validation_split = 0;  // fraction taken from the end of x, y (Keras)
  bool shuffle = true;
  int verbose = 1;  // 0 silent, 1 progress bar, 2 one line per epoch
  std::vector<CallbackPtr> callbacks;
};

// Per-epoch metrics by name: "loss", "accuracy", "val_loss", ...
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<double> seconds_per_epoch;
};

class Sequential {
 public:
  explicit Sequential(std::vector<LayerPtr> layers = {}, std::string name = "sequential");
  void Add(LayerPtr layer);

  absl::Status Compile(CompileOptions options);
  absl::StatusOr<History> Fit(const Tensor& x, const Tensor& y, FitOptions options = {});
  // Loss and metrics over (x, y), by name.
  absl::StatusOr<std::map<std::string, double>> Evaluate(const Tensor& x, const Tensor& y,
                                                         int64_t batch_size = 32, int verbose = 0);
  absl::StatusOr<Tensor> Predict(const Tensor& x, int64_t batch_size = 32);

  // The optimizer's learning-rate variable (callbacks and schedules change it).
  absl::StatusOr<double> learning_rate() const;
  absl::Status SetLearningRate(double rate);
  // Copies of the layers' variables by name ("dense/kernel"), and back.
  absl::StatusOr<std::map<std::string, Tensor>> GetWeights() const;
  absl::Status SetWeights(const std::map<std::string, Tensor>& weights);
  // A callback sets this to end Fit after the current epoch (Keras's
  // model.stop_training); Fit clears it when it starts.
  bool stop_training = false;

  // Keras-style table: layers, output shapes, parameter counts.
  std::string Summary() const;
  int64_t CountParams(bool trainable) const;

  const std::vector<LayerPtr>& layers() const { return layers_; }
  Graph* graph() { return graph_.get(); }
  Session* session() { return session_.get(); }
  Output input() const { return x_; }
  Output output() const { return output_; }
  Output target() const { return y_; }  // the label placeholder "y"
  Output loss() const { return loss_; }  // the training loss (with penalties)
  // The compiled plans (null before Compile): benchmarks read their arena sizes.
  Plan* train_plan() { return train_plan_ ? &*train_plan_ : nullptr; }
  Plan* predict_plan() { return predict_plan_ ? &*predict_plan_ : nullptr; }

 private:
  absl::Status CheckCompiled() const;
  absl::StatusOr<std::map<std::string, double>> RunEpoch(Plan& plan, const Tensor& x,
                                                         const Tensor& y, int64_t batch_size,
                                                         const std::vector<int64_t>* order,
                                                         ProgressBar* bar, const std::string& prefix,
                                                         const std::vector<CallbackPtr>* callbacks);

  std::string name_;
  std::vector<LayerPtr> layers_;
  CompileOptions options_;
  std::unique_ptr<Graph> graph_;
  std::unique_ptr<Session> session_;
  Output x_, y_, output_, loss_, train_;
  std::vector<std::pair<std::string, Output>> metrics_;  // fetched after the loss
  std::optional<Plan> train_plan_, eval_plan_, predict_plan_;
  uint64_t epochs_shuffled_ = 0;  // across Fit calls: each epoch gets a new order
  std::map<std::string, Tensor> carried_weights_;  // layer weights kept across Compile
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_MODEL_H_
