// Declared op attributes (graph/op_registry.h, OpDef::attrs): Graph::AddNode
// checks every node's attrs against its op's declaration, so a builder call
// with a missing, unknown, mistyped or out-of-range attr is an error in
// g.status() naming the node and the attr, never an exception or a read of a
// missing map entry (issue 13 item 8).

#include <string>

#include "gmock/gmock.h"
#include "graph/graph.h"
#include "graph/op_registry.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

Output Input(Graph& g) { return ops::Placeholder(g, "x", DType::kF32, {-1, 3}); }

std::string Message(const Graph& g) { return std::string(g.status().message()); }

TEST(OpAttrsTest, ClipWithoutItsBoundsIsAnErrorNotACrash) {
  Graph g;
  Output y = g.AddNode1(g, "Clip", {Input(g)});
  EXPECT_FALSE(y.valid());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(g), HasSubstr("node 'Clip' (Clip): missing attr 'lo'"));
  EXPECT_THAT(Message(g), HasSubstr("lo (float, required), hi (float, required)"));
}

TEST(OpAttrsTest, ClipWithOneBoundNamesTheOther) {
  Graph g;
  EXPECT_FALSE(g.AddNode1(g, "Clip", {Input(g)}, {{"lo", -1.0}}).valid());
  EXPECT_THAT(Message(g), HasSubstr("missing attr 'hi'"));
}

TEST(OpAttrsTest, DropoutRateOfTheWrongTypeIsAnErrorNotAnException) {
  Graph g;
  Output y = g.AddNode1(g, "Dropout", {Input(g)}, {{"rate", std::string("0.5")}});
  EXPECT_FALSE(y.valid());
  EXPECT_THAT(Message(g), HasSubstr("node 'Dropout' (Dropout): attr 'rate' must be a float, got a string"));
}

TEST(OpAttrsTest, OutOfRangeAndNanAreRefused) {
  for (double rate : {-0.5, 1.0, std::nan("")}) {
    Graph g;
    EXPECT_FALSE(g.AddNode1(g, "Dropout", {Input(g)}, {{"rate", rate}}).valid()) << rate;
    EXPECT_THAT(Message(g), HasSubstr("rate must be in [0, 1) (the fraction of units dropped), got")) << rate;
  }
  Graph g;
  EXPECT_FALSE(g.AddNode1(g, "Clip", {Input(g)}, {{"lo", -INFINITY}, {"hi", 1.0}}).valid());
  EXPECT_THAT(Message(g), HasSubstr("lo must be a finite number, got -inf"));
}

TEST(OpAttrsTest, AnUnknownAttrIsRefusedWithTheDeclaredOnes) {
  Graph g;
  EXPECT_FALSE(g.AddNode1(g, "LeakyRelu", {Input(g)}, {{"alpah", 0.2}}).valid());
  EXPECT_THAT(Message(g), HasSubstr("unknown attr 'alpah'; LeakyRelu takes alpha (float)"));
  Graph g2;
  EXPECT_FALSE(g2.AddNode1(g2, "Relu", {Input(g2)}, {{"alpha", 0.2}}).valid());
  EXPECT_THAT(Message(g2), HasSubstr("unknown attr 'alpha'; Relu takes no attrs"));
}

TEST(OpAttrsTest, AnIntGivenForAFloatIsConverted) {
  Graph g;
  Output y = g.AddNode1(g, "Scale", {Input(g)}, {{"alpha", int64_t{2}}});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.node->attr<double>("alpha"), 2.0);
}

TEST(OpAttrsTest, DefaultsComeFromTheDeclaration) {
  Graph g;
  Output y = g.AddNode1(g, "LeakyRelu", {Input(g)});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(y.node->has_attr("alpha"));
  EXPECT_EQ(y.node->attr<double>("alpha"), ops::kLeakyReluDefaultAlpha);
  Output e = g.AddNode1(g, "Elu", {Input(g)});
  EXPECT_EQ(e.node->attr<double>("alpha"), ops::kEluDefaultAlpha);
}

TEST(OpAttrsTest, ReadingAnUndeclaredOrMistypedAttrGivesAnEmptyValue) {
  Graph g;
  Output y = g.AddNode1(g, "Scale", {Input(g)}, {{"alpha", 3.0}});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(y.node->attr<double>("no_such_attr"), 0.0);
  EXPECT_EQ(y.node->attr<std::string>("alpha"), "");  // alpha is a float
  EXPECT_EQ(y.node->attr_or<std::string>("alpha", "fallback"), "fallback");
}

// Every op's own grad-check attrs satisfy its declaration (the registry
// checks declared defaults at start-up), so declarations and the ops' own
// uses cannot drift apart.
TEST(OpAttrsTest, EveryGradCheckCaseMatchesItsOpsDeclaration) {
  for (const OpDef* op : OpRegistry::Global().All()) {
    for (const GradCheckCase& c : op->grad_checks) {
      Attrs attrs = c.attrs;
      EXPECT_TRUE(CheckAttrs(*op, "case", attrs).ok()) << CheckAttrs(*op, "case", attrs);
    }
  }
}

}  // namespace
}  // namespace gradflow
