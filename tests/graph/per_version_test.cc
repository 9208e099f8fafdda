// Plans that write no variables compute the nodes reading only variables
// (a mixed-precision kernel's bf16 cast) once per variable version
// (graph/README.md, "The executor"): counted with a test op, and checked to
// recompute after every way the weights can change, including a training
// run in another session that shares the variable's storage.

#include <atomic>

#include "gtest/gtest.h"
#include "graph/session.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "ops/math.h"
#include "ops/op_util.h"
#include "optimizers/optimizers.h"

namespace gradflow {
namespace {

std::atomic<int> negations{0};

// y = -x, counting its runs.
GF_REGISTER_OP(OpDef{
    .name = "TestCountingNeg",
    .num_inputs = 1,
    .infer = [](InferContext& ctx) {
      ctx.AddOutput(ctx.dtype(0), ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const float* x = k.in<const float>(0);
      float* y = k.out<float>(0);
      const int64_t n = k.in_shape(0).NumElements();
      return ops::MakeKernel([=](const RunContext&) {
        ++negations;
        for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) { return std::vector<Output>{ops::Neg(g.scope, g.dy[0])}; },
});

// y = x + (-w) for a [2] variable w, and a plan that trains w.
struct Net {
  Net() {
    x = ops::Placeholder(g, "x", DType::kF32, {-1, 2});
    t = ops::Placeholder(g, "t", DType::kF32, {-1, 2});
    w = ops::Variable(g, "w", {2}, init::Ones{});
    Output minus_w = g.AddNode1(g, "TestCountingNeg", {w});
    y = ops::BiasAdd(g, x, minus_w);
    loss = ops::MeanSquaredError(g, t, y);
    train = optimizers::Minimize(g, loss, optimizers::SGD{.learning_rate = 0.5});
  }
  Graph g;
  Output x, t, w, y, loss, train;
};

Tensor Row(float a, float b) { return *Tensor::FromVector<float>({1, 2}, {a, b}); }

std::vector<float> Predict(Plan& plan, const Net& net) {
  auto out = plan.Run({{net.x, Row(10, 20)}});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? (*out)[0].ToVector<float>() : std::vector<float>{};
}

std::vector<float> Weights(Session& s) { return s.variables().Get("w")->ToVector<float>(); }

TEST(PerVersionTest, AnInferencePlanNegatesTheWeightsOncePerVersion) {
  Net net;
  ASSERT_TRUE(net.g.ok()) << net.g.status();
  Session s(net.g);
  auto predict = s.Compile({net.y});
  ASSERT_TRUE(predict.ok()) << predict.status();
  const int before = negations;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Predict(*predict, net), (std::vector<float>{9, 19}));
  EXPECT_EQ(negations - before, 1);

  ASSERT_TRUE(s.variables().Set("w", *Tensor::FromVector<float>({2}, {3, 4})).ok());
  EXPECT_EQ(Predict(*predict, net), (std::vector<float>{7, 16}));
  EXPECT_EQ(Predict(*predict, net), (std::vector<float>{7, 16}));
  EXPECT_EQ(negations - before, 2);

  // A training plan writes w every step, so it negates every step; the
  // inference plan sees the trained weights after it.
  auto train = s.Compile({net.loss}, {net.train}, Phase::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(train->Run({{net.x, Row(10, 20)}, {net.t, Row(0, 0)}}).ok());
  EXPECT_EQ(negations - before, 4);
  const std::vector<float> w = Weights(s);
  EXPECT_NE(w, (std::vector<float>{3, 4}));
  EXPECT_EQ(Predict(*predict, net), (std::vector<float>{10 - w[0], 20 - w[1]}));
  EXPECT_EQ(negations - before, 5);
}

// Two sessions bind one tensor (layers shared by two models): training in
// one changes what the other's inference plan must see.
TEST(PerVersionTest, TrainingInASessionSharingTheStorageIsSeen) {
  Net reader, trainer;
  Tensor shared = *Tensor::FromVector<float>({2}, {1, 1});
  Session a(reader.g), b(trainer.g);
  ASSERT_TRUE(a.variables().Bind("w", shared).ok());
  ASSERT_TRUE(b.variables().Bind("w", shared).ok());
  auto predict = a.Compile({reader.y});
  auto train = b.Compile({trainer.loss}, {trainer.train}, Phase::kTrain);
  ASSERT_TRUE(predict.ok() && train.ok());
  EXPECT_EQ(Predict(*predict, reader), (std::vector<float>{9, 19}));
  ASSERT_TRUE(train->Run({{trainer.x, Row(10, 20)}, {trainer.t, Row(0, 0)}}).ok());
  const std::vector<float> w = shared.ToVector<float>();
  ASSERT_NE(w, (std::vector<float>{1, 1}));
  EXPECT_EQ(Predict(*predict, reader), (std::vector<float>{10 - w[0], 20 - w[1]}));
}

// The cached value is never a buffer other values reuse: a deeper plan whose
// temporaries would otherwise take its bytes still reads it right.
TEST(PerVersionTest, TheCachedValueKeepsItsBytesAcrossRuns) {
  Net net;
  Output deeper = net.y;
  const Output zeros = ops::Constant(net.g, *Tensor::FromVector<float>({2}, {0, 0}));
  for (int i = 0; i < 6; ++i) deeper = ops::BiasAdd(net.g, deeper, zeros);
  ASSERT_TRUE(net.g.ok()) << net.g.status();
  Session s(net.g);
  auto plan = s.Compile({deeper});
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (int i = 0; i < 3; ++i) {
    auto out = plan->Run({{net.x, Row(10, 20)}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{9, 19})) << "run " << i;
  }
}

}  // namespace
}  // namespace gradflow
