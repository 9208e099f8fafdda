// A model used as a layer of another (Model::operator() on symbolic
// tensors): the outer model trains the inner model's own weights, a frozen
// inner model stays as it is, a model called twice shares its weights, and
// wrong calls are errors that reach Model::Create.

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/merge_layers.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;

Tensor Filled(Shape shape, double phase) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(std::sin(0.7 * i + phase));
  return t;
}

// The encoder: [3] -> Dense(4, tanh) -> Dense(2).
Model Encoder() {
  KerasTensor x = Input({3}, {.name = "features"});
  KerasTensor h = Dense(4, {.activation = "tanh", .name = "encoder_hidden"})(x);
  absl::StatusOr<Model> model = Model::Create({x}, {Dense(2, {.name = "code"})(h)}, "encoder");
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

CompileOptions Mse() { return {.loss = "mse", .optimizer = optimizers::SGD{.learning_rate = 0.1}}; }

std::vector<float> Kernel(const Model& model, const std::string& layer) {
  return model.GetLayer(layer).value()->GetWeights().at("kernel").ToVector<float>();
}

TEST(NestedModelTest, TheOuterModelTrainsTheInnerModelsWeights) {
  Model encoder = Encoder();
  KerasTensor x = Input({3});
  KerasTensor out = Dense(1, {.name = "head"})(encoder(x));
  absl::StatusOr<Model> outer = Model::Create({x}, {out});
  ASSERT_TRUE(outer.ok()) << outer.status();
  EXPECT_EQ(outer->layers().size(), 3u);  // the encoder's two layers and the head
  ASSERT_TRUE(outer->Compile(Mse()).ok());
  const std::vector<float> before = Kernel(*outer, "encoder_hidden");
  ASSERT_TRUE(outer->Fit(Filled({16, 3}, 0.1), Filled({16, 1}, 0.2), {.epochs = 2, .verbose = 0}).ok());
  EXPECT_NE(Kernel(*outer, "encoder_hidden"), before);
  // The encoder holds what the outer model trained: its own predictions use it.
  EXPECT_EQ(Kernel(encoder, "encoder_hidden"), Kernel(*outer, "encoder_hidden"));
  ASSERT_TRUE(encoder.Compile(Mse()).ok());
  auto code = encoder.Predict(Filled({4, 3}, 0.5));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code->shape(), Shape({4, 2}));
}

TEST(NestedModelTest, AFrozenInnerModelStaysAsItIsWhileTheHeadTrains) {
  Model encoder = Encoder();
  for (const LayerPtr& layer : encoder.layers()) layer->trainable = false;
  KerasTensor x = Input({3});
  absl::StatusOr<Model> outer = Model::Create({x}, {Dense(1, {.name = "head"})(encoder(x))});
  ASSERT_TRUE(outer.ok()) << outer.status();
  ASSERT_TRUE(outer->Compile(Mse()).ok());
  const std::vector<float> frozen = Kernel(*outer, "code"), head = Kernel(*outer, "head");
  ASSERT_TRUE(outer->Fit(Filled({16, 3}, 0.1), Filled({16, 1}, 0.2), {.epochs = 2, .verbose = 0}).ok());
  EXPECT_EQ(Kernel(*outer, "code"), frozen);
  EXPECT_NE(Kernel(*outer, "head"), head);
}

TEST(NestedModelTest, AModelCalledTwiceSharesItsWeights) {
  Model encoder = Encoder();
  KerasTensor a = Input({3}, {.name = "a"}), b = Input({3}, {.name = "b"});
  KerasTensor distance = Subtract()({encoder(a), encoder(b)});
  absl::StatusOr<Model> siamese = Model::Create({a, b}, {Dense(1, {.name = "score"})(distance)}, "siamese");
  ASSERT_TRUE(siamese.ok()) << siamese.status();
  ASSERT_TRUE(siamese->Compile(Mse()).ok());
  auto weights = siamese->GetWeights();
  ASSERT_TRUE(weights.ok());
  EXPECT_EQ(weights->size(), 6u);  // two encoder layers and the score, each kernel and bias: once
  // The same input on both sides: the codes cancel, whatever the encoder's weights.
  const Tensor x = Filled({5, 3}, 0.3);
  auto same = siamese->Predict({x, x});
  ASSERT_TRUE(same.ok()) << same.status();
  const std::vector<float> bias = siamese->GetLayer("score").value()->GetWeights().at("bias").ToVector<float>();
  for (float v : same->ToVector<float>()) EXPECT_FLOAT_EQ(v, bias[0]);
  ASSERT_TRUE(siamese->Fit({x, Filled({5, 3}, 0.9)}, Filled({5, 1}, 0.4), {.epochs = 1, .verbose = 0}).ok());
}

TEST(NestedModelTest, ANestedSequentialWorksAndTheOuterModelSavesAndLoads) {
  Sequential inner({Dense(3, {.activation = "relu", .name = "inner_dense", .input_shape = Shape{2}})});
  KerasTensor x = Input({2});
  absl::StatusOr<Model> outer = Model::Create({x}, {Dense(1, {.name = "out"})(inner(x))});
  ASSERT_TRUE(outer.ok()) << outer.status();
  ASSERT_TRUE(outer->Compile(Mse()).ok());
  auto clone = CloneModel(*outer);
  ASSERT_TRUE(clone.ok()) << clone.status();
  ASSERT_TRUE(clone->SetWeights(*outer->GetWeights()).ok());
  ASSERT_TRUE(clone->Compile(Mse()).ok());
  const Tensor data = Filled({4, 2}, 0.7);
  EXPECT_EQ(clone->Predict(data)->ToVector<float>(), outer->Predict(data)->ToVector<float>());
}

TEST(NestedModelTest, WrongCallsAreErrorsThatReachCreate) {
  Model encoder = Encoder();
  KerasTensor wide = Input({5});
  absl::StatusOr<Model> shape = Model::Create({wide}, {encoder(wide)});
  EXPECT_THAT(shape.status().message(),
              HasSubstr("model 'encoder': input 0 ('features') is f32[-1, 3] but was called on f32[-1, 5]"));
  KerasTensor a = Input({3}), b = Input({3});
  std::vector<KerasTensor> two = encoder(std::vector<KerasTensor>{a, b});
  ASSERT_EQ(two.size(), 1u);
  EXPECT_THAT(two[0].status().message(), HasSubstr("model 'encoder' takes 1 inputs but was called on 2"));

  KerasTensor x = Input({3});
  KerasTensor h = Dense(2, {.name = "left"})(x);
  absl::StatusOr<Model> two_outputs = Model::Create({x}, {h, Dense(2, {.name = "right"})(x)}, "two");
  ASSERT_TRUE(two_outputs.ok());
  EXPECT_THAT((*two_outputs)(Input({3})).status().message(), HasSubstr("has 2 outputs; call it on a list"));
}

TEST(NestedModelTest, LayersToDotShowsEveryCallWithItsShapeBeforeCompile) {
  Model encoder = Encoder();
  KerasTensor a = Input({3}, {.name = "a\"quoted"}), b = Input({3}, {.name = "b"});
  absl::StatusOr<Model> siamese =
      Model::Create({a, b}, {Dense(1, {.name = "score"})(Subtract()({encoder(a), encoder(b)}))});
  ASSERT_TRUE(siamese.ok()) << siamese.status();
  auto dot = siamese->LayersToDot();
  ASSERT_TRUE(dot.ok()) << dot.status();
  EXPECT_THAT(*dot, HasSubstr("label=\"a\\\"quoted\\nInputLayer\\nf32[-1, 3]\""));
  EXPECT_THAT(*dot, HasSubstr("label=\"encoder_hidden\\nDense\\nf32[-1, 4]\""));
  EXPECT_THAT(*dot, HasSubstr("label=\"encoder_hidden (call 1)\\nDense\\nf32[-1, 4]\""));
  EXPECT_THAT(*dot, HasSubstr("label=\"score\\nDense\\nf32[-1, 1]\""));
  EXPECT_THAT(*dot, HasSubstr("c0 -> c2;"));  // input a feeds the first encoder call
}

}  // namespace
}  // namespace gradflow::nn
