#include "graph/session.h"

#include <algorithm>
#include <cmath>

#include "graph/autodiff.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dropout.h"
#include "ops/math.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

Tensor Iota(Shape shape) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = float(i);
  return t;
}

TEST(SessionTest, RunsAndFetchesByHandleAndByName) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 2, 3});
  Output flat = ops::Flatten(g, x);
  Output sum = ops::AddN(g, {flat, flat, flat});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(flat.shape(), (Shape{-1, 6}));

  Session s(g);
  auto plan = s.Compile({sum, "Flatten"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, Iota({4, 2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{4, 6}));
  EXPECT_EQ((*out)[0].data<float>()[5], 15.0f);
  EXPECT_EQ((*out)[1].data<float>()[23], 23.0f);

  // Another batch size compiles another executable; feeding by name works.
  auto out2 = plan->Run({{"x", Iota({1, 2, 3})}});
  ASSERT_TRUE(out2.ok()) << out2.status();
  EXPECT_EQ((*out2)[0].shape(), (Shape{1, 6}));
}

TEST(SessionTest, WrongFeedShapeNamesPlaceholderAndBothShapes) {
  Graph g;
  Output x = ops::Placeholder(g, "images", DType::kF32, {-1, 784});
  Output y = ops::Identity(g, x);
  Session s(g);
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok());
  absl::Status st = plan->Run({{x, Tensor(DType::kF32, {8, 28, 28})}}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("images"));
  EXPECT_THAT(st.message(), HasSubstr("[8, 28, 28]"));
  EXPECT_THAT(st.message(), HasSubstr("[-1, 784]"));

  st = plan->Run({{x, Tensor(DType::kI32, {8, 784})}}).status();
  EXPECT_THAT(st.message(), HasSubstr("i32"));
  st = plan->Run({}).status();
  EXPECT_THAT(st.message(), HasSubstr("must be fed"));
}

TEST(SessionTest, FetchFromAnotherGraphIsAnError) {
  Graph g, other;
  Output x = ops::Placeholder(other, "x", DType::kF32, {2});
  ops::Placeholder(g, "y", DType::kF32, {2});
  Session s(g);
  auto plan = s.Compile({x});
  EXPECT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("another graph"));
}

TEST(SessionTest, BuildErrorNamesNodeAndShapes) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {2, 3});
  Output b = ops::Placeholder(g, "b", DType::kF32, {3, 3});
  Output s = ops::AddN(g, {a, b});
  EXPECT_FALSE(s.valid());
  EXPECT_THAT(g.status().message(), HasSubstr("AddN"));
  EXPECT_THAT(g.status().message(), HasSubstr("'b' f32[3, 3]"));
  EXPECT_THAT(g.status().message(), HasSubstr("'a' f32[2, 3]"));
  // Later builders on the invalid output propagate silently; the first error stays.
  Output t = ops::Identity(g, s);
  EXPECT_FALSE(t.valid());
  Session session(g);
  EXPECT_EQ(session.Compile({a}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SessionTest, VariablesLiveInTheStoreAndAreSeeded) {
  Graph g(7);
  Output w = ops::Variable(g.Scope("dense"), "kernel", {4, 3}, HeNormal());
  EXPECT_EQ(w.name(), "dense/kernel");
  Session a(g), b(g);
  auto pa = a.Compile({w});
  auto pb = b.Compile({w});
  ASSERT_TRUE(pa.ok() && pb.ok());
  auto va = pa->Run({}), vb = pb->Run({});
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_EQ((*va)[0].ToVector<float>(), (*vb)[0].ToVector<float>());  // same seed, same init

  Tensor ones = Tensor::FromVector<float>({4, 3}, std::vector<float>(12, 1.0f)).value();
  ASSERT_TRUE(a.variables().Set("dense/kernel", ones).ok());
  auto after = pa->Run({});
  EXPECT_EQ((*after)[0].data<float>()[7], 1.0f);  // the plan sees the new value
  EXPECT_FALSE(a.variables().Set("dense/kernel", Tensor(DType::kF32, {3, 4})).ok());
}

TEST(SessionTest, ScopesMakeUniqueNames) {
  Graph g;
  Scope d1 = g.Scope("dense");
  Scope d2 = g.Scope("dense");
  EXPECT_EQ(d1.prefix(), "dense");
  EXPECT_EQ(d2.prefix(), "dense_1");
  EXPECT_EQ(g.Scope("dense").prefix(), "dense_2");
}

TEST(SessionTest, ArenaReusesBuffersByLiveness) {
  // A chain of 10 copies of a 1000-float value needs ~2 live buffers, not 10.
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 1000});
  Output h = x;
  for (int i = 0; i < 10; ++i) h = ops::AddN(g, {h, h});
  Session s(g);
  auto plan = s.Compile({h});
  ASSERT_TRUE(plan.ok());
  auto bytes = plan->ArenaBytes(1);
  ASSERT_TRUE(bytes.ok());
  EXPECT_LE(*bytes, 3 * 4096u);
  auto out = plan->Run({{x, Tensor::FromVector<float>({1, 1000}, std::vector<float>(1000, 1.0f)).value()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].data<float>()[999], 1024.0f);
}

// Elementwise ops marked OpDef::inplace_input write over their input when
// nothing reads it later: a chain of them lives in the feed's own buffer.
TEST(SessionTest, ElementwiseOpsRunInPlaceWhenTheInputIsDead) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 1000});
  Output y = ops::Tanh(g, ops::Sigmoid(g, ops::Relu(g, x)));
  Session s(g);
  std::vector<float> in(1000);
  for (int i = 0; i < 1000; ++i) in[i] = (i % 7) - 3.0f;
  const Tensor feed = Tensor::FromVector<float>({1, 1000}, in).value();
  auto expect_values = [&](const Tensor& out) {
    for (int i = 0; i < 1000; ++i) {
      const float want = std::tanh(1.0f / (1.0f + std::exp(-std::max(in[i], 0.0f))));
      ASSERT_NEAR(out.data<float>()[i], want, 1e-6) << i;
    }
  };
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok());
  auto bytes = plan->ArenaBytes(1);
  ASSERT_TRUE(bytes.ok());
  EXPECT_LT(*bytes, 2 * 4000u);  // one buffer (plus padding), where ping-pong takes two
  auto out = plan->Run({{x, feed}});
  ASSERT_TRUE(out.ok());
  expect_values((*out)[0]);
  // x fetched as well: its buffer must survive, so the Relu may not overwrite it.
  auto both = s.Compile({y, x});
  ASSERT_TRUE(both.ok());
  out = both->Run({{x, feed}});
  ASSERT_TRUE(out.ok());
  expect_values((*out)[0]);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ((*out)[1].data<float>()[i], in[i]) << i;
  // x read by a later op (the Add): only the ops after that read may overwrite it.
  Output z = ops::Add(g, ops::Relu(g, x), x);
  auto later = s.Compile({z});
  ASSERT_TRUE(later.ok());
  out = later->Run({{x, feed}});
  ASSERT_TRUE(out.ok());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ((*out)[0].data<float>()[i], std::max(in[i], 0.0f) + in[i]) << i;
}

TEST(SessionTest, FeedBufferIsFedWithoutACopy) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  Output y = ops::Relu(g, x);  // may overwrite the feed buffer in place
  Output w = ops::Placeholder(g, "w", DType::kF32, {2});
  Session s(g);
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok());
  auto buffer = plan->FeedBuffer(x, 2);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_EQ(buffer->shape(), (Shape{2, 3}));
  for (int round = 0; round < 2; ++round) {  // refilled before every Run
    for (int i = 0; i < 6; ++i) buffer->data<float>()[i] = float(i - 3 + round);
    auto out = plan->Run({{x, *buffer}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (int i = 0; i < 6; ++i) EXPECT_EQ((*out)[0].data<float>()[i], std::max(0.0f, float(i - 3 + round)));
  }
  // Other tensors are still copied in.
  auto out = plan->Run({{x, Tensor::FromVector<float>({1, 3}, {-1, 2, -3}).value()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{0, 2, 0}));
  auto not_read = plan->FeedBuffer(w, 2);
  EXPECT_EQ(not_read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_read.status().message(), ::testing::HasSubstr("'w' is not a placeholder this plan reads"));
}

// Nodes computed from constants only run once, when the plan is compiled.
TEST(SessionTest, ConstantSubgraphsAreFoldedAtCompileTime) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  Output c = ops::Constant(g, Tensor::FromVector<float>({3}, {4, 9, 16}).value());
  Output r = ops::Reshape(g, ops::Sqrt(g, c), {1, 3});  // [[2, 3, 4]]
  Output y = ops::Add(g, x, r);
  Output noisy = ops::Dropout(g, c, 0.5);  // random: never folded
  const Tensor feed = Tensor::FromVector<float>({2, 3}, {1, 1, 1, 0, 0, 0}).value();
  const std::vector<float> want = {3, 4, 5, 2, 3, 4};
  auto folded_names = [](const Plan& plan) {
    std::vector<std::string> names;
    for (const std::string& n : plan.NodeNames()) {
      if (n.ends_with(" (folded)")) names.push_back(n);
    }
    return names;
  };
  Session s(g), unfolded(g, {.fold_constants = false}), checked(g, {.check_numerics = true});
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(folded_names(*plan), ::testing::ElementsAre("Sqrt (folded)", "Reshape (folded)"));
  for (Session* session : {&s, &unfolded, &checked}) {
    auto p = session->Compile({y});
    ASSERT_TRUE(p.ok());
    if (session != &s) {
      EXPECT_THAT(folded_names(*p), ::testing::IsEmpty());
    }
    auto out = p->Run({{x, feed}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].ToVector<float>(), want);
  }
  auto train = s.Compile({noisy}, {}, Phase::kTrain);
  ASSERT_TRUE(train.ok());
  EXPECT_THAT(folded_names(*train), ::testing::IsEmpty());
}

TEST(SessionTest, DotExportShowsNodesAndShapes) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  ops::Identity(g, x);
  std::string dot = g.ToDot();
  EXPECT_THAT(dot, HasSubstr("digraph"));
  EXPECT_THAT(dot, HasSubstr("Identity"));
  EXPECT_THAT(dot, HasSubstr("[-1, 4]"));
}

TEST(AutodiffTest, FanOutGradientsAreSummed) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {2});
  Output y = ops::AddN(g, {x, x, x});  // dy/dx = 3
  auto grads = AddGradients(g, y, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({(*grads)[0]});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{x, Tensor::FromVector<float>({2}, {1, 2}).value()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{3, 3}));
}

TEST(AutodiffTest, NonDifferentiableOpOnPathIsANamedError) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {2});
  Output group = ops::Group(g, {x.node});
  Output y = ops::Cast(g, ops::Cast(g, x, DType::kI32), DType::kF32);
  auto grads = AddGradients(g, y, {x});
  ASSERT_TRUE(grads.ok());  // casts stop gradients: zeros
  (void)group;
}

}  // namespace
}  // namespace gradflow

namespace gradflow {
namespace {

TEST(SessionTest, LatePlaceholderDoesNotOverwriteEarlierInputs) {
  // "b" is created after a node that consumes "a" and frees its buffer; feeds
  // are copied before any kernel runs, so b must not reuse a's buffer.
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 4});
  Output a2 = ops::AddN(g, {a, a});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, 4});
  Output sum = ops::AddN(g, {a2, b});
  Session s(g);
  auto plan = s.Compile({sum});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{a, Tensor::FromVector<float>({1, 4}, {1, 1, 1, 1}).value()},
                        {b, Tensor::FromVector<float>({1, 4}, {10, 10, 10, 10}).value()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{12, 12, 12, 12}));
}

}  // namespace
}  // namespace gradflow

namespace gradflow {
namespace {

// Bind shares storage: two sessions over two graphs that bind one tensor see
// each other's writes (how nn layers reused by several models share weights).
TEST(VariableStoreTest, BindSharesStorageBetweenSessions) {
  Tensor shared = Tensor::FromVector<float>({2}, {1, 2}).value();
  Graph g1, g2;
  Output w1 = ops::Variable(g1.Scope("dense"), "kernel", {2}, HeNormal());
  Output w2 = ops::Variable(g2.Scope("dense"), "kernel", {2}, HeNormal());
  Session s1(g1), s2(g2);
  ASSERT_TRUE(s1.variables().Bind("dense/kernel", shared).ok());
  ASSERT_TRUE(s2.variables().Bind("dense/kernel", shared).ok());
  auto p1 = s1.Compile({w1});
  auto p2 = s2.Compile({w2});
  ASSERT_TRUE(p1.ok() && p2.ok());
  auto v1 = p1->Run({});
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ((*v1)[0].ToVector<float>(), (std::vector<float>{1, 2})) << "bound, so not initialized";

  ASSERT_TRUE(s1.variables().Set("dense/kernel", Tensor::FromVector<float>({2}, {5, 6}).value()).ok());
  auto v2 = p2->Run({});
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v2)[0].ToVector<float>(), (std::vector<float>{5, 6}));
  EXPECT_EQ(shared.ToVector<float>(), (std::vector<float>{5, 6}));

  EXPECT_TRUE(s1.variables().Bind("dense/kernel", shared).ok()) << "binding the same storage again";
  absl::Status again = s1.variables().Bind("dense/kernel", Tensor::FromVector<float>({2}, {0, 0}).value());
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("already exists"));
}

}  // namespace
}  // namespace gradflow
