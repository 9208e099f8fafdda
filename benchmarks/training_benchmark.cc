// Training-step and inference throughput of the issue-7 workloads
// (benchmarks/workloads.h) in samples/s (items_per_second), plus the time to
// build and compile a 100-layer MLP. One iteration = one epoch of Fit (or one
// Predict) over the first 16,384 Fashion-MNIST training images. The last
// argument is the thread count (oneDNN and our OpenMP loops share it).
//
//   bazel run -c opt //benchmarks:training_benchmark
//   bazel run -c opt //benchmarks:training_benchmark -- --benchmark_filter=W1
//
// benchmarks/compare.sh runs the same workloads against the PyTorch peers.

#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <string>

#include "benchmarks/workloads.h"
#include "graph/session.h"

namespace gradflow::benchmarks {
namespace {

constexpr int64_t kSamplesPerIteration = 16384;

const TrainingData& Data() {
  static const TrainingData* data = new TrainingData(LoadTrainingData());
  return *data;
}

void Run(benchmark::State& state, const std::string& workload, bool train) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto model = BuildWorkload(workload);
  if (!model.ok()) {
    state.SkipWithError(std::string(model.status().message()).c_str());
    return;
  }
  const int64_t samples = batch == 1 ? 2048 : kSamplesPerIteration;
  for (auto _ : state) {
    auto seconds = train ? TimeTrainEpoch(*model, Data(), batch, samples)
                         : TimePredict(*model, Data(), batch, samples);
    if (!seconds.ok()) {
      state.SkipWithError(std::string(seconds.status().message()).c_str());
      break;
    }
    state.SetIterationTime(*seconds);
  }
  Plan* plan = train ? model->train_plan() : model->predict_plan();
  auto arena = plan->ArenaBytes(batch);
  if (arena.ok()) state.counters["arena_KiB"] = static_cast<double>(*arena) / 1024;
  state.SetItemsProcessed(state.iterations() * samples);
  omp_set_num_threads(previous_threads);
}

void BM_TrainW1(benchmark::State& s) { Run(s, "W1", true); }
void BM_TrainW2(benchmark::State& s) { Run(s, "W2", true); }
void BM_TrainW3(benchmark::State& s) { Run(s, "W3", true); }
void BM_TrainW4(benchmark::State& s) { Run(s, "W4", true); }
void BM_PredictW1(benchmark::State& s) { Run(s, "W1", false); }

#define GF_WORKLOAD(name) \
  BENCHMARK(name)->ArgNames({"batch", "threads"})->UseManualTime()->Unit(benchmark::kMillisecond)
GF_WORKLOAD(BM_TrainW1)->Args({32, 2})->Args({256, 2})->Args({1024, 2})->Args({32, 1})->Args({256, 1});
GF_WORKLOAD(BM_TrainW2)->Args({32, 2})->Args({256, 2})->Args({32, 1});
GF_WORKLOAD(BM_TrainW3)->Args({32, 2})->Args({256, 2});
GF_WORKLOAD(BM_TrainW4)->Args({32, 2});
GF_WORKLOAD(BM_PredictW1)->Args({1, 2})->Args({256, 2});

// Graph build (layers, loss, autodiff, optimizer) + Session::Compile of the
// train/evaluate/predict plans for a 100-layer MLP of 100 units; with
// first_step = 1 also the first training step, which creates the kernels and
// oneDNN primitives. Target (issue 7): build + compile under 50 ms.
void BM_Build100LayerMlp(benchmark::State& state) {
  const bool first_step = state.range(0) != 0;
  Tensor x(DType::kF32, {32, 100}), y(DType::kI32, {32});
  for (auto _ : state) {
    nn::Sequential model;
    model.Add(nn::Dense(100, {.activation = "elu", .kernel_initializer = "he_normal",
                              .input_shape = Shape{100}}));
    for (int i = 1; i < 99; ++i) model.Add(nn::Dense(100, {.activation = "elu", .kernel_initializer = "he_normal"}));
    model.Add(nn::Dense(10, {.activation = "softmax"}));
    absl::Status s = model.Compile({.optimizer = optimizers::Adam{}});
    if (s.ok() && first_step) s = model.Fit(x, y, {.batch_size = 32, .verbose = 0}).status();
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
    state.counters["nodes"] = static_cast<double>(model.graph()->nodes().size());
  }
}
BENCHMARK(BM_Build100LayerMlp)->ArgName("first_step")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gradflow::benchmarks

BENCHMARK_MAIN();
