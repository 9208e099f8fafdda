// Soak test (issue 8): runs for a bounded time and prints the resident memory
// (RSS) as it goes, to show that nothing grows per step or per plan. Not part
// of the test suite; run it by hand or in a long CI job:
//
//   bazel run -c opt //examples:soak -- --graphs=2000 --steps=20000
//
// Phase 1 builds, compiles and runs --graphs graphs and models and destroys
// them again: a graph + session + train plan run at three batch sizes (three
// executables, each with its oneDNN primitives and arena), and a Sequential
// model compiled, fitted for one epoch with a partial last batch, evaluated
// and used to predict. Phase 2 trains the chapter's 784-300-100-10 MLP for
// --steps steps (synthetic data, batch 32) through Fit, with an Evaluate and a
// Predict at every report.
//
// RSS is measured after a warm-up (the first report), so one-time costs
// (oneDNN's kernel cache, the thread pool, glibc's arenas) are not counted
// as growth.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/random.h"
#include "examples/example_util.h"
#include "graph/session.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "ops/math.h"
#include "optimizers/optimizers.h"

using namespace gradflow;

namespace {

double RssMiB() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

Tensor RandomTensor(Shape shape, uint64_t seed) {
  Tensor t(DType::kF32, std::move(shape));
  Rng rng(seed);
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Normal());
  return t;
}

Tensor Labels(int64_t n, int classes) {
  Tensor t(DType::kI32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>((i * 7) % classes);
  return t;
}

bool Check(const absl::Status& s, const char* what) {
  if (!s.ok()) std::fprintf(stderr, "%s: %s\n", what, std::string(s.message()).c_str());
  return s.ok();
}

// One low-level graph: 64 -> 32 (relu) -> 10, Adam, trained at batch sizes 8, 16, 5.
bool OneGraph(uint64_t seed) {
  Graph g(seed);
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 64});
  Output y = ops::Placeholder(g, "y", DType::kI32, {-1});
  Scope h = g.Scope("hidden");
  Output hidden = ops::Relu(h, ops::Dense(h, x, ops::Variable(h, "kernel", {64, 32}, HeNormal()),
                                          ops::Variable(h, "bias", {32}, Zeros())));
  Scope o = g.Scope("out");
  Output logits = ops::Dense(o, hidden, ops::Variable(o, "kernel", {32, 10}, GlorotUniform()),
                             ops::Variable(o, "bias", {10}, Zeros()));
  Output loss = ops::SparseCategoricalCrossentropy(g, y, logits, /*from_logits=*/true);
  Output train = optimizers::Minimize(g, loss, optimizers::Adam{});
  if (!Check(g.status(), "graph")) return false;
  Session session(g);
  auto plan = session.Compile({loss}, {train}, Phase::kTrain);
  if (!Check(plan.status(), "compile")) return false;
  std::vector<Tensor> fetched;
  for (int64_t batch : {8, 16, 5}) {
    if (!Check(plan->Run({{x, RandomTensor({batch, 64}, seed + batch)}, {y, Labels(batch, 10)}}, &fetched),
               "run")) {
      return false;
    }
  }
  return true;
}

// One Sequential model: compiled, one epoch (2 full batches + 1 partial), evaluated, predicted.
bool OneModel(uint64_t seed, const Tensor& x, const Tensor& y) {
  nn::Sequential model({nn::Dense(32, {.activation = "relu", .input_shape = Shape{64}}),
                        nn::Dense(10, {.activation = "softmax"})});
  if (!Check(model.Compile({.optimizer = optimizers::SGD{.momentum = 0.9}, .metrics = {"accuracy"},
                            .seed = seed}),
             "model compile")) {
    return false;
  }
  if (!Check(model.Fit(x, y, {.batch_size = 32, .verbose = 0}).status(), "fit")) return false;
  if (!Check(model.Evaluate(x, y, 16).status(), "evaluate")) return false;
  return Check(model.Predict(x, 50).status(), "predict");
}

// Calls Evaluate and Predict and prints RSS every `every` training batches.
class RssReport : public nn::Callback {
 public:
  RssReport(int64_t every, int64_t steps_per_epoch, const Tensor& x, const Tensor& y)
      : every_(every), steps_per_epoch_(steps_per_epoch), x_(x), y_(y) {}
  absl::Status OnEpochBegin(nn::Model&, int epoch) override {
    epoch_ = epoch;
    return absl::OkStatus();
  }
  absl::Status OnTrainBatchEnd(nn::Model& model, int64_t batch, nn::Logs& logs) override {
    const int64_t step = epoch_ * steps_per_epoch_ + batch + 1;
    if (step % every_ != 0) return absl::OkStatus();
    GF_RETURN_IF_ERROR(model.Evaluate(x_, y_, 64).status());
    GF_RETURN_IF_ERROR(model.Predict(x_, 100).status());
    const double rss = RssMiB();
    if (first_ < 0) first_ = rss;
    last_ = rss;
    std::printf("  step %6lld: RSS %7.2f MiB (%+.2f MiB since step %lld), loss %.4f\n",
                static_cast<long long>(step), rss, rss - first_, static_cast<long long>(every_),
                logs.at("loss"));
    std::fflush(stdout);
    return absl::OkStatus();
  }
  double first() const { return first_; }
  double last() const { return last_; }

 private:
  int64_t every_, steps_per_epoch_;
  Tensor x_, y_;
  int epoch_ = 0;
  double first_ = -1, last_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"graphs", "2000"}, {"steps", "20000"}, {"report_every", "2000"}});
  const int graphs = flags.integer("graphs");
  const int64_t steps = flags.integer("steps");
  const int64_t every = flags.integer("report_every");
  std::printf("RSS at start: %.2f MiB\n", RssMiB());

  // Phase 1: graphs, sessions, plans, executables and models, created and destroyed.
  std::printf("phase 1: %d graphs and %d models built, compiled, run and destroyed\n", graphs, graphs);
  const Tensor mx = RandomTensor({70, 64}, 3);
  const Tensor my = Labels(70, 10);
  double phase1_first = -1, phase1_last = -1;
  const int phase1_every = graphs >= 10 ? graphs / 10 : 1;
  for (int i = 1; i <= graphs; ++i) {
    if (!OneGraph(1000 + i) || !OneModel(1000 + i, mx, my)) return 1;
    if (i % phase1_every == 0) {
      phase1_last = RssMiB();
      if (phase1_first < 0) phase1_first = phase1_last;
      std::printf("  %5d: RSS %7.2f MiB (%+.2f MiB since %d)\n", i, phase1_last, phase1_last - phase1_first,
                  phase1_every);
      std::fflush(stdout);
    }
  }

  // Phase 2: one long training run.
  constexpr int64_t kSamples = 3200, kBatch = 32;
  const int64_t steps_per_epoch = kSamples / kBatch;
  std::printf("phase 2: the 784-300-100-10 MLP, %lld training steps of batch %lld\n",
              static_cast<long long>(steps), static_cast<long long>(kBatch));
  const Tensor x = RandomTensor({kSamples, 28, 28}, 7);
  const Tensor y = Labels(kSamples, 10);
  nn::Sequential model({nn::Flatten(Shape{28, 28}),
                        nn::Dense(300, {.activation = "relu", .kernel_initializer = "he_normal"}),
                        nn::Dense(100, {.activation = "relu", .kernel_initializer = "he_normal"}),
                        nn::Dense(10, {.activation = "softmax"})});
  if (!Check(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.01}, .metrics = {"accuracy"}}),
             "compile")) {
    return 1;
  }
  auto report = std::make_shared<RssReport>(every, steps_per_epoch, x.Slice(0, 640).value(), y.Slice(0, 640).value());
  const int epochs = static_cast<int>((steps + steps_per_epoch - 1) / steps_per_epoch);
  if (!Check(model.Fit(x, y, {.epochs = epochs, .batch_size = kBatch, .verbose = 0, .callbacks = {report}})
                 .status(),
             "fit")) {
    return 1;
  }

  std::printf("RSS growth: phase 1 %+.2f MiB from graph %d to %d; phase 2 %+.2f MiB from step %lld to %lld\n",
              phase1_last - phase1_first, phase1_every, graphs, report->last() - report->first(),
              static_cast<long long>(every), static_cast<long long>(epochs * steps_per_epoch / every * every));
  return 0;
}
