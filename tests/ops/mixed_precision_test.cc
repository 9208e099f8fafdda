// bf16 compute (Keras's mixed_bfloat16 at the op level): Cast between f32 and
// bf16, and the Dense ops on bf16 operands with f32 results, forward and
// backward, with each implementation.
//
// Central differences cannot check a bf16 path (the step would vanish in
// bf16's 8-bit mantissa), so the kernels are checked two ways instead:
// against a reference on the same bf16-rounded operands, where only the
// summation order differs (f32 tolerance), and the whole gradient path
// against f32's, within what bf16's rounding of the operands allows.

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor_ops.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;

constexpr const char* kImplementations[] = {"inner_product", "matmul"};

Tensor RandomTensor(Shape shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Uniform(-1, 1));
  return t;
}

double RoundedToBFloat16(float v) { return BFloat16ToFloat(FloatToBFloat16(v)); }

// A value computed from products of bf16-rounded operands, and the sum of
// the products' magnitudes, which bounds the error bf16's rounding of the
// operands may cause (each product within 2^-7 of the f32 one).
struct RefValue {
  double value = 0, magnitude = 0;
  void Add(double a, double b) {
    value += a * b;
    magnitude += std::abs(a * b);
  }
};

// y = x·W (+ b), dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ dy: what the bf16 kernels
// compute when the operands x, W and dy are rounded to bf16 first.
struct ProductRef {
  std::vector<RefValue> y, dx, dw, db;
};

ProductRef ReferenceOnRoundedOperands(const Tensor& x, const Tensor& w, const Tensor& dy) {
  const int64_t n = x.shape()[0], in = x.shape()[1], out = w.shape()[1];
  auto X = [&](int64_t s, int64_t i) { return RoundedToBFloat16(x.data<float>()[s * in + i]); };
  auto W = [&](int64_t i, int64_t o) { return RoundedToBFloat16(w.data<float>()[i * out + o]); };
  auto D = [&](int64_t s, int64_t o) { return RoundedToBFloat16(dy.data<float>()[s * out + o]); };
  ProductRef r{std::vector<RefValue>(n * out), std::vector<RefValue>(n * in), std::vector<RefValue>(in * out),
               std::vector<RefValue>(out)};
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t o = 0; o < out; ++o) {
      r.db[o].Add(D(s, o), 1.0);
      for (int64_t i = 0; i < in; ++i) {
        r.y[s * out + o].Add(X(s, i), W(i, o));
        r.dx[s * in + i].Add(D(s, o), W(i, o));
        r.dw[i * out + o].Add(X(s, i), D(s, o));
      }
    }
  }
  return r;
}

// Same operands, so only the summation order differs: f32 tolerance.
void ExpectMatches(const Tensor& got, const std::vector<RefValue>& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), DType::kF32) << what;
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want[i].value, 1e-5 * (1 + want[i].magnitude)) << what << " element " << i;
  }
}

TEST(CastTest, RoundsToNearestEvenAndKeepsSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  // 1 + 2^-8 is halfway between bf16's 1 and 1 + 2^-7: ties go to the even 1.
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to the even 1 + 2^-6.
  const std::vector<float> cases = {1.0f,  1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 0.0f, -0.0f,
                                    inf,   -inf,           std::nanf(""),      3.0e38f, -1e-40f};
  const std::vector<float> wanted = {1.0f, 1.0f, 1.0f + 0x1p-6f, -2.5f, 0.0f, -0.0f, inf, -inf, std::nanf(""),
                                     BFloat16ToFloat(FloatToBFloat16(3.0e38f)), -0.0f};  // a denormal flushes to zero
  // Four times over: 44 values reach both the 16-wide conversions and the tail.
  std::vector<float> values, want;
  for (int copy = 0; copy < 4; ++copy) {
    values.insert(values.end(), cases.begin(), cases.end());
    want.insert(want.end(), wanted.begin(), wanted.end());
  }
  const int64_t n = static_cast<int64_t>(values.size());
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {n});
  auto half = ops::Cast(g, x, DType::kBF16);
  auto back = ops::Cast(g, half, DType::kF32);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(half.dtype(), DType::kBF16);
  Session s(g);
  auto plan = s.Compile({back, half});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto got = plan->Run({{x, *Tensor::FromVector(Shape{n}, values)}});
  ASSERT_TRUE(got.ok()) << got.status();
  for (int64_t i = 0; i < n; ++i) {
    const float v = (*got)[0].data<float>()[i];
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(v)) << "element " << i;
    } else {
      EXPECT_EQ(v, want[i]) << "element " << i;
      EXPECT_EQ(std::signbit(v), std::signbit(want[i])) << "element " << i;
    }
    // The graph's cast (16 at a time where the CPU can) and core's agree bit for bit.
    if (!std::isnan(want[i])) {
      EXPECT_EQ((*got)[1].data<uint16_t>()[i], FloatToBFloat16(values[i])) << i;
    }
  }
  auto core_cast = Cast(*Tensor::FromVector(Shape{n}, values), DType::kBF16);
  ASSERT_TRUE(core_cast.ok()) << core_cast.status();
  auto core_back = Cast(*core_cast, DType::kF32);
  ASSERT_TRUE(core_back.ok()) << core_back.status();
  EXPECT_EQ(core_back->data<float>()[2], want[2]);
}

TEST(CastTest, BFloat16ReachesOnlyTheOpsThatTakeIt) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  auto labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  auto half = ops::Cast(g, x, DType::kBF16);
  ops::Relu(g, half);
  ASSERT_FALSE(g.ok());
  ExpectMentions(g.status().message(), {"Relu", "is bf16", "ops::Cast"});
  Graph g2;
  auto l2 = ops::Placeholder(g2, "labels", DType::kI32, {-1});
  ops::Cast(g2, l2, DType::kBF16);
  ExpectMentions(g2.status().message(), {"i32", "bf16 is cast only to and from f32"});
  (void)labels;
  // Core's tensor functions compute, so they refuse bf16 too.
  auto half_tensor = Cast(RandomTensor({2, 3}, 1), DType::kBF16);
  ASSERT_TRUE(half_tensor.ok());
  ExpectMentions(Sum(*half_tensor, 0).status().message(), {"bf16", "Cast it to f32"});
  ExpectMentions(Cast(*Tensor::FromVector(Shape{1}, std::vector<int32_t>{1}), DType::kBF16).status().message(), {"only to and from f32"});
}

// The backward ops on bf16 operands (dy, x and W cast in the graph), each
// implementation, against the reference on the rounded operands.
TEST(MixedPrecisionDenseTest, KernelsMatchAReferenceOnTheRoundedOperands) {
  const int64_t in = 37, out = 11;
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, in});
  auto w = ops::Placeholder(g, "w", DType::kF32, {in, out});
  auto b = ops::Placeholder(g, "b", DType::kF32, {out});
  auto dy = ops::Placeholder(g, "dy", DType::kF32, {-1, out});
  auto xh = ops::Cast(g, x, DType::kBF16), wh = ops::Cast(g, w, DType::kBF16), dyh = ops::Cast(g, dy, DType::kBF16);
  auto y = ops::Dense(g, xh, wh, b);
  auto dx = g.AddNode1(g, "DenseBackwardData", {dyh, wh});
  auto dwb = g.AddNode(g, "DenseBackwardWeights", {xh, dyh}, {{"with_bias", true}});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.dtype(), DType::kF32);
  EXPECT_EQ(dx.dtype(), DType::kF32);
  EXPECT_EQ(dwb[0].dtype(), DType::kF32);
  const Tensor wv = RandomTensor({in, out}, 2), bv = RandomTensor({out}, 3);
  for (const char* implementation : kImplementations) {
    Session s(g, {.autotune = implementation});
    auto plan = s.Compile({y, dx, dwb[0], dwb[1]});
    ASSERT_TRUE(plan.ok()) << plan.status();
    for (int64_t n : {1, 5, 64}) {
      SCOPED_TRACE(testing::Message() << implementation << " batch " << n);
      const Tensor xv = RandomTensor({n, in}, 10 + n), dyv = RandomTensor({n, out}, 20 + n);
      auto got = plan->Run({{x, xv}, {w, wv}, {b, bv}, {dy, dyv}});
      ASSERT_TRUE(got.ok()) << got.status();
      ProductRef ref = ReferenceOnRoundedOperands(xv, wv, dyv);
      for (int64_t i = 0; i < n * out; ++i) ref.y[i].value += bv.data<float>()[i % out];
      ExpectMatches((*got)[0], ref.y, "y");
      ExpectMatches((*got)[1], ref.dx, "dx");
      ExpectMatches((*got)[2], ref.dw, "dW");
      ExpectMatches((*got)[3], ref.db, "db");
    }
  }
}

// A Dense layer's graph under bf16: y and the gradients of an MSE loss.
struct DenseGraph {
  Graph g;
  Output x, w, b, t, y;
  std::vector<Output> grads;
};

void BuildDense(DenseGraph& d, DType compute, const ops::FusedActivation& act) {
  d.x = ops::Placeholder(d.g, "x", DType::kF32, {-1, 29});
  d.w = ops::Placeholder(d.g, "w", DType::kF32, {29, 13});
  d.b = ops::Placeholder(d.g, "b", DType::kF32, {13});
  d.t = ops::Placeholder(d.g, "t", DType::kF32, {-1, 13});
  d.y = ops::Dense(d.g.Scope("dense"), d.x, d.w, d.b, act, compute);
  auto grads = AddGradients(d.g, ops::MeanSquaredError(d.g, d.t, d.y), {d.x, d.w, d.b});
  ASSERT_TRUE(grads.ok()) << grads.status();
  d.grads = *grads;
}

std::vector<Tensor> RunDense(DenseGraph& d, const std::string& implementation, int64_t n) {
  Session s(d.g, {.autotune = implementation});
  auto plan = s.Compile({d.y, d.grads[0], d.grads[1], d.grads[2]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  auto got = plan->Run({{d.x, RandomTensor({n, 29}, 5)}, {d.w, RandomTensor({29, 13}, 6)},
                        {d.b, RandomTensor({13}, 7)}, {d.t, RandomTensor({n, 13}, 8)}});
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() ? *got : std::vector<Tensor>{};
}

// The gradient check of the bf16 path: y and every gradient against f32's.
// bf16 keeps 8 significant bits (relative rounding 2^-9 per operand), so
// each value may be off by about 1% of the largest of its kind.
void CheckAgainstFloat32(const ops::FusedActivation& act) {
  DenseGraph f32, bf16;
  BuildDense(f32, DType::kF32, act);
  BuildDense(bf16, DType::kBF16, act);
  const char* names[] = {"y", "dx", "dW", "db"};
  for (const char* implementation : kImplementations) {
    SCOPED_TRACE(testing::Message() << implementation << " activation '" << act.name << "'");
    std::vector<Tensor> want = RunDense(f32, implementation, 48), got = RunDense(bf16, implementation, 48);
    ASSERT_EQ(got.size(), 4u);
    for (int k = 0; k < 4; ++k) {
      float scale = 0;
      for (float v : want[k].flat<float>()) scale = std::max(scale, std::abs(v));
      for (int64_t i = 0; i < want[k].num_elements(); ++i) {
        ASSERT_NEAR(got[k].data<float>()[i], want[k].data<float>()[i], 1e-2 * scale)
            << names[k] << " element " << i;
      }
    }
    // The same choice gives the same bits on every run.
    std::vector<Tensor> again = RunDense(bf16, implementation, 48);
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(0, std::memcmp(again[k].raw(), got[k].raw(), got[k].num_bytes())) << names[k];
    }
  }
}

TEST(MixedPrecisionDenseTest, GradientsAgreeWithFloat32) { CheckAgainstFloat32({}); }
TEST(MixedPrecisionDenseTest, GradientsAgreeWithFloat32WithFusedElu) { CheckAgainstFloat32({.name = "elu"}); }
TEST(MixedPrecisionDenseTest, GradientsAgreeWithFloat32WithFusedTanh) { CheckAgainstFloat32({.name = "tanh"}); }

// One bf16 copy of each operand per step: x and W are cast once in the
// forward pass and reused by the backward products, dz once for both.
TEST(MixedPrecisionDenseTest, EachOperandIsCastOncePerStep) {
  DenseGraph d;
  BuildDense(d, DType::kBF16, {.name = "relu"});
  int casts = 0;
  for (const Node& node : d.g.nodes()) casts += node.op_name() == "Cast";
  EXPECT_EQ(casts, 3);  // x, W, dz
  // The gradients leave the casts in f32: the master weights' dtype.
  EXPECT_EQ(d.grads[1].dtype(), DType::kF32);
  EXPECT_EQ(d.grads[1].node->op_name(), "DenseBackwardWeights");
}

}  // namespace
}  // namespace gradflow
