// The update phase of a training step for the chapter's MLP (784-300-100-10:
// 266,610 parameters): one fused multi-tensor update node vs one update node
// per variable, for Adam (and SGD with momentum for comparison).
//
// Gradients are fixed non-trainable variables, so each iteration runs only
// the update node(s) and the step increment: no forward or backward pass, no
// feed copies.
//
//   bazel run -c opt //benchmarks:update_benchmark
//   OMP_NUM_THREADS=1 bazel run -c opt //benchmarks:update_benchmark

#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "graph/session.h"
#include "ops/array.h"
#include "optimizers/optimizers.h"

namespace gradflow {
namespace {

// The chapter's MLP: kernels [784, 300], [300, 100], [100, 10] and their biases.
const std::vector<std::pair<std::string, Shape>> kMlpVariables = {
    {"dense/kernel", {784, 300}}, {"dense/bias", {300}},     {"dense_1/kernel", {300, 100}},
    {"dense_1/bias", {100}},      {"dense_2/kernel", {100, 10}}, {"dense_2/bias", {10}},
};

void RunUpdates(benchmark::State& state, const optimizers::Optimizer& optimizer, int slots) {
  const bool fused = state.range(0) != 0;
  Graph g(1);
  std::vector<std::pair<Output, Output>> grads_and_vars;
  int64_t parameters = 0;
  for (const auto& [name, shape] : kMlpVariables) {
    Output var = ops::Variable(g, name, shape, RandomNormal(0, 0.1));
    Output grad = ops::Variable(g, name + "/fixed_gradient", shape, RandomNormal(0, 0.01), /*trainable=*/false);
    grads_and_vars.push_back({grad, var});
    parameters += shape.NumElements();
  }
  Output train = optimizers::ApplyGradients(g, grads_and_vars, optimizer, {.fused_updates = fused});
  Session session(g);
  auto plan = session.Compile({}, {train}, Phase::kTrain);
  if (!g.ok() || !plan.ok()) {
    state.SkipWithError(std::string(g.ok() ? plan.status().message() : g.status().message()).c_str());
    return;
  }
  if (!plan->Run({}, nullptr).ok()) {  // kernels are created on the first run
    state.SkipWithError("first run failed");
    return;
  }
  for (auto _ : state) {
    absl::Status s = plan->Run({}, nullptr);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  int update_nodes = 0;
  for (const Node& node : g.nodes()) update_nodes += node.op_name().starts_with("Apply");
  state.counters["parameters"] = static_cast<double>(parameters);
  state.counters["update_nodes"] = update_nodes;
  // Read w, slots, g; write w, slots: f32 each.
  state.SetBytesProcessed(state.iterations() * parameters * 4 * (3 + 2 * slots));
  state.SetLabel(fused ? "fused (one node)" : "one node per variable");
}

void BM_AdamUpdate(benchmark::State& state) { RunUpdates(state, optimizers::Adam{}, 2); }
void BM_MomentumUpdate(benchmark::State& state) {
  RunUpdates(state, optimizers::SGD{.learning_rate = 0.01, .momentum = 0.9}, 1);
}

BENCHMARK(BM_AdamUpdate)->ArgName("fused")->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MomentumUpdate)->ArgName("fused")->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gradflow

BENCHMARK_MAIN();
