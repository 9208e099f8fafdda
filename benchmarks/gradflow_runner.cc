// One measurement of one workload (benchmarks/workloads.h), for
// benchmarks/compare.sh, which runs it alternately with the oneDNN limit and
// the PyTorch peers. Prints one JSON line:
//   {"samples_per_s": ..., "seconds": [...], "arena_bytes": ..., "data_bytes": ...}
// The thread count is OMP_NUM_THREADS (oneDNN and our own loops share it).
//
//   bazel run -c opt //benchmarks:gradflow_runner -- --workload=W1 --mode=train --batch=32

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "benchmarks/runner_flags.h"
#include "benchmarks/workloads.h"
#include "graph/autotune.h"
#include "graph/profile.h"

using namespace gradflow;

int main(int argc, char** argv) {
  benchmarks::RunnerFlags flags = benchmarks::DefaultRunnerFlags();
  flags["print_plan"] = "0";  // 1: the ops one step runs, on stderr
  flags["profile"] = "0";     // 1: each node's share of the timed steps, on stderr (Plan::Profile)
  flags["fuse"] = "1";        // 0: plans without fusions (SessionOptions::fuse_ops)
  flags["autotune"] = "first";  // or fastest, inner_product, matmul (SessionOptions::autotune)
  flags["dtype_policy"] = "float32";  // or mixed_bfloat16 (CompileOptions::dtype_policy)
  if (!benchmarks::ParseRunnerFlags(argc, argv, flags)) return 2;
  const auto [workload, mode, batch, samples, repeats] = benchmarks::RunnerSettingsOf(flags);
  benchmarks::TrainingData data = benchmarks::LoadTrainingData();
  auto model = benchmarks::BuildWorkload(workload, {.fuse_ops = flags["fuse"] != "0",
                                                    .autotune = flags["autotune"],
                                                    .dtype_policy = flags["dtype_policy"]});
  if (!model.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  Plan* plan = mode == "train" ? model->train_plan() : model->predict_plan();
  plan->set_profiling(flags["profile"] == "1");
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    auto t = mode == "train" ? benchmarks::TimeTrainEpoch(*model, data, batch, samples)
                             : benchmarks::TimePredict(*model, data, batch, samples);
    if (!t.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(t.status().message()).c_str());
      return 1;
    }
    seconds.push_back(*t);
  }
  if (flags["profile"] == "1") std::fprintf(stderr, "%s", FormatProfile(plan->Profile()).c_str());
  if (flags["print_plan"] == "1") {  // the ops one step runs, in order, on stderr
    std::map<std::string, std::string> op_of;
    for (const Node& node : model->graph()->nodes()) op_of[node.name] = node.op_name();
    for (const std::string& name : plan->NodeNames()) {
      std::fprintf(stderr, "%s (%s)\n", name.c_str(), op_of[name].c_str());
    }
    for (const auto& [key, implementation] : AutotuneChoices()) {  // what "fastest" chose, per shape
      std::fprintf(stderr, "autotune: %s: %s\n", key.c_str(), implementation.c_str());
    }
    std::fprintf(stderr, "autotune: %zu choices in %.1f ms\n", AutotuneChoices().size(), 1e3 * AutotuneSeconds());
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  auto arena = plan->ArenaBytes(batch);
  std::printf(
      "{\"samples_per_s\": %.1f, \"seconds\": [%s], \"arena_bytes\": %zu, \"data_bytes\": %zu, "
      "\"threads\": %d, \"real_data\": %s}\n",
      samples / sorted[sorted.size() / 2], absl::StrJoin(seconds, ", ").c_str(),
      arena.ok() ? *arena : size_t{0}, data.x.num_bytes() + data.y.num_bytes(),
      omp_get_max_threads(), data.real ? "true" : "false");
  return 0;
}
