// Data-parallel throughput of a workload (benchmarks/workloads.h) under
// mpirun: one training epoch over --samples rows shared by the ranks, each
// rank at --batch rows per step, timed like gradflow_runner. Prints on rank
// 0 one JSON line: the global samples/s (median of --repeats), the ranks,
// and per step the seconds spent waiting for the all-reduce (what did not
// overlap computation) and its share of the step.
//
//   bazel build -c opt --config=mpi //benchmarks:data_parallel_runner
//   mpirun -np 1 -x OMP_NUM_THREADS=1 bazel-bin/benchmarks/data_parallel_runner --workload=W1 --batch=256
//   mpirun -np 2 -x OMP_NUM_THREADS=1 bazel-bin/benchmarks/data_parallel_runner --workload=W1 --batch=256
//
// With one rank the model is compiled without the data-parallel rewrite:
// the plain one-process step that the ranks are measured against.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmarks/runner_flags.h"
#include "benchmarks/workloads.h"
#include "core/mpi_communicator.h"

using namespace gradflow;

int main(int argc, char** argv) {
  auto world = MpiCommunicator::Create(&argc, &argv);
  if (!world.ok()) return 1;
  MpiCommunicator& comm = **world;
  benchmarks::RunnerFlags flags = benchmarks::DefaultRunnerFlags();
  flags["samples"] = "16384";
  flags["repeats"] = "3";
  flags["bucket_kib"] = "25600";     // DataParallelOptions::bucket_bytes / 1024
  flags["first_bucket_kib"] = "1024";  // first_bucket_bytes / 1024
  if (!benchmarks::ParseRunnerFlags(argc, argv, flags)) return 2;
  const auto [workload, mode, batch, samples, repeats] = benchmarks::RunnerSettingsOf(flags);
  benchmarks::WorkloadOptions options;
  if (comm.size() > 1) {
    options.data_parallel = nn::DataParallel{
        .communicator = &comm,
        .buckets = {.bucket_bytes = 1024 * std::atoll(flags["bucket_kib"].c_str()),
                    .first_bucket_bytes = 1024 * std::atoll(flags["first_bucket_kib"].c_str())}};
  }
  benchmarks::TrainingData data = benchmarks::LoadTrainingData();
  auto model = benchmarks::BuildWorkload(workload, options);
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  };
  if (!model.ok()) return fail(model.status());
  if (repeats < 1) return fail(absl::InvalidArgumentError("--repeats must be at least 1"));
  auto x = data.x.Slice(0, samples), y = data.y.Slice(0, samples);
  if (!x.ok() || !y.ok()) return fail(x.ok() ? y.status() : x.status());
  std::vector<double> seconds, wait_seconds;
  for (int r = -1; r < repeats; ++r) {  // run -1 is untimed: kernels, primitives, the first all-reduces
    comm.ResetStats();
    const auto start = std::chrono::steady_clock::now();
    auto history = model->Fit(*x, *y, {.epochs = 1, .batch_size = batch, .verbose = 0});
    if (!history.ok()) return fail(history.status());
    if (r < 0) continue;
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    wait_seconds.push_back(comm.stats().wait_seconds);
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const size_t at = std::find(seconds.begin(), seconds.end(), median) - seconds.begin();
  const int64_t steps = (samples / comm.size() + batch - 1) / batch;
  if (comm.rank() == 0) {
    std::printf("{\"samples_per_s\": %.1f, \"ranks\": %d, \"threads_per_rank\": %d, \"batch_per_rank\": %lld, "
                "\"allreduce_wait_ms_per_step\": %.4f, \"allreduce_share\": %.4f}\n",
                samples / median, comm.size(), omp_get_max_threads(), static_cast<long long>(batch),
                1e3 * wait_seconds[at] / steps, wait_seconds[at] / median);
  }
  return 0;
}
