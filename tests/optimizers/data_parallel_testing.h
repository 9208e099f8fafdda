// A small classifier trained for a few steps, with or without data
// parallelism, for tests/optimizers/data_parallel_test.cc (one process) and
// tests/mpi/ (several): rank r of n trains on rows [r·B, (r+1)·B) of every
// global batch of n·B rows, so n ranks at batch B see exactly the samples
// one process sees at batch n·B.
#ifndef GRADFLOW_TESTS_OPTIMIZERS_DATA_PARALLEL_TESTING_H_
#define GRADFLOW_TESTS_OPTIMIZERS_DATA_PARALLEL_TESTING_H_

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/communicator.h"
#include "core/random.h"
#include "core/status.h"
#include "graph/session.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "optimizers/optimizers.h"

namespace gradflow::testing {

inline constexpr int64_t kFeatures = 12, kHidden = 16, kClasses = 3;

struct TrainSetup {
  optimizers::Optimizer optimizer = optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9};
  std::optional<optimizers::GradientClipping> clip;
  std::optional<optimizers::DataParallelOptions> data_parallel;
  Communicator* communicator = nullptr;  // with data_parallel
  int64_t global_batch = 32;             // rows per step over all ranks
  int steps = 50;
  int64_t hidden = kHidden;              // another value on one rank: a mismatched graph
};

// Every variable after training, by name.
using Weights = std::map<std::string, std::vector<float>>;

// Row i: features drawn from a fixed stream, label from a fixed rule.
inline void FillRows(int64_t first, int64_t rows, float* x, int32_t* y) {
  for (int64_t i = 0; i < rows; ++i) {
    Rng rng(1000 + first + i);
    double score = 0;
    for (int64_t f = 0; f < kFeatures; ++f) {
      x[i * kFeatures + f] = static_cast<float>(rng.Normal());
      score += (f % 3 == 0 ? 1.0 : -0.5) * x[i * kFeatures + f];
    }
    y[i] = score > 0.5 ? 2 : (score < -0.5 ? 0 : 1);
  }
}

// The session's f32 variables (weights, slots, moving statistics).
inline Weights VariablesOf(Session& session) {
  Weights weights;
  for (const std::string& name : session.variables().Names()) {
    const Tensor t = *session.variables().Get(name);
    if (t.dtype() == DType::kF32) weights[name] = t.ToVector<float>();
  }
  return weights;
}

inline absl::StatusOr<Weights> TrainClassifier(const TrainSetup& setup) {
  const int rank = setup.communicator ? setup.communicator->rank() : 0;
  const int ranks = setup.communicator ? setup.communicator->size() : 1;
  const int64_t batch = setup.global_batch / ranks;
  Graph g(7);
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, kFeatures});
  Output labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  Output h = x;
  const std::vector<int64_t> units = {setup.hidden, kHidden, kClasses};
  for (size_t l = 0; l < units.size(); ++l) {
    Scope s = g.Scope("dense_" + std::to_string(l));
    Output w = ops::Variable(s, "kernel", {h.shape()[1], units[l]}, GlorotUniform());
    Output b = ops::Variable(s, "bias", {units[l]}, Zeros());
    h = ops::Dense(s, h, w, b, l + 1 < units.size() ? ops::FusedActivation{"elu"} : ops::FusedActivation{});
  }
  Output loss = ops::SparseCategoricalCrossentropy(g, labels, h, /*from_logits=*/true);
  Output train = optimizers::Minimize(
      g, loss, setup.optimizer, {.clip = setup.clip, .data_parallel = setup.data_parallel});
  GF_RETURN_IF_ERROR(g.status());
  Session session(g, {.communicator = setup.communicator});
  if (setup.data_parallel) GF_RETURN_IF_ERROR(session.BroadcastVariables(*setup.communicator));
  GF_ASSIGN_OR_RETURN(Plan step, session.Compile({loss}, {train}, Phase::kTrain));
  Tensor xs(DType::kF32, {batch, kFeatures});
  Tensor ys(DType::kI32, {batch});
  for (int s = 0; s < setup.steps; ++s) {
    FillRows(s * setup.global_batch + rank * batch, batch, xs.data<float>(), ys.data<int32_t>());
    GF_RETURN_IF_ERROR(step.Run({{x, xs}, {labels, ys}}).status());
  }
  return VariablesOf(session);
}

}  // namespace gradflow::testing

#endif  // GRADFLOW_TESTS_OPTIMIZERS_DATA_PARALLEL_TESTING_H_
