// Plan::set_profiling / Profile and FormatProfile (graph/profile.h): which
// runs count, how nodes and batch sizes are summed, and the table.

#include "graph/profile.h"

#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

struct Net {
  Net() {
    x = ops::Placeholder(g, "x", DType::kF32, {-1, 8});
    w = ops::Placeholder(g, "w", DType::kF32, {8, 4});
    y = ops::Relu(g.Scope("act"), ops::Dense(g.Scope("dense"), x, w, Output{}, {}));
  }
  std::vector<Feed> Feeds(int64_t batch) const {
    Tensor xv(DType::kF32, {batch, 8}), wv(DType::kF32, {8, 4});
    for (float& v : xv.flat<float>()) v = 0.5f;
    for (float& v : wv.flat<float>()) v = 0.25f;
    return {{x, xv}, {w, wv}};
  }
  Graph g;
  Output x, w, y;
};

const NodeTime* Find(const PlanProfile& p, const std::string& node) {
  for (const NodeTime& n : p.nodes) {
    if (n.node == node) return &n;
  }
  return nullptr;
}

TEST(ProfileTest, OffByDefaultAndCountsOnlyTheRunsWhileOn) {
  Net net;
  Session s(net.g, {.fuse_ops = false});
  auto plan = s.Compile({net.y});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->Run(net.Feeds(4)).ok());
  EXPECT_EQ(plan->Profile().steps, 0);
  EXPECT_TRUE(plan->Profile().nodes.empty());

  plan->set_profiling(true);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(plan->Run(net.Feeds(4)).ok());
  plan->set_profiling(false);
  ASSERT_TRUE(plan->Run(net.Feeds(4)).ok());  // not counted
  const PlanProfile p = plan->Profile();
  EXPECT_EQ(p.steps, 5);
  const NodeTime* dense = Find(p, "dense/Dense");
  const NodeTime* relu = Find(p, "act/Relu");
  ASSERT_NE(dense, nullptr);
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(dense->op, "Dense");
  EXPECT_EQ(dense->implementation, "inner_product");  // the autotuned op says which candidate ran
  EXPECT_EQ(dense->runs, 5);
  EXPECT_EQ(relu->runs, 5);
  EXPECT_EQ(relu->implementation, "");
  double in_kernels = 0;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    EXPECT_GT(p.nodes[i].seconds, 0) << p.nodes[i].node;
    if (i > 0) EXPECT_GE(p.nodes[i - 1].seconds, p.nodes[i].seconds) << "most time first";
    in_kernels += p.nodes[i].seconds;
  }
  EXPECT_LE(in_kernels, p.run_seconds);

  plan->set_profiling(true);  // starts afresh
  EXPECT_EQ(plan->Profile().steps, 0);
  EXPECT_TRUE(plan->Profile().nodes.empty());
}

// Executables of two batch sizes add to one row per node; the first run of
// a batch size builds its executable, which is not a step's time.
TEST(ProfileTest, BatchSizesShareANodesRow) {
  Net net;
  Session s(net.g, {.fuse_ops = false});
  auto plan = s.Compile({net.y});
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->set_profiling(true);
  ASSERT_TRUE(plan->Run(net.Feeds(4)).ok());
  ASSERT_TRUE(plan->Run(net.Feeds(7)).ok());
  ASSERT_TRUE(plan->Run(net.Feeds(4)).ok());
  const PlanProfile p = plan->Profile();
  EXPECT_EQ(p.steps, 3);
  ASSERT_EQ(p.nodes.size(), 2u);
  for (const NodeTime& n : p.nodes) EXPECT_EQ(n.runs, 3) << n.node;
}

TEST(ProfileTest, TheTableListsEveryNodeAndTheTimeOutsideTheKernels) {
  PlanProfile p{.steps = 4, .run_seconds = 0.004};
  p.nodes = {{"dense/Dense", "Dense", "matmul", 4, 0.003}, {"act/Relu", "Relu", "", 4, 0.0005}};
  const std::string table = FormatProfile(p);
  EXPECT_THAT(table, HasSubstr("4 steps, 1000.0 us per step"));
  EXPECT_THAT(table, HasSubstr("  75.0%      750.0       4  dense/Dense (Dense, matmul)"));
  EXPECT_THAT(table, HasSubstr("  12.5%      125.0       4  act/Relu (Relu)"));
  EXPECT_THAT(table, HasSubstr("  12.5%      125.0       4  (outside the kernels"));
}

}  // namespace
}  // namespace gradflow
