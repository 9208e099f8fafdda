// Keras's mixed_bfloat16 policy on models (nn/dtype_policy.h): Dense layers
// multiply in bf16, everything else, and every variable, stays f32.

#include <cmath>
#include <cstdio>
#include <string>
#include <unistd.h>

#include "core/dnnl_context.h"
#include "gtest/gtest.h"
#include "nn/keras.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/normalization.h"
#include "nn/saving.h"
#include "tests/util/messages.h"

namespace gradflow::nn {
namespace {

using testing_util::ExpectMentions;

// 3 classes of 8 features each, learnable by a small MLP.
void MakeData(Tensor& x, Tensor& y, int64_t n = 192) {
  x = Tensor(DType::kF32, {n, 8});
  y = Tensor(DType::kI32, {n});
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = static_cast<int32_t>(i % 3);
    y.data<int32_t>()[i] = label;
    for (int d = 0; d < 8; ++d) {
      const float noise = float(((i + 3) * (d + 7) * 37) % 19 - 9) / 12.0f;
      x.data<float>()[8 * i + d] = (d % 3 == label ? 1.5f : -0.5f) + noise;
    }
  }
}

Sequential Mlp(bool batch_norm = false) {
  Sequential m({Dense(32, {.activation = "elu", .kernel_initializer = "he_normal", .input_shape = Shape{8}})});
  if (batch_norm) m.Add(BatchNormalization());
  m.Add(Dense(16, {.activation = "relu"}));
  m.Add(Dense(3, {.activation = "softmax"}));
  return m;
}

CompileOptions Options(const std::string& policy) {
  return {.loss = "sparse_categorical_crossentropy",
          .optimizer = optimizers::SGD{.learning_rate = 0.05},
          .metrics = {"accuracy"},
          .dtype_policy = policy};
}

int CountOps(Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op_name() == op;
  return n;
}

class DTypePolicyTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!CheckBFloat16Support("test").ok()) GTEST_SKIP() << "no bf16 on this CPU (" << EffectiveCpuIsaName() << ")";
  }
};

// The same model trains to about the same loss and accuracy, and predicts
// about the same, with every weight still f32.
TEST_F(DTypePolicyTest, MixedBFloat16TrainsLikeFloat32) {
  Tensor x, y;
  MakeData(x, y);
  History history[2];
  Tensor predictions[2];
  for (int k = 0; k < 2; ++k) {
    Sequential m = Mlp(true);
    ASSERT_TRUE(m.Compile(Options(k == 0 ? "float32" : "mixed_bfloat16")).ok());
    auto h = m.Fit(x, y, {.epochs = 8, .batch_size = 16, .verbose = 0});
    ASSERT_TRUE(h.ok()) << h.status();
    history[k] = *h;
    auto p = m.Predict(x);
    ASSERT_TRUE(p.ok()) << p.status();
    predictions[k] = *p;
    for (const LayerPtr& layer : m.layers()) {
      for (const auto& [name, value] : layer->weights()) EXPECT_EQ(value.dtype(), DType::kF32) << name;
    }
  }
  const double loss32 = history[0].history["loss"].back(), loss16 = history[1].history["loss"].back();
  EXPECT_LT(loss16, history[1].history["loss"].front() * 0.5) << "mixed_bfloat16 did not train";
  EXPECT_NEAR(loss16, loss32, 0.05 + 0.1 * loss32);
  EXPECT_NEAR(history[1].history["accuracy"].back(), history[0].history["accuracy"].back(), 0.05);
  double worst = 0;
  for (int64_t i = 0; i < predictions[0].num_elements(); ++i) {
    worst = std::max(worst, double(std::abs(predictions[0].data<float>()[i] - predictions[1].data<float>()[i])));
  }
  EXPECT_LT(worst, 0.1);  // probabilities, after 8 epochs of diverging rounding
}

// Master weights: an update far below bf16's resolution at 1.0 (2^-7) still
// accumulates, because the variable is f32 and only its copy is bf16.
TEST_F(DTypePolicyTest, UpdatesBelowBFloat16ResolutionAccumulate) {
  Sequential m({Dense(1, {.kernel_initializer = "ones", .use_bias = false, .input_shape = Shape{1}})});
  ASSERT_TRUE(m.Compile({.loss = "mse", .optimizer = optimizers::SGD{.learning_rate = 1.0}, .dtype_policy = "mixed_bfloat16"})
                  .ok());
  // y = w·1 computes as bf16(w) = 1 while w > 1 - 2^-9; the target 1 - 5e-5
  // gives dL/dw = 2 (1 - t) = 1e-4, so each step takes 1e-4 off w.
  Tensor x = *Tensor::FromVector(Shape{1, 1}, std::vector<float>{1.0f});
  Tensor t = *Tensor::FromVector(Shape{1, 1}, std::vector<float>{1.0f - 5e-5f});
  ASSERT_TRUE(m.Fit(x, t, {.epochs = 10, .batch_size = 1, .shuffle = false, .verbose = 0}).ok());
  const float w = m.layers()[0]->weights().at("kernel").data<float>()[0];
  EXPECT_NEAR(w, 1.0f - 10 * 1e-4f, 2e-6f) << "a bf16 master weight would have stayed 1";
}

TEST_F(DTypePolicyTest, OnlyDenseComputesInBFloat16AndSummaryAndDotShowIt) {
  Sequential m = Mlp(true);
  ASSERT_TRUE(m.Compile(Options("mixed_bfloat16")).ok());
  for (const LayerPtr& layer : m.layers()) {
    EXPECT_EQ(layer->compute_dtype(), layer->type() == "Dense" ? DType::kBF16 : DType::kF32) << layer->name();
  }
  // Per Dense: x and W cast forward, dz backward (the first layer's dx is
  // not needed, but its dz is): 3 Dense layers -> 9 casts.
  EXPECT_EQ(CountOps(*m.graph(), "Cast"), 9);
  const std::string summary = m.Summary();
  ExpectMentions(summary, {"Compute", "bfloat16", "float32"});
  auto dot = m.ToDot();
  ASSERT_TRUE(dot.ok());
  ExpectMentions(*dot, {"Cast", "bf16"});
  // float32 keeps Keras's table as it was: no Compute column.
  Sequential plain = Mlp();
  ASSERT_TRUE(plain.Compile(Options("float32")).ok());
  EXPECT_EQ(plain.Summary().find("Compute"), std::string::npos);
  EXPECT_EQ(CountOps(*plain.graph(), "Cast"), 0);
}

// Keras's dtype= per layer: a float32 layer in a mixed model, a mixed layer
// in a float32 one.
TEST_F(DTypePolicyTest, LayerPolicyOverridesTheModels) {
  Sequential m = Mlp();
  m.layers()[2]->dtype_policy = "float32";
  ASSERT_TRUE(m.Compile(Options("mixed_bfloat16")).ok());
  EXPECT_EQ(m.layers()[0]->compute_dtype(), DType::kBF16);
  EXPECT_EQ(m.layers()[2]->compute_dtype(), DType::kF32);
  EXPECT_EQ(CountOps(*m.graph(), "Cast"), 6);
  Sequential n = Mlp();
  n.layers()[0]->dtype_policy = "mixed_bfloat16";
  ASSERT_TRUE(n.Compile(Options("float32")).ok());
  EXPECT_EQ(n.layers()[0]->compute_dtype(), DType::kBF16);
  EXPECT_EQ(n.layers()[1]->compute_dtype(), DType::kF32);
}

TEST_F(DTypePolicyTest, UnknownPoliciesAreErrorsThatListTheNames) {
  Sequential m = Mlp();
  ExpectMentions(m.Compile(Options("mixed_float16")).message(),
                 {"CompileOptions::dtype_policy", "mixed_float16", "float32, mixed_bfloat16", "no float16"});
  ExpectMentions(m.Compile(Options("bfloat16")).message(), {"variables in float32"});
  m.layers()[1]->dtype_policy = "float8";
  ExpectMentions(m.Compile(Options("float32")).message(), {"layer 'dense_1'", "float8"});
  EXPECT_FALSE(m.compiled());
}

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
}

// The policies survive gradflow's file, Keras's .keras and .h5, and a clone.
TEST_F(DTypePolicyTest, PoliciesAreSavedAndLoaded) {
  Tensor x, y;
  MakeData(x, y, 48);
  Sequential m = Mlp();
  m.layers()[2]->dtype_policy = "float32";
  ASSERT_TRUE(m.Compile(Options("mixed_bfloat16")).ok());
  auto want = m.Predict(x);
  ASSERT_TRUE(want.ok());
  for (const char* file : {"policy.safetensors", "policy.keras", "policy.h5"}) {
    SCOPED_TRACE(file);
    const std::string path = TempPath(file);
    ASSERT_TRUE(m.Save(path).ok());
    auto loaded = LoadModel(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_TRUE(loaded->compiled());
    EXPECT_EQ(loaded->layers()[0]->compute_dtype(), DType::kBF16);
    EXPECT_EQ(loaded->layers()[1]->compute_dtype(), DType::kBF16);
    auto got = loaded->Predict(x);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(0, std::memcmp(got->raw(), want->raw(), want->num_bytes())) << "same weights, same bf16 path";
    std::remove(path.c_str());
  }
  auto clone = CloneModel(m);
  ASSERT_TRUE(clone.ok()) << clone.status();
  EXPECT_EQ(clone->layers()[2]->dtype_policy, "float32");
  EXPECT_EQ(clone->layers()[0]->dtype_policy, "");
}

}  // namespace
}  // namespace gradflow::nn
