// Tests of optimizers/minimize.cc and apply_gradients.cc: the DOT export of a
// minimized graph shows the schedule and update nodes; fused (multi-tensor)
// updates equal per-variable updates bit for bit for every optimizer; a
// schedule's rate drives the updates; save -> load -> continue training is
// bit-identical to uninterrupted training (through core/checkpoint); errors
// of ApplyGradients.

#include <omp.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/random.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "optimizers/optimizers.h"
#include "optimizers/schedules.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// A small MLP whose hidden kernel (300 x 170 = 51,000 elements) spans several
// update pieces and takes the multi-threaded path, plus small variables.
constexpr int64_t kInputs = 300, kHidden = 170, kClasses = 10, kBatch = 16;

struct Mlp {
  Graph g{7};
  Output x, y, loss, train;

  Mlp(const optimizers::Optimizer& opt, const optimizers::MinimizeOptions& options) {
    x = ops::Placeholder(g, "x", DType::kF32, {-1, kInputs});
    y = ops::Placeholder(g, "y", DType::kI32, {-1});
    Scope h = g.Scope("hidden");
    Output hidden = ops::Relu(h, ops::Dense(h, x, ops::Variable(h, "kernel", {kInputs, kHidden}, HeNormal()),
                                            ops::Variable(h, "bias", {kHidden}, RandomNormal(0, 0.1))));
    Scope o = g.Scope("out");
    Output logits = ops::Dense(o, hidden, ops::Variable(o, "kernel", {kHidden, kClasses}, GlorotUniform()),
                               ops::Variable(o, "bias", {kClasses}, Zeros()));
    loss = ops::SparseCategoricalCrossentropy(g, y, logits, /*from_logits=*/true);
    train = optimizers::Minimize(g, loss, opt, options);
  }
};

struct Batch {
  Tensor x, y;
};

std::vector<Batch> MakeBatches(int n) {
  Rng rng(99);
  std::vector<Batch> batches;
  for (int b = 0; b < n; ++b) {
    Tensor x(DType::kF32, {kBatch, kInputs}), y(DType::kI32, {kBatch});
    for (float& v : x.flat<float>()) v = static_cast<float>(rng.Uniform(0, 1));
    for (int32_t& v : y.flat<int32_t>()) v = static_cast<int32_t>(rng.Below(kClasses));
    batches.push_back({x, y});
  }
  return batches;
}

// Every variable of the session, copied, by name.
std::map<std::string, Tensor> Snapshot(Session& s) {
  std::map<std::string, Tensor> all;
  for (const std::string& name : s.variables().Names()) all[name] = s.variables().Get(name)->Clone();
  return all;
}

void ExpectBitIdentical(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b,
                        const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, ta] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << what << ": '" << name << "' missing";
    const Tensor& tb = it->second;
    ASSERT_EQ(ta.num_bytes(), tb.num_bytes()) << what << ": " << name;
    EXPECT_EQ(std::memcmp(ta.raw(), tb.raw(), ta.num_bytes()), 0) << what << ": '" << name << "' differs";
  }
}

absl::Status TrainSteps(Mlp& m, Plan& plan, const std::vector<Batch>& batches, int begin, int end) {
  for (int t = begin; t < end; ++t) GF_RETURN_IF_ERROR(plan.Run({{m.x, batches[t].x}, {m.y, batches[t].y}}, nullptr));
  return absl::OkStatus();
}

struct NamedOptimizer {
  std::string name;
  optimizers::Optimizer opt;
  std::optional<optimizers::Schedule> schedule;
};

// Chosen configurations, then every optimizer of the variant with its Keras
// defaults (so a new optimizer is covered without editing this list).
std::vector<NamedOptimizer> AllOptimizers() {
  std::vector<NamedOptimizer> all = {
      {"sgd", optimizers::SGD{.learning_rate = 0.05}, {}},
      {"momentum", optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9}, {}},
      {"nesterov", optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true}, {}},
      {"adagrad", optimizers::Adagrad{.learning_rate = 0.05}, {}},
      {"rmsprop", optimizers::RMSprop{}, {}},
      {"rmsprop_centered_momentum", optimizers::RMSprop{.momentum = 0.9, .centered = true}, {}},
      {"adam", optimizers::Adam{}, {}},
      {"amsgrad", optimizers::Adam{.amsgrad = true}, {}},
      {"adamw", optimizers::AdamW{}, {}},
      {"nadam", optimizers::Nadam{}, {}},
      {"adamax", optimizers::Adamax{}, {}},
      {"adam_exponential_decay", optimizers::Adam{},
       optimizers::ExponentialDecay{.initial_learning_rate = 0.01, .decay_steps = 3}},
      {"sgd_1cycle", optimizers::SGD{.momentum = 0.9},
       optimizers::OneCycle{.total_steps = 8, .max_learning_rate = 0.1, .last_steps = 2}},
  };
  for (const optimizers::Optimizer& opt : EveryAlternative<optimizers::Optimizer>()) {
    all.push_back({"default_" + optimizers::OptimizerName(opt), opt, {}});
  }
  return all;
}

// ---------------------------------------------------------------- DOT export

TEST(MinimizeTest, DotExportShowsScheduleAndUpdateNodes) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "fused" : "per variable");
    Mlp m(optimizers::Adam{}, {.schedule = optimizers::CosineDecay{.initial_learning_rate = 0.01, .decay_steps = 100},
                               .fused_updates = fused});
    ASSERT_TRUE(m.g.ok()) << m.g.status();
    const std::string dot = m.g.ToDot();
    Node* rate = m.g.FindNode(optimizers::kScheduledLearningRateName);
    ASSERT_NE(rate, nullptr);
    EXPECT_EQ(m.g.FindNode(optimizers::kLearningRateName), nullptr) << "a schedule replaces the variable";
    EXPECT_THAT(dot, HasSubstr("\"optimizer/schedule/learning_rate\\nIdentity\""));
    EXPECT_THAT(dot, HasSubstr("\\nCos\""));
    EXPECT_THAT(dot, HasSubstr("\"global_step\\nVariable\""));
    EXPECT_THAT(dot, HasSubstr("\"increment_step\\nIncrementStep\""));
    // The schedule reads the step counter (through a cast).
    Node* cast = m.g.FindNode("optimizer/schedule/Cast");
    ASSERT_NE(cast, nullptr);
    EXPECT_THAT(dot, HasSubstr(absl::StrCat("n", m.g.FindNode("global_step")->id, " -> n", cast->id, " ")));

    std::vector<std::string> update_names =
        fused ? std::vector<std::string>{"optimizer/update"}
              : std::vector<std::string>{"hidden/kernel/update/ApplyAdam", "hidden/bias/update/ApplyAdam",
                                         "out/kernel/update/ApplyAdam", "out/bias/update/ApplyAdam"};
    for (const std::string& name : update_names) {
      Node* update = m.g.FindNode(name);
      ASSERT_NE(update, nullptr) << name;
      EXPECT_EQ(update->op_name(), "ApplyAdam");
      EXPECT_THAT(dot, HasSubstr(absl::StrCat("\"", name, "\\nApplyAdam\", shape=box, style=filled")));
      // The schedule's rate feeds the update.
      EXPECT_THAT(dot, HasSubstr(absl::StrCat("n", rate->id, " -> n", update->id, " ")));
    }
    for (const char* slot : {"hidden/kernel/m", "hidden/kernel/v", "out/bias/m", "out/bias/v"}) {
      EXPECT_THAT(dot, HasSubstr(absl::StrCat("\"", slot, "\\nVariable\""))) << slot;
    }
    EXPECT_EQ(m.g.FindNode("optimizer/update") != nullptr, fused);
  }
}

// ---------------------------------------------------------------- fused == per variable

TEST(MinimizeTest, FusedUpdatesEqualPerVariableUpdatesBitForBit) {
  constexpr int kTrainSteps = 3;
  const std::vector<Batch> batches = MakeBatches(kTrainSteps);
  for (const NamedOptimizer& o : AllOptimizers()) {
    SCOPED_TRACE(o.name);
    std::map<std::string, Tensor> results[2];
    for (int fused = 0; fused < 2; ++fused) {
      Mlp m(o.opt, {.schedule = o.schedule, .fused_updates = fused == 1});
      ASSERT_TRUE(m.g.ok()) << m.g.status();
      int update_nodes = 0;
      for (const Node& node : m.g.nodes()) update_nodes += node.op_name().starts_with("Apply");
      EXPECT_EQ(update_nodes, fused ? 1 : 4);
      Session s(m.g);
      auto plan = s.Compile({m.loss}, {m.train}, Phase::kTrain);
      ASSERT_TRUE(plan.ok()) << plan.status();
      ASSERT_TRUE(TrainSteps(m, *plan, batches, 0, kTrainSteps).ok());
      results[fused] = Snapshot(s);
    }
    ExpectBitIdentical(results[0], results[1], "per-variable vs fused");
    // The weights did move.
    Mlp fresh(o.opt, {.schedule = o.schedule});
    Session s(fresh.g);
    ASSERT_TRUE(s.InitializeVariables().ok());
    Tensor initial = *s.variables().Get("hidden/kernel");
    EXPECT_NE(std::memcmp(initial.raw(), results[1]["hidden/kernel"].raw(), initial.num_bytes()), 0);
  }
}

// The update kernels give the same bits with 1 or 2 threads (fixed gradients,
// so only update nodes run).
TEST(MinimizeTest, UpdatesDoNotDependOnTheThreadCount) {
  const int saved = omp_get_max_threads();
  for (const NamedOptimizer& o : AllOptimizers()) {
    SCOPED_TRACE(o.name);
    std::map<std::string, Tensor> results[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      Graph g(3);
      std::vector<std::pair<Output, Output>> grads_and_vars;
      for (int64_t size : {60000, 300, 9000}) {
        const std::string name = absl::StrCat("v", size);
        grads_and_vars.push_back({ops::Variable(g, name + "/gradient", {size}, RandomNormal(0, 1), false),
                                  ops::Variable(g, name, {size}, RandomNormal(0, 1))});
      }
      Output train = optimizers::ApplyGradients(g, grads_and_vars, o.opt, {.schedule = o.schedule});
      ASSERT_TRUE(g.ok()) << g.status();
      Session s(g);
      auto plan = s.Compile({}, {train}, Phase::kTrain);
      ASSERT_TRUE(plan.ok()) << plan.status();
      for (int t = 0; t < 3; ++t) ASSERT_TRUE(plan->Run({}, nullptr).ok());
      results[threads - 1] = Snapshot(s);
    }
    ExpectBitIdentical(results[0], results[1], "1 vs 2 threads");
  }
  omp_set_num_threads(saved);
}

// ---------------------------------------------------------------- schedules drive the updates

TEST(MinimizeTest, ScheduledRateIsTheOneEachStepUses) {
  // Plain SGD: w <- w - lr_t * g, so the fetched rate and gradient give the step exactly.
  const optimizers::Schedule schedule = optimizers::PiecewiseConstantDecay{.boundaries = {1, 2}, .values = {0.5, 0.25, 0.125}};
  Graph g;
  Output w = ops::Variable(g, "w", {3}, Constant(1.0));
  Output loss = ops::ReduceSum(g, ops::Square(g, w));  // dL/dw = 2w
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{}, {.schedule = schedule});
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({optimizers::kScheduledLearningRateName, w}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  double expected_w = 1.0;
  const double rates[] = {0.5, 0.5, 0.25, 0.125, 0.125};  // Keras: values[0] while step <= 1
  for (int t = 0; t < 5; ++t) {
    auto out = plan->Run({});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].data<float>()[0], static_cast<float>(rates[t])) << "rate at step " << t;
    EXPECT_FLOAT_EQ((*out)[1].data<float>()[0], expected_w) << "fetched w is the pre-update value";
    expected_w -= rates[t] * 2 * expected_w;
    EXPECT_FLOAT_EQ(s.variables().Get("w")->data<float>()[0], expected_w) << "after step " << t;
  }
}

TEST(MinimizeTest, InvalidScheduleIsAnErrorAndAddsNothing) {
  Graph g;
  Output w = ops::Variable(g, "w", {3}, Constant(1.0));
  Output loss = ops::ReduceSum(g, ops::Square(g, w));
  Output train = optimizers::Minimize(g, loss, optimizers::Adam{}, {.schedule = optimizers::CosineDecay{}});
  EXPECT_FALSE(train.valid());
  EXPECT_THAT(g.status().message(), HasSubstr("Minimize: learning-rate schedule 'cosine': decay_steps must be > 0"));
  EXPECT_EQ(g.FindNode("w/m"), nullptr);
}

// ---------------------------------------------------------------- checkpoints

TEST(MinimizeTest, SaveLoadContinueIsBitIdenticalToUninterruptedTraining) {
  constexpr int kBefore = 3, kAfter = 3;
  const std::vector<Batch> batches = MakeBatches(kBefore + kAfter);
  const std::string dir = ::testing::TempDir();
  for (const NamedOptimizer& o : AllOptimizers()) {
    SCOPED_TRACE(o.name);
    const optimizers::MinimizeOptions options{.schedule = o.schedule};
    // Uninterrupted.
    Mlp a(o.opt, options);
    ASSERT_TRUE(a.g.ok()) << a.g.status();
    Session sa(a.g);
    auto plan_a = sa.Compile({a.loss}, {a.train}, Phase::kTrain);
    ASSERT_TRUE(plan_a.ok()) << plan_a.status();
    ASSERT_TRUE(TrainSteps(a, *plan_a, batches, 0, kBefore + kAfter).ok());

    // Interrupted: train, save every variable, rebuild from scratch, load, continue.
    const std::string path = (std::filesystem::path(dir) / (o.name + ".safetensors")).string();
    {
      Mlp b(o.opt, options);
      Session sb(b.g);
      auto plan_b = sb.Compile({b.loss}, {b.train}, Phase::kTrain);
      ASSERT_TRUE(plan_b.ok()) << plan_b.status();
      ASSERT_TRUE(TrainSteps(b, *plan_b, batches, 0, kBefore).ok());
      ASSERT_TRUE(SaveCheckpoint(path, Snapshot(sb), {{"optimizer", optimizers::OptimizerName(o.opt)}}).ok());
    }
    auto checkpoint = LoadCheckpoint(path);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    EXPECT_EQ(checkpoint->tensors.at(optimizers::kStepName).data<int64_t>()[0], kBefore);
    EXPECT_EQ(checkpoint->tensors.count(optimizers::kLearningRateName), o.schedule ? 0u : 1u);
    if (std::holds_alternative<optimizers::Adam>(o.opt)) {
      EXPECT_EQ(checkpoint->tensors.count("hidden/kernel/m"), 1u);
      EXPECT_EQ(checkpoint->tensors.count("hidden/kernel/v"), 1u);
    }
    if (std::holds_alternative<optimizers::Nadam>(o.opt)) {
      EXPECT_EQ(checkpoint->tensors.count(optimizers::kNadamMomentumProductName), 1u);
    }
    Mlp c(o.opt, options);
    Session sc(c.g);
    auto plan_c = sc.Compile({c.loss}, {c.train}, Phase::kTrain);
    ASSERT_TRUE(plan_c.ok()) << plan_c.status();
    EXPECT_EQ(sc.variables().Names().size(), checkpoint->tensors.size()) << "the checkpoint holds every variable";
    for (const auto& [name, value] : checkpoint->tensors) ASSERT_TRUE(sc.variables().Set(name, value).ok()) << name;
    ASSERT_TRUE(TrainSteps(c, *plan_c, batches, kBefore, kBefore + kAfter).ok());

    ExpectBitIdentical(Snapshot(sa), Snapshot(sc), "uninterrupted vs resumed");
  }
}

// Without the optimizer state the continuation differs: the test above would
// catch a checkpoint that lost it.
TEST(MinimizeTest, ResumingWithoutOptimizerStateDiffers) {
  const std::vector<Batch> batches = MakeBatches(4);
  Mlp a(optimizers::Adam{}, {});
  Session sa(a.g);
  auto plan_a = sa.Compile({a.loss}, {a.train}, Phase::kTrain);
  ASSERT_TRUE(plan_a.ok()) << plan_a.status();
  ASSERT_TRUE(TrainSteps(a, *plan_a, batches, 0, 2).ok());
  std::map<std::string, Tensor> weights_only;
  for (const char* name : {"hidden/kernel", "hidden/bias", "out/kernel", "out/bias"}) {
    weights_only[name] = sa.variables().Get(name)->Clone();
  }
  ASSERT_TRUE(TrainSteps(a, *plan_a, batches, 2, 4).ok());

  Mlp c(optimizers::Adam{}, {});
  Session sc(c.g);
  auto plan_c = sc.Compile({c.loss}, {c.train}, Phase::kTrain);
  ASSERT_TRUE(plan_c.ok()) << plan_c.status();
  for (const auto& [name, value] : weights_only) ASSERT_TRUE(sc.variables().Set(name, value).ok());
  ASSERT_TRUE(TrainSteps(c, *plan_c, batches, 2, 4).ok());
  const Tensor ka = *sa.variables().Get("hidden/kernel"), kc = *sc.variables().Get("hidden/kernel");
  EXPECT_NE(std::memcmp(ka.raw(), kc.raw(), ka.num_bytes()), 0);
}

// ---------------------------------------------------------------- ApplyGradients

TEST(MinimizeTest, ApplyGradientsChecksItsPairs) {
  // Each case gets a fresh graph with variables w f32[3], v f32[2], a
  // non-variable m = 2 w and a gradient placeholder g f32[3].
  enum Pair { kGradW, kGradV, kGradM };
  struct Case {
    std::vector<Pair> pairs;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{}, "no variables to update"},
      {{kGradM}, "is not a f32 variable: only variables can be updated"},
      {{kGradV}, "does not match the variable 'v' f32[2]"},
      {{kGradW, kGradW}, "the variable 'w' is listed twice"},
  };
  for (const Case& c : cases) {
    Graph g;
    Output w = ops::Variable(g, "w", {3}, Ones());
    Output v = ops::Variable(g, "v", {2}, Ones());
    Output m = ops::Mul(g, w, 2.0f);
    Output grad = ops::Placeholder(g, "g", DType::kF32, {3});
    std::vector<std::pair<Output, Output>> pairs;
    for (Pair p : c.pairs) pairs.push_back({grad, p == kGradW ? w : p == kGradV ? v : m});
    Output train = optimizers::ApplyGradients(g, pairs, optimizers::SGD{});
    EXPECT_FALSE(train.valid());
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr(c.message));
    EXPECT_THAT(std::string(g.status().message()), ::testing::StartsWith("ApplyGradients: "));
    EXPECT_EQ(g.FindNode(optimizers::kStepName), nullptr) << "nothing is added on error";
  }
}

// One graph, one learning-rate variable: a second optimizer may share it only
// at the same starting rate (it would otherwise train at the first one's).
TEST(MinimizeTest, SecondOptimizerWithAnotherRateIsAnError) {
  Graph g;
  Output w = ops::Variable(g, "w", {3}, Ones());
  Output v = ops::Variable(g, "v", {2}, Ones());
  Output loss_w = ops::ReduceSum(g, ops::Square(g, w));
  Output loss_v = ops::ReduceSum(g, ops::Square(g, v));
  EXPECT_TRUE(optimizers::Minimize(g, loss_w, optimizers::SGD{.learning_rate = 0.1}).valid());
  EXPECT_TRUE(optimizers::Minimize(g, loss_v, optimizers::SGD{.learning_rate = 0.1}).valid());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(optimizers::Minimize(g, loss_v, optimizers::Adam{.learning_rate = 0.001}).valid());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("already has 'optimizer/learning_rate' starting at 0.1"));
  EXPECT_THAT(g.status().message(), HasSubstr("cannot start at 0.001"));
}

TEST(MinimizeTest, ApplyGradientsTrainsWithFedGradients) {
  Graph g;
  Output w = ops::Variable(g, "w", {3}, Constant(1.0));
  Output grad = ops::Placeholder(g, "grad", DType::kF32, {3});
  Output train = optimizers::ApplyGradients(g, {{grad, w}}, optimizers::SGD{.learning_rate = 0.5});
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->Run({{grad, Tensor::FromVector<float>({3}, {1, 2, -4}).value()}}).ok());
  EXPECT_EQ(s.variables().Get("w")->ToVector<float>(), (std::vector<float>{0.5f, 0.0f, 3.0f}));
  EXPECT_EQ(s.variables().Get(optimizers::kStepName)->data<int64_t>()[0], 1);
}

}  // namespace
}  // namespace gradflow
