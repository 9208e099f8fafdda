#ifndef GRADFLOW_BENCHMARKS_WORKLOADS_H_
#define GRADFLOW_BENCHMARKS_WORKLOADS_H_

// The performance workloads of issue 7, built with nn::Sequential, shared by
// the Google Benchmark suite (training_benchmark.cc) and the command-line
// runner that benchmarks/compare.sh alternates with the PyTorch peers
// (gradflow_runner.cc). compare_pytorch.py and compare_libtorch.cc build the
// same models; keep the three in step.
//
//   W1 mlp:     784-300-100-10, ELU, He normal, SGD lr 0.01 momentum 0.9
//   W2 deep:    784, 20 hidden layers of 100, 10; ELU, He normal, Adam lr 0.001
//   W3 bn:      W1 with Dense(no bias) -> BatchNormalization -> ELU per hidden layer
//   W4 dropout: W1 with Dropout(0.2) before each Dense
//
// Every model ends in Dense(10, softmax) trained on sparse categorical
// cross-entropy (computed from the logits).

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "nn/model.h"

namespace gradflow::benchmarks {

// Fashion-MNIST's training images (f32 [60000, 28, 28] in [0, 1]) and labels
// (i32 [60000]); synthetic data of the same shape and range if Debian's
// dataset-fashion-mnist package is not installed.
struct TrainingData {
  Tensor x, y;
  bool real = false;
};
TrainingData LoadTrainingData();

// The CompileOptions a runner may change (nn/model.h says what each does).
struct WorkloadOptions {
  bool fuse_ops = true;
  std::string autotune = "first";
  std::string dtype_policy = "float32";
  std::optional<nn::DataParallel> data_parallel;
};

// "W1".."W4"; an unknown name is an InvalidArgument error. The model is
// compiled (seed 42), so its train/predict plans exist; the executables for a
// batch size are created on the first step at that size.
absl::StatusOr<nn::Model> BuildWorkload(const std::string& workload, const WorkloadOptions& options = {});

// Seconds for one epoch of Fit over the first `samples` rows of `data`
// (shuffled, verbose 0), after one warm-up epoch of two batches so kernel
// creation is not timed. `samples` must be a multiple of `batch`.
absl::StatusOr<double> TimeTrainEpoch(nn::Model& model, const TrainingData& data,
                                      int64_t batch, int64_t samples);
// Seconds for Predict over the first `samples` rows, same warm-up.
absl::StatusOr<double> TimePredict(nn::Model& model, const TrainingData& data, int64_t batch,
                                   int64_t samples);

}  // namespace gradflow::benchmarks

#endif  // GRADFLOW_BENCHMARKS_WORKLOADS_H_
