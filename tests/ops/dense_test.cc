// MatMul, BiasAdd and Dense against naive reference loops (benchdnn style):
// forward and backward, every transpose combination, unknown batch (-1) run
// at several concrete batch sizes, fused activations, and shape errors.

#include "ops/dense.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/dnnl_context.h"
#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/losses.h"
#include "tests/util/messages.h"
#include "tests/util/threads.h"

// Note: every test creates its placeholders before any computing node. The
// executor copies all feeds before running kernels, but its arena planner
// treats a placeholder as produced at its position in node-id order, so a
// placeholder created after a computing node may share a buffer with an
// earlier placeholder whose last use has passed (reported to graph/).

namespace gradflow {
namespace {

using testing_util::ExpectMentions;
using testing_util::WithThreads;

// f32 sums of a few dozen products against a double reference.
constexpr float kTolerance = 1e-4f;

Tensor RandomTensor(Shape shape, uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Uniform(lo, hi));
  return t;
}

// A row-major matrix view: element (i, j) of op(m), where op transposes.
struct Mat {
  const Tensor& t;
  bool transposed = false;
  int64_t rows() const { return transposed ? t.shape()[1] : t.shape()[0]; }
  int64_t cols() const { return transposed ? t.shape()[0] : t.shape()[1]; }
  double at(int64_t i, int64_t j) const {
    const float* d = t.data<float>();
    return transposed ? d[j * t.shape()[1] + i] : d[i * t.shape()[1] + j];
  }
};

// op(a) · op(b) in double.
std::vector<double> RefMatMul(Mat a, Mat b) {
  std::vector<double> c(a.rows() * b.cols(), 0.0);
  for (int64_t i = 0; i < a.rows(); ++i) {
    for (int64_t j = 0; j < b.cols(); ++j) {
      double s = 0;
      for (int64_t k = 0; k < a.cols(); ++k) s += a.at(i, k) * b.at(k, j);
      c[i * b.cols() + j] = s;
    }
  }
  return c;
}

void ExpectNear(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want[i], kTolerance * (1 + std::abs(want[i])))
        << what << " element " << i;
  }
}

// ---------------------------------------------------------------- MatMul

struct TransposeCase {
  bool ta, tb;
};

class MatMulTest : public testing::TestWithParam<TransposeCase> {};

TEST_P(MatMulTest, ForwardAndGradientsMatchReference) {
  const auto [ta, tb] = GetParam();
  const int64_t m = 5, k = 7, n = 3;
  Shape a_shape = ta ? Shape{k, m} : Shape{m, k};
  Shape b_shape = tb ? Shape{n, k} : Shape{k, n};
  Tensor a = RandomTensor(a_shape, 1), b = RandomTensor(b_shape, 2), t = RandomTensor({m, n}, 3);

  Graph g;
  auto pa = ops::Placeholder(g, "a", DType::kF32, a_shape);
  auto pb = ops::Placeholder(g, "b", DType::kF32, b_shape);
  auto pt = ops::Placeholder(g, "t", DType::kF32, {m, n});
  auto c = ops::MatMul(g, pa, pb, ta, tb);
  // L = mean((C − T)²) gives a dense, non-uniform dC = 2 (C − T) / (m·n).
  auto loss = ops::MeanSquaredError(g, pt, c);
  auto grads = AddGradients(g, loss, {pa, pb});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ(c.shape(), (Shape{m, n}));

  Session s(g);
  auto plan = s.Compile({c, (*grads)[0], (*grads)[1]});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{pa, a}, {pb, b}, {pt, t}});
  ASSERT_TRUE(out.ok()) << out.status();

  std::vector<double> want_c = RefMatMul({a, ta}, {b, tb});
  ExpectNear((*out)[0], want_c, "C");

  // dC, then d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC, transposed back.
  Tensor dc(DType::kF32, {m, n});
  for (int64_t i = 0; i < m * n; ++i) dc.data<float>()[i] = float(2 * (want_c[i] - t.data<float>()[i]) / (m * n));
  std::vector<double> d_op_a = RefMatMul({dc, false}, {b, !tb});  // [m, k]
  std::vector<double> d_op_b = RefMatMul({a, !ta}, {dc, false});  // [k, n]
  std::vector<double> want_da(m * k), want_db(k * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < k; ++j) want_da[ta ? j * m + i : i * k + j] = d_op_a[i * k + j];
  }
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < n; ++j) want_db[tb ? j * k + i : i * n + j] = d_op_b[i * n + j];
  }
  ExpectNear((*out)[1], want_da, "dA");
  ExpectNear((*out)[2], want_db, "dB");
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, MatMulTest,
                         testing::Values(TransposeCase{false, false}, TransposeCase{true, false},
                                         TransposeCase{false, true}, TransposeCase{true, true}),
                         [](const testing::TestParamInfo<TransposeCase>& info) {
                           return std::string(info.param.ta ? "At" : "A") + (info.param.tb ? "Bt" : "B");
                         });

TEST(MatMulTest, UnknownBatchRunsAtSeveralBatchSizes) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 6});
  auto w = ops::Placeholder(g, "w", DType::kF32, {6, 4});
  auto y = ops::MatMul(g, x, w);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.shape(), (Shape{-1, 4}));
  Session s(g);
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor wv = RandomTensor({6, 4}, 5);
  for (int64_t batch : {1, 4, 9}) {
    Tensor xv = RandomTensor({batch, 6}, 10 + batch);
    auto out = plan->Run({{x, xv}, {w, wv}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].shape(), (Shape{batch, 4}));
    ExpectNear((*out)[0], RefMatMul({xv}, {wv}), "batch " + std::to_string(batch));
  }
}

// dW-style products contract over the batch: the -1 is the inner dimension.
TEST(MatMulTest, UnknownInnerDimension) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  auto dy = ops::Placeholder(g, "dy", DType::kF32, {-1, 4});
  auto dw = ops::MatMul(g, x, dy, /*transpose_a=*/true);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(dw.shape(), (Shape{3, 4}));
  Session s(g);
  auto plan = s.Compile({dw});
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor xv = RandomTensor({5, 3}, 1), dyv = RandomTensor({5, 4}, 2);
  auto out = plan->Run({{x, xv}, {dy, dyv}});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear((*out)[0], RefMatMul({xv, true}, {dyv}), "xT dy");
}

TEST(MatMulTest, InnerDimensionMismatchNamesNodesAndShapes) {
  Graph g;
  auto a = ops::Placeholder(g, "a", DType::kF32, {-1, 3});
  auto b = ops::Placeholder(g, "b", DType::kF32, {4, 2});
  auto c = ops::MatMul(g.Scope("layer"), a, b);
  EXPECT_FALSE(c.valid());
  ExpectMentions(g.status().message(), {"layer/MatMul", "'a' f32[-1, 3]", "'b' f32[4, 2]"});
}

TEST(MatMulTest, RejectsRank3) {
  Graph g;
  auto a = ops::Placeholder(g, "a", DType::kF32, {2, 3, 4});
  auto b = ops::Placeholder(g, "b", DType::kF32, {4, 2});
  EXPECT_FALSE(ops::MatMul(g, a, b).valid());
  EXPECT_NE(std::string(g.status().message()).find("rank-2"), std::string::npos) << g.status();
}

// ---------------------------------------------------------------- BiasAdd

TEST(BiasAddTest, ForwardAndBiasGradientMatchReference) {
  // 300 x 130 = 39000 elements: large enough for the parallel column-sum path,
  // with a partial last block of columns (130 = 2·64 + 2).
  const int64_t rows = 300, cols = 130;
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, cols});
  auto b = ops::Placeholder(g, "b", DType::kF32, {cols});
  auto t = ops::Placeholder(g, "t", DType::kF32, {-1, cols});
  auto y = ops::BiasAdd(g, x, b);
  auto loss = ops::MeanSquaredError(g, t, y);
  auto grads = AddGradients(g, loss, {x, b});
  ASSERT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({y, (*grads)[0], (*grads)[1]});
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor xv = RandomTensor({rows, cols}, 1), bv = RandomTensor({cols}, 2), tv = RandomTensor({rows, cols}, 3);
  auto out = plan->Run({{x, xv}, {b, bv}, {t, tv}});
  ASSERT_TRUE(out.ok()) << out.status();

  std::vector<double> want_y(rows * cols), want_dy(rows * cols), want_db(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      want_y[i] = double(xv.data<float>()[i]) + bv.data<float>()[c];
      want_dy[i] = 2 * (want_y[i] - tv.data<float>()[i]) / double(rows * cols);
      want_db[c] += want_dy[i];
    }
  }
  ExpectNear((*out)[0], want_y, "y");
  ExpectNear((*out)[1], want_dy, "dx");
  ExpectNear((*out)[2], want_db, "db");
}

// The column sums are serial per column: 1 and 2 threads agree bit for bit.
TEST(BiasAddTest, BiasGradientDoesNotDependOnTheThreadCount) {
  const int64_t rows = 1000, cols = 200;
  Graph g;
  auto dy = ops::Placeholder(g, "dy", DType::kF32, {-1, cols});
  auto db = g.AddNode1(g, "BiasAddGrad", {dy});
  Session s(g);
  auto plan = s.Compile({db});
  ASSERT_TRUE(plan.ok()) << plan.status();
  Tensor dyv = RandomTensor({rows, cols}, 9);
  auto one = WithThreads(1, [&] { return plan->Run({{dy, dyv}}); });
  auto two = WithThreads(2, [&] { return plan->Run({{dy, dyv}}); });
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ((*one)[0].ToVector<float>(), (*two)[0].ToVector<float>());
}

TEST(BiasAddTest, BiasLengthMismatchIsAnError) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  auto b = ops::Placeholder(g, "b", DType::kF32, {4});
  EXPECT_FALSE(ops::BiasAdd(g, x, b).valid());
  ExpectMentions(g.status().message(), {"f32[4]", "f32[-1, 3]"});
}

// ---------------------------------------------------------------- Dense

// Reference y = x·W + b for W [in, out] (Keras layout) and its gradients.
struct DenseRef {
  std::vector<double> y, dx, dw, db;
};

double ApplyActivation(const std::string& name, double alpha, double z) {
  if (name == "relu") return z > 0 ? z : alpha * z;
  if (name == "elu") return z > 0 ? z : alpha * (std::exp(z) - 1);
  if (name == "tanh") return std::tanh(z);
  if (name == "sigmoid") return 1 / (1 + std::exp(-z));
  if (name == "exponential") return std::exp(z);
  return z;
}

double ActivationDerivative(const std::string& name, double alpha, double z) {
  if (name == "relu") return z > 0 ? 1 : alpha;
  if (name == "elu") return z > 0 ? 1 : alpha * std::exp(z);
  if (name == "tanh") return 1 - std::tanh(z) * std::tanh(z);
  if (name == "sigmoid") return std::exp(-z) / ((1 + std::exp(-z)) * (1 + std::exp(-z)));
  if (name == "exponential") return std::exp(z);
  return 1;
}

// dy is the upstream gradient [n, out].
DenseRef ReferenceDense(const Tensor& x, const Tensor& w, const Tensor* b, const Tensor& dy,
                        const std::string& act = "", double alpha = 0) {
  const int64_t n = x.shape()[0], in = x.shape()[1], out = w.shape()[1];
  DenseRef r;
  std::vector<double> z = RefMatMul({x}, {w});
  r.y.resize(n * out);
  std::vector<double> dz(n * out);
  for (int64_t i = 0; i < n * out; ++i) {
    if (b) z[i] += b->data<float>()[i % out];
    r.y[i] = ApplyActivation(act, alpha, z[i]);
    dz[i] = dy.data<float>()[i] * ActivationDerivative(act, alpha, z[i]);
  }
  r.dx.assign(n * in, 0.0);
  r.dw.assign(in * out, 0.0);
  r.db.assign(out, 0.0);
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t o = 0; o < out; ++o) {
      const double g = dz[s * out + o];
      r.db[o] += g;
      for (int64_t i = 0; i < in; ++i) {
        r.dx[s * in + i] += g * w.data<float>()[i * out + o];
        r.dw[i * out + o] += g * x.data<float>()[s * in + i];
      }
    }
  }
  return r;
}

// Dense and its backward ops have two implementations (graph/autotune.h);
// each is checked against the reference.
constexpr const char* kImplementations[] = {"inner_product", "matmul"};

void CheckDenseWith(const std::string& implementation, bool with_bias, const ops::FusedActivation& act,
                    double ref_alpha);

// Runs Dense forward and its gradients (AddGradients of an MSE loss against
// random targets) and checks them against the reference, for several batch
// sizes of one plan built with batch -1, with each implementation.
void CheckDense(bool with_bias, const ops::FusedActivation& act, double ref_alpha) {
  for (const char* implementation : kImplementations) {
    SCOPED_TRACE(implementation);
    CheckDenseWith(implementation, with_bias, act, ref_alpha);
  }
}

void CheckDenseWith(const std::string& implementation, bool with_bias, const ops::FusedActivation& act,
                    double ref_alpha) {
  const int64_t in = 19, out = 7;
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, in});
  auto w = ops::Placeholder(g, "w", DType::kF32, {in, out});
  Output b = with_bias ? ops::Placeholder(g, "b", DType::kF32, {out}) : Output{};
  // Upstream gradient dy = 2 (y − t) / (n·out) from an MSE loss against t.
  // (Placeholders come first: see the note on feeds at the top of this file.)
  auto t = ops::Placeholder(g, "t", DType::kF32, {-1, out});
  auto y = ops::Dense(g.Scope("dense"), x, w, b, act);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.shape(), (Shape{-1, out}));
  auto loss = ops::MeanSquaredError(g, t, y);
  std::vector<Output> xs = {x, w};
  if (with_bias) xs.push_back(b);
  auto grads = AddGradients(g, loss, xs);
  ASSERT_TRUE(grads.ok()) << grads.status();

  Session s(g, {.autotune = implementation});
  std::vector<ValueRef> fetches = {y};
  for (const Output& gr : *grads) fetches.push_back(gr);
  auto plan = s.Compile(fetches, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();

  Tensor wv = RandomTensor({in, out}, 7), bv = RandomTensor({out}, 8);
  for (int64_t n : {1, 5, 64}) {
    SCOPED_TRACE(testing::Message() << "batch " << n << " activation '" << act.name << "'");
    Tensor xv = RandomTensor({n, in}, 100 + n), tv = RandomTensor({n, out}, 200 + n);
    std::vector<Feed> feeds = {{x, xv}, {w, wv}, {t, tv}};
    if (with_bias) feeds.push_back({b, bv});
    auto got = plan->Run(feeds);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ((*got)[0].shape(), (Shape{n, out}));

    // The reference forward gives y; dy = 2 (y − t) / (n·out) feeds its backward.
    Tensor zero_dy(DType::kF32, {n, out});
    DenseRef fwd = ReferenceDense(xv, wv, with_bias ? &bv : nullptr, zero_dy, act.name, ref_alpha);
    Tensor dy(DType::kF32, {n, out});
    for (int64_t i = 0; i < n * out; ++i) dy.data<float>()[i] = float(2 * (fwd.y[i] - tv.data<float>()[i]) / (n * out));
    DenseRef ref = ReferenceDense(xv, wv, with_bias ? &bv : nullptr, dy, act.name, ref_alpha);
    ExpectNear((*got)[0], ref.y, "y");
    ExpectNear((*got)[1], ref.dx, "dx");
    ExpectNear((*got)[2], ref.dw, "dW");
    if (with_bias) ExpectNear((*got)[3], ref.db, "db");
  }
}

TEST(DenseTest, WithBiasMatchesReference) { CheckDense(true, {}, 0); }
TEST(DenseTest, WithoutBiasMatchesReference) { CheckDense(false, {}, 0); }
TEST(DenseTest, FusedReluWithNegativeSlope) { CheckDense(true, {.name = "relu", .alpha = 0.1}, 0.1); }
TEST(DenseTest, FusedEluDefaultsToKerasAlpha) { CheckDense(true, {.name = "elu"}, 1.0); }
TEST(DenseTest, FusedTanh) { CheckDense(true, {.name = "tanh"}, 0); }
TEST(DenseTest, FusedSigmoid) { CheckDense(false, {.name = "sigmoid"}, 0); }

// The backward ops on their own, with an arbitrary dy fed directly: the
// [in, out] weight layout must come back as [in, out] (no hidden transpose).
TEST(DenseTest, BackwardOpsMatchReferenceForAFedGradient) {
  const int64_t n = 6, in = 5, out = 3;
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, in});
  auto w = ops::Placeholder(g, "w", DType::kF32, {in, out});
  auto dy = ops::Placeholder(g, "dy", DType::kF32, {-1, out});
  auto dx = g.AddNode1(g, "DenseBackwardData", {dy, w});
  auto dwb = g.AddNode(g, "DenseBackwardWeights", {x, dy}, {{"with_bias", true}});
  auto dw_only = g.AddNode(g, "DenseBackwardWeights", {x, dy}, {{"with_bias", false}});
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(dwb.size(), 2u);
  ASSERT_EQ(dw_only.size(), 1u);
  EXPECT_EQ(dx.shape(), (Shape{-1, in}));
  EXPECT_EQ(dwb[0].shape(), (Shape{in, out}));
  Tensor xv = RandomTensor({n, in}, 1), wv = RandomTensor({in, out}, 2), dyv = RandomTensor({n, out}, 3);
  DenseRef ref = ReferenceDense(xv, wv, nullptr, dyv);
  for (const char* implementation : kImplementations) {
    SCOPED_TRACE(implementation);
    Session s(g, {.autotune = implementation});
    auto plan = s.Compile({dx, dwb[0], dwb[1], dw_only[0]});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto got = plan->Run({{x, xv}, {w, wv}, {dy, dyv}});
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectNear((*got)[0], ref.dx, "dx");
    ExpectNear((*got)[1], ref.dw, "dW");
    ExpectNear((*got)[2], ref.db, "db");
    ExpectNear((*got)[3], ref.dw, "dW (no bias)");
  }
}

// The default route ("first", ops/dense.cc): the matmul for f32 products of
// 16 or more rows on 2+ threads, else the inner product; the same for the
// backward ops. Read back from the plan's profile, which names what ran.
std::vector<std::string> DefaultRoutes(int64_t rows, int threads, DType dtype) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 8});
  auto w = ops::Placeholder(g, "w", DType::kF32, {8, 4});
  auto loss = ops::MeanSquaredError(g, ops::Placeholder(g, "t", DType::kF32, {-1, 4}),
                                    ops::Dense(g.Scope("dense"), x, w, Output{}, {}, dtype));
  auto grads = AddGradients(g, loss, {x, w});
  EXPECT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({(*grads)[0], (*grads)[1]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  plan->set_profiling(true);
  auto run = testing_util::WithThreads(threads, [&] {
    return plan->Run({{"x", RandomTensor({rows, 8}, 1)}, {"w", RandomTensor({8, 4}, 2)}, {"t", RandomTensor({rows, 4}, 3)}});
  });
  EXPECT_TRUE(run.ok()) << run.status();
  std::vector<std::string> routes;
  for (const NodeTime& n : plan->Profile().nodes) {
    if (!n.implementation.empty()) routes.push_back(n.op + "=" + n.implementation);
  }
  std::sort(routes.begin(), routes.end());
  return routes;
}

TEST(DenseTest, TheDefaultRouteIsTheMatMulForF32BatchesOf16OnTwoThreads) {
  const std::vector<std::string> matmul = {"Dense=matmul", "DenseBackwardData=matmul", "DenseBackwardWeights=matmul"};
  const std::vector<std::string> inner = {"Dense=inner_product", "DenseBackwardData=inner_product",
                                          "DenseBackwardWeights=inner_product"};
  EXPECT_EQ(DefaultRoutes(16, 2, DType::kF32), matmul);
  EXPECT_EQ(DefaultRoutes(15, 2, DType::kF32), inner);
  EXPECT_EQ(DefaultRoutes(64, 1, DType::kF32), inner);
  if (CheckBFloat16Support("the bf16 case").ok()) EXPECT_EQ(DefaultRoutes(64, 2, DType::kBF16), inner);
}

TEST(DenseTest, Rank3InputAsksToFlattenFirst) {
  Graph g;
  auto x = ops::Placeholder(g, "images", DType::kF32, {-1, 28, 28});
  auto w = ops::Placeholder(g, "w", DType::kF32, {784, 10});
  auto y = ops::Dense(g.Scope("hidden"), x, w);
  EXPECT_FALSE(y.valid());
  ExpectMentions(g.status().message(), {"hidden/Dense", "'images' f32[-1, 28, 28]", "flatten first"});
}

TEST(DenseTest, FeatureMismatchNamesBothShapes) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 20});
  auto w = ops::Placeholder(g, "w", DType::kF32, {30, 10});
  EXPECT_FALSE(ops::Dense(g, x, w).valid());
  ExpectMentions(g.status().message(), {"f32[-1, 20]", "f32[30, 10]"});
}

TEST(DenseTest, BiasMismatchAndUnknownActivationAreErrors) {
  {
    Graph g;
    auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
    auto w = ops::Placeholder(g, "w", DType::kF32, {4, 3});
    auto b = ops::Placeholder(g, "b", DType::kF32, {4});
    EXPECT_FALSE(ops::Dense(g, x, w, b).valid());
    EXPECT_NE(std::string(g.status().message()).find("bias must be [3]"), std::string::npos) << g.status();
  }
  {
    Graph g;
    auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
    auto w = ops::Placeholder(g, "w", DType::kF32, {4, 3});
    EXPECT_FALSE(ops::Dense(g, x, w, Output{}, {.name = "softmax"}).valid());
    EXPECT_NE(std::string(g.status().message()).find("cannot fuse activation 'softmax'"), std::string::npos)
        << g.status();
  }
}

// Issue 13 item 15: a NaN input row stays NaN through every fusable
// activation (oneDNN 2.6's relu post-op made it 0), and the fused backward
// passes the gradient at the NaN outputs (dz != 0 there, as PyTorch's relu).
TEST(DenseTest, FusedActivationsKeepNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const std::string& name : ops::FusableActivationNames()) {
    SCOPED_TRACE(name);
    Graph g;
    auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
    auto w = ops::Placeholder(g, "w", DType::kF32, {3, 2});
    auto y = ops::Dense(g, x, w, Output{}, {.name = name});
    auto grads = AddGradients(g, y, {x});
    ASSERT_TRUE(grads.ok()) << grads.status();
    Session s(g);
    auto plan = s.Compile({y, (*grads)[0]}, {}, Phase::kTrain);
    ASSERT_TRUE(plan.ok()) << plan.status();
    // Row 0 holds a NaN; row 1 has negative pre-activations (relu's zeros).
    Tensor xv = Tensor::FromVector<float>({2, 3}, {nan, 1, 2, 1, 1, 1}).value();
    Tensor wv = Tensor::FromVector<float>({3, 2}, {-1, -2, -1, -2, -1, -2}).value();
    auto got = plan->Run({{x, xv}, {w, wv}});
    ASSERT_TRUE(got.ok()) << got.status();
    std::vector<float> yv = (*got)[0].ToVector<float>(), dx = (*got)[1].ToVector<float>();
    EXPECT_TRUE(std::isnan(yv[0]) && std::isnan(yv[1])) << yv[0] << ", " << yv[1];
    EXPECT_FALSE(std::isnan(yv[2]) || std::isnan(yv[3])) << yv[2] << ", " << yv[3];
    // dx = dz·Wᵀ: nonzero in row 0 only if dz at the NaN outputs is not zero.
    EXPECT_NE(dx[1], 0.0f);
  }
}

}  // namespace
}  // namespace gradflow
