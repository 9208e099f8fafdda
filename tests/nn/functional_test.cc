// The functional API's symbolic tensors (nn/functional.h): shapes inferred
// at each call, errors carried to the end, the order of calls, and shared
// layers that reuse their variables.

#include "nn/functional.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/merge_layers.h"
#include "graph/op_registry.h"
#include "ops/array.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

TEST(FunctionalTest, InputHasAnUnknownBatchDimension) {
  nn::KerasTensor x = nn::Input({8}, {.name = "features"});
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x.shape(), Shape({-1, 8}));
  EXPECT_EQ(x.call()->input_name, "features");
  EXPECT_EQ(x.call()->layer, nullptr);
}

TEST(FunctionalTest, InputRefusesADimensionBelowOne) {
  nn::KerasTensor x = nn::Input({8, 0}, {.name = "bad"});
  EXPECT_FALSE(x.ok());
  EXPECT_THAT(std::string(x.status().message()), HasSubstr("[8, 0]"));
  EXPECT_FALSE(nn::KerasTensor().ok());
}

TEST(FunctionalTest, ACallKnowsItsOutputShapeBeforeAnyModel) {
  nn::KerasTensor x = nn::Input({8});
  nn::LayerPtr dense = nn::Dense(30, {.activation = "relu"});
  nn::KerasTensor h = dense(x);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h.shape(), Shape({-1, 30}));
  EXPECT_EQ(h.call()->layer, dense);
  // The probe leaves the layer as it was: not built, no variables.
  EXPECT_TRUE(dense->variables().empty());
  EXPECT_FALSE(dense->output().valid());
}

TEST(FunctionalTest, AnErrorTravelsToEveryLaterTensor) {
  nn::KerasTensor a = nn::Input({3}), b = nn::Input({4});
  nn::KerasTensor sum = nn::Add("bad_add")({a, b});
  ASSERT_FALSE(sum.ok());
  const std::string message(sum.status().message());
  EXPECT_THAT(message, HasSubstr("'bad_add' (Add)"));
  EXPECT_THAT(message, HasSubstr("f32[-1, 3], f32[-1, 4]"));
  nn::KerasTensor later = nn::Dense(2)(nn::Dense(5)(sum));
  EXPECT_EQ(later.status(), sum.status());
}

TEST(FunctionalTest, ANullLayerOrNoInputsIsAnError) {
  nn::LayerPtr none;
  EXPECT_FALSE(none(nn::Input({2})).ok());
  EXPECT_THAT(std::string(nn::Dense(2)(std::vector<nn::KerasTensor>{}).status().message()),
              HasSubstr("no tensors"));
  EXPECT_THAT(std::string(nn::Dense(2)({nn::Input({2}), nn::Input({2})}).status().message()),
              HasSubstr("takes one input but was called on 2"));
}

TEST(FunctionalTest, CallsInOrderPlacesEveryCallAfterItsInputsOnce) {
  nn::KerasTensor x = nn::Input({4});
  nn::KerasTensor h1 = nn::Dense(4)(x);
  nn::KerasTensor h2 = nn::Dense(4)(h1);
  nn::KerasTensor skip = nn::Add()({h1, h2});  // a diamond: h1 is read twice
  nn::KerasTensor aux = nn::Dense(1)(h1);
  std::vector<const nn::LayerCall*> order = nn::CallsInOrder({skip, aux});
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order[0], x.call());
  EXPECT_EQ(order[1], h1.call());
  EXPECT_EQ(order[2], h2.call());
  EXPECT_EQ(order[3], skip.call());
  EXPECT_EQ(order[4], aux.call());
}

TEST(FunctionalTest, ASharedLayerReusesItsVariablesInOneGraph) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 6});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, 6});
  nn::LayerPtr dense = nn::Dense(3, {.name = "shared"});
  Scope scope = g.Scope("shared");
  Output first = dense->Apply(scope, {a});
  Output second = dense->Apply(scope.Sub("call_1"), {b}, /*first_call=*/false);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(first.shape(), second.shape());
  ASSERT_EQ(dense->variables().size(), 2u);  // one kernel, one bias
  int variables = 0;
  for (const Node& node : g.nodes()) variables += node.op->name == "Variable";
  EXPECT_EQ(variables, 2);
}

TEST(FunctionalTest, ASharedLayerCalledOnAnotherShapeIsAnError) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 6});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, 5});
  nn::LayerPtr dense = nn::Dense(3, {.name = "shared"});
  Scope scope = g.Scope("shared");
  dense->Apply(scope, {a});
  dense->Apply(scope.Sub("call_1"), {b}, /*first_call=*/false);
  ASSERT_FALSE(g.ok());
  const std::string message(g.status().message());
  EXPECT_THAT(message, HasSubstr("'shared' (Dense)"));
  EXPECT_THAT(message, HasSubstr("f32[5, 3]"));
  EXPECT_THAT(message, HasSubstr("f32[6, 3]"));
}

}  // namespace
}  // namespace gradflow
