// Keras's merge layers (nn/merge_layers.h) on small inputs, against values
// worked out by hand, and their errors.

#include "nn/merge_layers.h"

#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "nn/functional.h"
#include "ops/array.h"

namespace gradflow {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

Tensor Of(Shape shape, std::vector<float> values) {
  Tensor t(DType::kF32, shape);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// `layer` on the tensors `xs`, run once.
std::vector<float> Merge(nn::LayerPtr layer, const std::vector<Tensor>& xs) {
  Graph g;
  std::vector<Output> inputs;
  std::vector<Feed> feeds;
  for (size_t i = 0; i < xs.size(); ++i) {
    std::vector<int64_t> dims = xs[i].shape().dims();
    dims[0] = -1;
    inputs.push_back(ops::Placeholder(g, "x" + std::to_string(i), DType::kF32, Shape(dims)));
    feeds.push_back({inputs.back(), xs[i]});
  }
  Output y = layer->Apply(g.Scope("merge"), inputs);
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return {};
  Session session(g);
  auto plan = session.Compile({y}, {}, Phase::kInfer);
  std::vector<Tensor> fetched;
  EXPECT_TRUE(plan.ok() && plan->Run(feeds, &fetched).ok());
  return std::vector<float>(fetched[0].data<float>(), fetched[0].data<float>() + fetched[0].num_elements());
}

const Tensor kA = Of({2, 2}, {1, 2, 3, 4});
const Tensor kB = Of({2, 2}, {10, -20, 30, -40});
const Tensor kC = Of({2, 2}, {0.5, 0.5, 2, 2});

TEST(MergeLayersTest, ElementwiseMerges) {
  EXPECT_THAT(Merge(nn::Add(), {kA, kB, kC}), ElementsAreArray(std::vector<float>{11.5f, -17.5f, 35, -34}));
  EXPECT_THAT(Merge(nn::Subtract(), {kA, kB}), ElementsAreArray(std::vector<float>{-9.f, 22, -27, 44}));
  EXPECT_THAT(Merge(nn::Multiply(), {kA, kB, kC}), ElementsAreArray(std::vector<float>{5.f, -20, 180, -320}));
  EXPECT_THAT(Merge(nn::Average(), {kA, kB}), ElementsAreArray(std::vector<float>{5.5f, -9, 16.5, -18}));
  EXPECT_THAT(Merge(nn::Maximum(), {kA, kB}), ElementsAreArray(std::vector<float>{10.f, 2, 30, 4}));
  EXPECT_THAT(Merge(nn::Minimum(), {kA, kB}), ElementsAreArray(std::vector<float>{1.f, -20, 3, -40}));
}

TEST(MergeLayersTest, ConcatenateJoinsAlongTheAxis) {
  const Tensor wide = Of({2, 3}, {5, 6, 7, 8, 9, 10});
  // np.concatenate([a, wide], axis=-1)
  EXPECT_THAT(Merge(nn::Concatenate(), {kA, wide}), ElementsAreArray(std::vector<float>{1.f, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
  // Rank 3, the middle axis: [[1,2],[10,-20]] for the first sample.
  const Tensor a3 = Of({2, 1, 2}, {1, 2, 3, 4}), b3 = Of({2, 1, 2}, {10, -20, 30, -40});
  EXPECT_THAT(Merge(nn::Concatenate(1), {a3, b3}), ElementsAreArray(std::vector<float>{1.f, 2, 10, -20, 3, 4, 30, -40}));
}

TEST(MergeLayersTest, ShapesThatDoNotMergeNameTheLayerAndTheShapes) {
  nn::KerasTensor a = nn::Input({3}), b = nn::Input({4}), c = nn::Input({5, 2});
  absl::Status add = nn::Add("sum")({a, b}).status();
  EXPECT_THAT(std::string(add.message()), HasSubstr("'sum' (Add) needs inputs of one shape"));
  EXPECT_THAT(std::string(add.message()), HasSubstr("[f32[-1, 3], f32[-1, 4]]"));
  absl::Status concat = nn::Concatenate(-1, "joined")({a, c}).status();
  EXPECT_THAT(std::string(concat.message()), HasSubstr("cannot be joined"));
  absl::Status three = nn::Subtract("diff")({a, a, a}).status();
  EXPECT_THAT(std::string(three.message()), HasSubstr("takes exactly 2 inputs"));
  absl::Status one = nn::Concatenate()({a}).status();
  EXPECT_THAT(std::string(one.message()), HasSubstr("at least 2 inputs"));
  absl::Status axis = nn::Concatenate(5)({a, a}).status();
  EXPECT_THAT(std::string(axis.message()), HasSubstr("axis 5 is out of range"));
  EXPECT_TRUE(nn::Concatenate()({a, b}).ok());
  EXPECT_EQ(nn::Concatenate()({a, b}).shape(), Shape({-1, 7}));
}

}  // namespace
}  // namespace gradflow
