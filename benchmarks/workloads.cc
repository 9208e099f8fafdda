#include "benchmarks/workloads.h"

#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/fashion_mnist.h"
#include "core/random.h"
#include "nn/dropout_layers.h"
#include "nn/normalization.h"

namespace gradflow::benchmarks {
namespace {

constexpr int64_t kTrainSamples = 60000;  // Fashion-MNIST's training split
constexpr uint64_t kSeed = 42;

nn::DenseOptions Hidden() { return {.activation = "elu", .kernel_initializer = "he_normal"}; }
nn::DenseOptions Output() { return {.activation = "softmax", .kernel_initializer = "he_normal"}; }

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Rows [0, n) of t without a copy.
Tensor FirstRows(const Tensor& t, int64_t n) { return t.View(0, t.dtype(), t.shape().WithBatch(n)); }

// Rows [0, n) plus the remainder batch, so a timed epoch compiles nothing new.
absl::Status WarmUp(nn::Model& model, const TrainingData& data, int64_t batch,
                    int64_t samples, bool train) {
  const int64_t rest = samples % batch;
  const int64_t n = std::min(samples, batch * 2 + rest);
  Tensor x = FirstRows(data.x, n), y = FirstRows(data.y, n);
  if (train) {
    return model.Fit(x, y, {.epochs = 1, .batch_size = batch, .shuffle = false, .verbose = 0})
        .status();
  }
  auto p = model.Predict(x, batch);
  if (rest) p = model.Predict(FirstRows(x, rest), batch);
  return p.status();
}

}  // namespace

TrainingData LoadTrainingData() {
  auto real = LoadFashionMnist("train");
  if (real.ok()) return {real->images, real->labels, true};
  std::fprintf(stderr, "Fashion-MNIST not found (%s); using synthetic data of its shape\n",
               std::string(real.status().message()).c_str());
  TrainingData d{Tensor(DType::kF32, {kTrainSamples, 28, 28}), Tensor(DType::kI32, {kTrainSamples})};
  Rng rng(kSeed);
  for (float& v : d.x.flat<float>()) v = static_cast<float>(rng.Uniform());
  for (int32_t& v : d.y.flat<int32_t>()) v = static_cast<int32_t>(rng.Below(10));
  return d;
}

absl::StatusOr<nn::Model> BuildWorkload(const std::string& workload, const WorkloadOptions& options) {
  nn::Sequential model({nn::Flatten(Shape{28, 28})});
  optimizers::Optimizer optimizer = optimizers::SGD{.learning_rate = 0.01, .momentum = 0.9};
  if (workload == "W1") {
    model.Add(nn::Dense(300, Hidden()));
    model.Add(nn::Dense(100, Hidden()));
  } else if (workload == "W2") {
    for (int i = 0; i < 20; ++i) model.Add(nn::Dense(100, Hidden()));
    optimizer = optimizers::Adam{.learning_rate = 0.001};
  } else if (workload == "W3") {
    for (int64_t units : {300, 100}) {
      model.Add(nn::Dense(units, {.kernel_initializer = "he_normal", .use_bias = false}));
      model.Add(nn::BatchNormalization());
      model.Add(nn::Activation("elu"));
    }
  } else if (workload == "W4") {
    for (int64_t units : {300, 100}) {
      model.Add(nn::Dropout(0.2));
      model.Add(nn::Dense(units, Hidden()));
    }
    model.Add(nn::Dropout(0.2));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown workload '", workload, "'; use W1, W2, W3 or W4"));
  }
  model.Add(nn::Dense(10, Output()));
  absl::Status s = model.Compile({.loss = "sparse_categorical_crossentropy",
                                  .optimizer = optimizer,
                                  .seed = kSeed,
                                  .fuse_ops = options.fuse_ops,
                                  .autotune = options.autotune,
                                  .dtype_policy = options.dtype_policy,
                                  .data_parallel = options.data_parallel});
  if (!s.ok()) return s;
  return model;
}

absl::StatusOr<double> TimeTrainEpoch(nn::Model& model, const TrainingData& data,
                                      int64_t batch, int64_t samples) {
  absl::Status s = WarmUp(model, data, batch, samples, true);
  if (!s.ok()) return s;
  Tensor x = FirstRows(data.x, samples), y = FirstRows(data.y, samples);
  auto start = std::chrono::steady_clock::now();
  auto history = model.Fit(x, y, {.epochs = 1, .batch_size = batch, .verbose = 0});
  if (!history.ok()) return history.status();
  return Seconds(start);
}

absl::StatusOr<double> TimePredict(nn::Model& model, const TrainingData& data, int64_t batch,
                                   int64_t samples) {
  absl::Status s = WarmUp(model, data, batch, samples, false);
  if (!s.ok()) return s;
  Tensor x = FirstRows(data.x, samples);
  auto start = std::chrono::steady_clock::now();
  auto p = model.Predict(x, batch);
  if (!p.ok()) return p.status();
  return Seconds(start);
}

}  // namespace gradflow::benchmarks
