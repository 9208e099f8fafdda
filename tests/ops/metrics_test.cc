// Metric values on fixed inputs (Keras's documentation examples where they
// exist), argmax ties and axes, shape errors, and that metrics stop gradients.
//
// Every test creates its placeholders before any computing node (see the
// note in dense_test.cc on the executor's feed buffers).

#include "ops/metrics.h"

#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/losses.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;

Tensor F32(Shape shape, std::vector<float> v) { return Tensor::FromVector<float>(std::move(shape), v).value(); }
Tensor I32(Shape shape, std::vector<int32_t> v) { return Tensor::FromVector<int32_t>(std::move(shape), v).value(); }

// Builds op(a, b) over placeholders with batch -1 and returns its value.
template <typename Build>
absl::StatusOr<Tensor> Run2(const Tensor& a, const Tensor& b, Build build) {
  Graph g;
  Shape sa = a.shape(), sb = b.shape();
  if (sa.rank() > 0) sa[0] = -1;
  if (sb.rank() > 0) sb[0] = -1;
  auto pa = ops::Placeholder(g, "a", a.dtype(), sa);
  auto pb = ops::Placeholder(g, "b", b.dtype(), sb);
  Output y = build(g, pa, pb);
  if (!g.ok()) return g.status();
  Session s(g);
  auto plan = s.Compile({y});
  if (!plan.ok()) return plan.status();
  auto out = plan->Run({{pa, a}, {pb, b}});
  if (!out.ok()) return out.status();
  return (*out)[0];
}

float Scalar(const absl::StatusOr<Tensor>& t) {
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return -1;
  EXPECT_EQ(t->shape(), Shape{});
  return t->data<float>()[0];
}

// ---------------------------------------------------------------- Argmax

TEST(ArgmaxTest, LastAxisTakesTheFirstMaxOnTies) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  auto a = ops::Argmax(g, x);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(a.dtype(), DType::kI32);
  EXPECT_EQ(a.shape(), Shape{-1});
  Session s(g);
  auto plan = s.Compile({a});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, F32({3, 4}, {1, 5, 5, 0,  // tie: first
                                         -3, -2, -1, -4,  //
                                         7, 7, 7, 7})}});  // all equal: 0
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToVector<int32_t>(), (std::vector<int32_t>{1, 2, 0}));
}

TEST(ArgmaxTest, AnyAxisOfARank3Tensor) {
  // x[i][j][k] = values below, shape [2, 3, 2].
  Tensor xv = F32({2, 3, 2}, {0, 9, 4, 1, 2, 8,  //
                              5, 3, 1, 7, 6, 2});
  for (auto [axis, shape, want] : std::vector<std::tuple<int, Shape, std::vector<int32_t>>>{
           {0, {3, 2}, {1, 0, 0, 1, 1, 0}},
           {1, {2, 2}, {1, 0, 2, 1}},
           {2, {2, 3}, {1, 0, 1, 0, 1, 0}},
           {-2, {2, 2}, {1, 0, 2, 1}}}) {
    SCOPED_TRACE(axis);
    Graph g;
    auto x = ops::Placeholder(g, "x", DType::kF32, {2, 3, 2});
    auto a = ops::Argmax(g, x, axis);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(a.shape(), shape);
    Session s(g);
    auto plan = s.Compile({a});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto out = plan->Run({{x, xv}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].ToVector<int32_t>(), want);
  }
}

TEST(ArgmaxTest, AxisOutOfRangeIsAnError) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  EXPECT_FALSE(ops::Argmax(g.Scope("pred"), x, 2).valid());
  ExpectMentions(g.status().message(), {"pred/Argmax", "axis 2", "f32[-1, 4]"});
}

// ---------------------------------------------------------------- Equal

TEST(EqualTest, F32AndI32) {
  auto f = Run2(F32({2, 2}, {1, 2, 3, 4}), F32({2, 2}, {1, 0, 3, 5}), [](Graph& g, Output a, Output b) {
    return ops::Equal(g, a, b);
  });
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->ToVector<float>(), (std::vector<float>{1, 0, 1, 0}));
  auto i = Run2(I32({3}, {7, 8, 9}), I32({3}, {7, 8, 0}), [](Graph& g, Output a, Output b) {
    return ops::Equal(g, a, b);
  });
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->dtype(), DType::kF32);
  EXPECT_EQ(i->ToVector<float>(), (std::vector<float>{1, 1, 0}));
}

TEST(EqualTest, DtypeOrShapeMismatchIsAnError) {
  auto dtype = Run2(F32({2}, {1, 2}), I32({2}, {1, 2}), [](Graph& g, Output a, Output b) {
    return ops::Equal(g, a, b);
  });
  ASSERT_FALSE(dtype.ok());
  EXPECT_NE(std::string(dtype.status().message()).find("same dtype"), std::string::npos) << dtype.status();
  auto shape = Run2(F32({2, 2}, {1, 2, 3, 4}), F32({2, 1}, {1, 2}), [](Graph& g, Output a, Output b) {
    return ops::Equal(g, a, b);
  });
  ASSERT_FALSE(shape.ok());
  ExpectMentions(shape.status().message(), {"f32[-1, 2]", "f32[-1, 1]"});
}

// ---------------------------------------------------------------- accuracies

auto SparseAccuracy = [](Graph& g, Output a, Output b) { return ops::SparseCategoricalAccuracy(g, a, b); };
auto CategoricalAccuracy = [](Graph& g, Output a, Output b) { return ops::CategoricalAccuracy(g, a, b); };

// Keras's documentation example: y_true [[2], [1]], y_pred [[0.1, 0.6, 0.3],
// [0.05, 0.95, 0]] -> 0.5.
TEST(SparseCategoricalAccuracyTest, MatchesKerasExample) {
  Tensor y = F32({2, 3}, {0.1f, 0.6f, 0.3f, 0.05f, 0.95f, 0});
  EXPECT_FLOAT_EQ(Scalar(Run2(I32({2, 1}, {2, 1}), y, SparseAccuracy)), 0.5f);
  EXPECT_FLOAT_EQ(Scalar(Run2(I32({2}, {2, 1}), y, SparseAccuracy)), 0.5f);
}

TEST(SparseCategoricalAccuracyTest, CountsRowsAndTiesTakeTheFirstClass) {
  // Row 2 ties classes 0 and 2: argmax 0. Row 3 has an out-of-range label: a miss.
  Tensor y = F32({4, 3}, {0, 1, 0,  //
                          3, 2, 1,  //
                          5, 1, 5,  //
                          0, 0, 1});
  EXPECT_FLOAT_EQ(Scalar(Run2(I32({4}, {1, 0, 2, 7}), y, SparseAccuracy)), 0.5f);
  EXPECT_FLOAT_EQ(Scalar(Run2(I32({4}, {1, 0, 0, 2}), y, SparseAccuracy)), 1.0f);
}

TEST(SparseCategoricalAccuracyTest, LargeBatch) {
  const int64_t n = 5000, c = 10;
  std::vector<float> y(n * c, 0.0f);
  std::vector<int32_t> labels(n);
  int hits = 0;
  for (int64_t r = 0; r < n; ++r) {
    y[r * c + (r * 7) % c] = 1;
    labels[r] = static_cast<int32_t>((r * 3) % c);
    hits += (r * 7) % c == (r * 3) % c;
  }
  EXPECT_FLOAT_EQ(Scalar(Run2(I32({n}, labels), F32({n, c}, y), SparseAccuracy)), float(hits) / n);
}

TEST(SparseCategoricalAccuracyTest, LabelShapeMismatchIsAnError) {
  auto r = Run2(I32({2, 3}, {0, 0, 0, 0, 0, 0}), F32({2, 3}, std::vector<float>(6)), SparseAccuracy);
  ASSERT_FALSE(r.ok());
  ExpectMentions(r.status().message(), {"i32[-1, 3]", "f32[-1, 3]"});
}

// Keras's documentation example: y_true [[0, 0, 1], [0, 1, 0]], y_pred
// [[0.1, 0.9, 0.8], [0.05, 0.95, 0]] -> 0.5.
TEST(CategoricalAccuracyTest, MatchesKerasExample) {
  EXPECT_FLOAT_EQ(Scalar(Run2(F32({2, 3}, {0, 0, 1, 0, 1, 0}), F32({2, 3}, {0.1f, 0.9f, 0.8f, 0.05f, 0.95f, 0}),
                              CategoricalAccuracy)),
                  0.5f);
}

// Keras's documentation example: y_true [[1], [1], [0], [0]], y_pred [[0.98],
// [1], [0], [0.6]] -> 0.75; with threshold 0.7 -> 1.0.
TEST(BinaryAccuracyTest, MatchesKerasExampleAndHonoursTheThreshold) {
  Tensor t = F32({4, 1}, {1, 1, 0, 0});
  Tensor y = F32({4, 1}, {0.98f, 1, 0, 0.6f});
  EXPECT_FLOAT_EQ(Scalar(Run2(t, y, [](Graph& g, Output a, Output b) { return ops::BinaryAccuracy(g, a, b); })),
                  0.75f);
  EXPECT_FLOAT_EQ(
      Scalar(Run2(t, y, [](Graph& g, Output a, Output b) { return ops::BinaryAccuracy(g, a, b, 0.7); })), 1.0f);
}

TEST(BinaryAccuracyTest, MeanOverLastAxisThenBatch) {
  // Row 0: 2 of 2 right; row 1: 1 of 2 right -> (1 + 0.5) / 2.
  EXPECT_FLOAT_EQ(Scalar(Run2(F32({2, 2}, {1, 0, 1, 1}), F32({2, 2}, {0.9f, 0.1f, 0.2f, 0.8f}),
                              [](Graph& g, Output a, Output b) { return ops::BinaryAccuracy(g, a, b); })),
                  0.75f);
}

// ---------------------------------------------------------------- no gradients

TEST(MetricsTest, StopGradientsSilently) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  auto t = ops::Placeholder(g, "t", DType::kF32, {-1, 3});
  // A loss that depends on x only through metric ops: x gets no gradient
  // (zeros), and AddGradients does not fail.
  auto eq = ops::Equal(g, x, t);
  auto acc = ops::CategoricalAccuracy(g, t, x);
  auto loss = ops::MeanSquaredError(g, t, eq);
  auto grads = AddGradients(g, loss, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  auto grads2 = AddGradients(g, acc, {x});
  ASSERT_TRUE(grads2.ok()) << grads2.status();
  Session s(g);
  auto plan = s.Compile({(*grads)[0], (*grads2)[0]});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{x, F32({1, 3}, {1, 2, 3})}, {t, F32({1, 3}, {1, 0, 3})}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ((*out)[1].ToVector<float>(), (std::vector<float>{0, 0, 0}));
}

}  // namespace
}  // namespace gradflow
