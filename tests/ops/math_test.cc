// ops/math: every binary op against a naive broadcasting reference loop
// (benchdnn style) over shape pairs that take each kernel path (oneDNN
// binary, oneDNN with swapped inputs, the OpenMP loop); every unary op
// against std:: functions; shape inference (numpy rules, -1 batch, errors
// naming both inputs); gradients through broadcasting.

#include "ops/math.h"

#include <cmath>
#include <limits>
#include <functional>
#include <string>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/reduce.h"
#include "tests/util/messages.h"
#include "tests/util/run_graph.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;
using testing_util::RunGraph;

// Add/Sub/Mul/Max/Min are exact in f32; division is correctly rounded in both
// oneDNN and the loop. Allow one ulp or so anyway.
constexpr double kBinaryTolerance = 1e-6;
// oneDNN's jit exp/log/sqrt are within a few ulp of the f32 result.
constexpr double kUnaryTolerance = 4e-6;

Tensor Random(const Shape& shape, double lo, double hi, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, shape);
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Uniform(lo, hi));
  return t;
}

void ExpectNear(const Tensor& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size())) << what;
  int bad = 0;
  for (size_t i = 0; i < want.size() && bad < 5; ++i) {
    const double g = got.data<float>()[i];
    const bool ok = (std::isnan(want[i]) && std::isnan(g)) || std::abs(g - want[i]) <= tol * std::max(1.0, std::abs(want[i]));
    if (!ok) {
      ++bad;
      ADD_FAILURE() << what << " element " << i << ": got " << g << ", want " << want[i];
    }
  }
}

// Numpy broadcast of two concrete shapes (test-side, written independently).
Shape RefBroadcast(const Shape& a, const Shape& b) {
  const int r = std::max(a.rank(), b.rank());
  std::vector<int64_t> d(r);
  for (int i = 0; i < r; ++i) {
    const int64_t da = i - (r - a.rank()) >= 0 ? a[i - (r - a.rank())] : 1;
    const int64_t db = i - (r - b.rank()) >= 0 ? b[i - (r - b.rank())] : 1;
    d[i] = std::max(da, db);
  }
  return Shape(d);
}

// Flat index into `s` of the output multi-index `idx` (broadcast dims map to 0).
int64_t RefIndex(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t flat = 0;
  const int off = static_cast<int>(idx.size()) - s.rank();
  for (int i = 0; i < s.rank(); ++i) flat = flat * s[i] + (s[i] == 1 ? 0 : idx[i + off]);
  return flat;
}

std::vector<double> RefBinary(const Tensor& a, const Tensor& b, const std::function<double(float, float)>& f) {
  const Shape out = RefBroadcast(a.shape(), b.shape());
  std::vector<double> y(out.NumElements());
  std::vector<int64_t> idx(out.rank(), 0);
  for (int64_t e = 0; e < out.NumElements(); ++e) {
    int64_t rest = e;
    for (int i = out.rank() - 1; i >= 0; --i) {
      idx[i] = rest % out[i];
      rest /= out[i];
    }
    y[e] = f(a.data<float>()[RefIndex(a.shape(), idx)], b.data<float>()[RefIndex(b.shape(), idx)]);
  }
  return y;
}

struct BinaryCase {
  std::string name;
  std::function<Output(const Scope&, Output, Output)> build;
  std::function<double(float, float)> ref;  // evaluated in f32 like the kernels
  double b_lo = -2, b_hi = 2;
};

std::vector<BinaryCase> BinaryCases() {
  return {
      {"Add", [](const Scope& s, Output a, Output b) { return ops::Add(s, a, b); },
       [](float a, float b) { return a + b; }},
      {"Sub", [](const Scope& s, Output a, Output b) { return ops::Sub(s, a, b); },
       [](float a, float b) { return a - b; }},
      {"Mul", [](const Scope& s, Output a, Output b) { return ops::Mul(s, a, b); },
       [](float a, float b) { return a * b; }},
      {"Div", [](const Scope& s, Output a, Output b) { return ops::Div(s, a, b); },
       [](float a, float b) { return a / b; }, 0.25, 2},
      {"Maximum", [](const Scope& s, Output a, Output b) { return ops::Maximum(s, a, b); },
       [](float a, float b) { return std::max(a, b); }},
      {"Minimum", [](const Scope& s, Output a, Output b) { return ops::Minimum(s, a, b); },
       [](float a, float b) { return std::min(a, b); }},
  };
}

// Shape pairs covering: same shape (oneDNN), b broadcast (oneDNN), a broadcast
// (swapped oneDNN for commutative ops and Sub, loop for Div), both broadcast
// (loop), scalars, a middle broadcast dim, and sizes large enough for the
// parallel / chunked loops.
std::vector<std::pair<Shape, Shape>> ShapePairs() {
  return {
      {{4, 5}, {4, 5}},       {{4, 5}, {5}},          {{5}, {4, 5}},       {{4, 1}, {1, 5}},
      {{2, 3, 4}, {3, 1}},    {{3, 1}, {2, 3, 4}},    {{}, {3, 2}},        {{3, 2}, {}},
      {{2, 1, 4}, {2, 3, 1}}, {{2, 3, 4}, {2, 1, 4}}, {{1}, {1}},          {{64, 1000}, {1000}},
      {{1000}, {64, 1000}},   {{40000}, {40000}},     {{300, 1}, {1, 200}}, {{7, 1, 5}, {7, 6, 5}},
  };
}

TEST(MathTest, BinaryOpsMatchReferenceLoop) {
  uint64_t seed = 1;
  for (const BinaryCase& c : BinaryCases()) {
    for (const auto& [sa, sb] : ShapePairs()) {
      const std::string what = c.name + " " + sa.ToString() + " " + sb.ToString();
      SCOPED_TRACE(what);
      Tensor a = Random(sa, -2, 2, ++seed), b = Random(sb, c.b_lo, c.b_hi, ++seed);
      Graph g;
      Output pa = ops::Placeholder(g, "a", DType::kF32, sa), pb = ops::Placeholder(g, "b", DType::kF32, sb);
      Output y = c.build(g, pa, pb);
      ASSERT_TRUE(g.ok()) << g.status();
      EXPECT_EQ(y.shape(), RefBroadcast(sa, sb));
      auto out = RunGraph(g, {y}, {{pa, a}, {pb, b}});
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ((*out)[0].shape(), RefBroadcast(sa, sb));
      ExpectNear((*out)[0], RefBinary(a, b, c.ref), kBinaryTolerance, what);
    }
  }
}

TEST(MathTest, FloatScalarOverloads) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 2});
  std::vector<Output> ys = {ops::Add(g, x, 1.5f), ops::Sub(g, x, 1.0f),  ops::Sub(g, 1.0f, x),
                            ops::Mul(g, x, 0.5f), ops::Div(g, x, 4.0f),  ops::Div(g, 1.0f, x),
                            ops::Maximum(g, x, 1.0f), ops::Minimum(g, x, 1.0f)};
  Tensor xv = Tensor::FromVector<float>({2, 2}, {0.5f, 2.0f, -1.0f, 4.0f}).value();
  auto out = RunGraph(g, ys, {{x, xv}});
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<std::function<double(double)>> ref = {
      [](double v) { return v + 1.5; }, [](double v) { return v - 1; }, [](double v) { return 1 - v; },
      [](double v) { return v * 0.5; }, [](double v) { return v / 4; }, [](double v) { return 1 / v; },
      [](double v) { return std::max(v, 1.0); }, [](double v) { return std::min(v, 1.0); }};
  for (size_t k = 0; k < ys.size(); ++k) {
    std::vector<double> want;
    for (float v : xv.flat<float>()) want.push_back(ref[k](v));
    ExpectNear((*out)[k], want, kBinaryTolerance, "overload " + std::to_string(k));
  }
}

struct UnaryCase {
  std::string name;
  std::function<Output(const Scope&, Output)> build;
  std::function<double(double)> ref;
  double lo = -3, hi = 3;
};

TEST(MathTest, UnaryOpsMatchReference) {
  std::vector<UnaryCase> cases = {
      {"Neg", ops::Neg, [](double x) { return -x; }},
      {"Square", ops::Square, [](double x) { return x * x; }},
      {"Sqrt", ops::Sqrt, [](double x) { return std::sqrt(x); }, 0, 9},
      {"Exp", ops::Exp, [](double x) { return std::exp(x); }},
      {"Log", ops::Log, [](double x) { return std::log(x); }, 1e-3, 10},
      {"Abs", ops::Abs, [](double x) { return std::abs(x); }},
      {"Sign", ops::Sign, [](double x) { return double((x > 0) - (x < 0)); }},
      {"Clip", [](const Scope& s, Output x) { return ops::Clip(s, x, -0.5f, 1.25f); },
       [](double x) { return std::min(std::max(x, -0.5), 1.25); }},
      {"Scale", [](const Scope& s, Output x) { return ops::Scale(s, x, -2.5f); },
       [](double x) { return -2.5 * x; }},
  };
  uint64_t seed = 100;
  for (const UnaryCase& c : cases) {
    for (Shape shape : {Shape{}, Shape{3, 7}, Shape{50, 1000}}) {
      const std::string what = c.name + " " + shape.ToString();
      Tensor x = Random(shape, c.lo, c.hi, ++seed);
      if (c.name == "Sign" && x.num_elements() > 2) x.data<float>()[1] = 0.0f;
      Graph g;
      Output px = ops::Placeholder(g, "x", DType::kF32, shape);
      Output y = c.build(g, px);
      auto out = RunGraph(g, {y}, {{px, x}});
      ASSERT_TRUE(out.ok()) << what << ": " << out.status();
      std::vector<double> want;
      for (float v : x.flat<float>()) want.push_back(c.ref(v));
      ExpectNear((*out)[0], want, kUnaryTolerance, what);
    }
  }
}

// ---------------------------------------------------------------- shapes

TEST(MathTest, BroadcastWithUnknownBatch) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
  Output col = ops::Placeholder(g, "col", DType::kF32, {-1, 1});
  Output row = ops::Constant(g, Tensor::FromVector<float>({3}, {1, 2, 3}).value());
  Output fixed = ops::Constant(g, Tensor::FromVector<float>({4, 3}, std::vector<float>(12, 1.0f)).value());
  Output y = ops::Add(g, x, row);
  Output z = ops::Mul(g, col, row);
  Output w = ops::Sub(g, x, fixed);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.shape(), (Shape{-1, 3}));
  EXPECT_EQ(z.shape(), (Shape{-1, 3}));
  EXPECT_EQ(w.shape(), (Shape{4, 3}));  // the batch must be 1 or 4

  Session s(g);
  auto plan = s.Compile({y, z});
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (int64_t batch : {1, 5}) {
    Tensor xv = Random({batch, 3}, -1, 1, 7), cv = Random({batch, 1}, -1, 1, 8);
    auto out = plan->Run({{x, xv}, {col, cv}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].shape(), (Shape{batch, 3}));
    EXPECT_EQ((*out)[1].shape(), (Shape{batch, 3}));
    for (int64_t i = 0; i < batch; ++i) {
      for (int j = 0; j < 3; ++j) {
        EXPECT_FLOAT_EQ((*out)[0].data<float>()[i * 3 + j], xv.data<float>()[i * 3 + j] + (j + 1));
        EXPECT_FLOAT_EQ((*out)[1].data<float>()[i * 3 + j], cv.data<float>()[i] * (j + 1));
      }
    }
  }

  // [-1, 3] - [4, 3]: batch 1 broadcasts, batch 4 matches, batch 2 is an error
  // when the plan is compiled for it.
  auto wplan = s.Compile({w});
  ASSERT_TRUE(wplan.ok()) << wplan.status();
  EXPECT_TRUE(wplan->Run({{x, Random({1, 3}, -1, 1, 9)}}).ok());
  EXPECT_TRUE(wplan->Run({{x, Random({4, 3}, -1, 1, 9)}}).ok());
  auto bad = wplan->Run({{x, Random({2, 3}, -1, 1, 9)}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("[2, 3]"), std::string::npos) << bad.status();
}

TEST(MathTest, IncompatibleShapesNameBothInputs) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {2, 3});
  Output b = ops::Placeholder(g, "b", DType::kF32, {4});
  Output y = ops::Add(g.Scope("layer"), a, b);
  EXPECT_FALSE(y.valid());
  ASSERT_FALSE(g.ok());
  ExpectMentions(g.status().message(), {"layer/Add", "'a' f32[2, 3]", "'b' f32[4]", "3 vs 4"});
}

TEST(MathTest, UnknownBatchMayNotMoveOffDimZero) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1});
  Output b = ops::Placeholder(g, "b", DType::kF32, {4, 1});
  ops::Mul(g, a, b);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(std::string(g.status().message()).find("only dim 0 may be unknown"), std::string::npos)
      << g.status();
}

TEST(MathTest, RejectsIntegerInputsAndBadClip) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kI32, {2});
  ops::Exp(g, a);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(std::string(g.status().message()).find("ops::Cast"), std::string::npos) << g.status();

  Graph h;
  ops::Clip(h, ops::Placeholder(h, "x", DType::kF32, {2}), 1.0f, -1.0f);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(std::string(h.status().message()).find("lo <= hi"), std::string::npos) << h.status();
}

// ---------------------------------------------------------------- gradients

// d/da and d/db of sum(w * op(a, b)), with a [2, 3] and b [3] broadcast: each
// b gradient is the column sum of the per-element one.
TEST(MathTest, BroadcastGradientsSumBackToInputShape) {
  Tensor av = Tensor::FromVector<float>({2, 3}, {1, 2, 3, -1, 0.5f, 2}).value();
  Tensor bv = Tensor::FromVector<float>({3}, {2, -4, 0.5f}).value();
  Tensor wv = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6}).value();
  struct G {
    std::string name;
    std::function<Output(const Scope&, Output, Output)> build;
    std::function<double(double, double)> da, db;  // partials times w are summed
  };
  std::vector<G> cases = {
      {"Add", [](const Scope& s, Output a, Output b) { return ops::Add(s, a, b); },
       [](double, double) { return 1.0; }, [](double, double) { return 1.0; }},
      {"Sub", [](const Scope& s, Output a, Output b) { return ops::Sub(s, a, b); },
       [](double, double) { return 1.0; }, [](double, double) { return -1.0; }},
      {"Mul", [](const Scope& s, Output a, Output b) { return ops::Mul(s, a, b); },
       [](double, double b) { return b; }, [](double a, double) { return a; }},
      {"Div", [](const Scope& s, Output a, Output b) { return ops::Div(s, a, b); },
       [](double, double b) { return 1 / b; }, [](double a, double b) { return -a / (b * b); }},
      {"Maximum", [](const Scope& s, Output a, Output b) { return ops::Maximum(s, a, b); },
       [](double a, double b) { return a >= b ? 1.0 : 0.0; }, [](double a, double b) { return a >= b ? 0.0 : 1.0; }},
      {"Minimum", [](const Scope& s, Output a, Output b) { return ops::Minimum(s, a, b); },
       [](double a, double b) { return a <= b ? 1.0 : 0.0; }, [](double a, double b) { return a <= b ? 0.0 : 1.0; }},
  };
  for (const G& c : cases) {
    for (bool swap : {false, true}) {  // swap: the broadcast input comes first
      SCOPED_TRACE(c.name + (swap ? " swapped" : ""));
      Graph g;
      Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 3});
      Output b = ops::Placeholder(g, "b", DType::kF32, {3});
      Output w = ops::Constant(g, wv);
      Output y = swap ? c.build(g, b, a) : c.build(g, a, b);
      Output loss = ops::ReduceSum(g, ops::Mul(g, w, y));
      auto grads = AddGradients(g, loss, {a, b});
      ASSERT_TRUE(grads.ok()) << grads.status();
      EXPECT_EQ((*grads)[0].shape(), (Shape{-1, 3}));
      EXPECT_EQ((*grads)[1].shape(), (Shape{3}));
      auto out = RunGraph(g, *grads, {{a, av}, {b, bv}});
      ASSERT_TRUE(out.ok()) << out.status();
      std::vector<double> want_a(6), want_b(3, 0.0);
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 3; ++j) {
          const double x = av.data<float>()[i * 3 + j], z = bv.data<float>()[j], wt = wv.data<float>()[i * 3 + j];
          // With swap, op(b, a): the first argument is b.
          want_a[i * 3 + j] = wt * (swap ? c.db(z, x) : c.da(x, z));
          want_b[j] += wt * (swap ? c.da(z, x) : c.db(x, z));
        }
      }
      ExpectNear((*out)[0], want_a, 1e-5, "da");
      ExpectNear((*out)[1], want_b, 1e-5, "db");
    }
  }
}

TEST(MathTest, UnaryGradients) {
  Tensor xv = Tensor::FromVector<float>({5}, {0.25f, 0.5f, 1.0f, 2.0f, 3.0f}).value();
  struct G {
    std::string name;
    std::function<Output(const Scope&, Output)> build;
    std::function<double(double)> df;
  };
  std::vector<G> cases = {
      {"Neg", ops::Neg, [](double) { return -1.0; }},
      {"Square", ops::Square, [](double x) { return 2 * x; }},
      {"Sqrt", ops::Sqrt, [](double x) { return 0.5 / std::sqrt(x); }},
      {"Exp", ops::Exp, [](double x) { return std::exp(x); }},
      {"Log", ops::Log, [](double x) { return 1 / x; }},
      {"Abs", [](const Scope& s, Output x) { return ops::Abs(s, ops::Neg(s, x)); }, [](double) { return 1.0; }},
      {"Scale", [](const Scope& s, Output x) { return ops::Scale(s, x, 3.0f); }, [](double) { return 3.0; }},
      // Gradient passes strictly inside (0.5, 2): zero at both bounds.
      {"Clip", [](const Scope& s, Output x) { return ops::Clip(s, x, 0.5f, 2.0f); },
       [](double x) { return x > 0.5 && x < 2 ? 1.0 : 0.0; }},
      {"Sign", ops::Sign, [](double) { return 0.0; }},
  };
  for (const G& c : cases) {
    SCOPED_TRACE(c.name);
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {-1});
    Output loss = ops::ReduceSum(g, c.build(g, x));
    auto grads = AddGradients(g, loss, {x});
    ASSERT_TRUE(grads.ok()) << grads.status();
    auto out = RunGraph(g, *grads, {{x, xv}});
    ASSERT_TRUE(out.ok()) << out.status();
    std::vector<double> want;
    for (float v : xv.flat<float>()) want.push_back(c.df(v));
    ExpectNear((*out)[0], want, 1e-5, c.name);
  }
}

// Ties send the whole gradient to the first input, as TensorFlow does.
TEST(MathTest, MaximumTiesGoToFirstInput) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {3});
  Output b = ops::Placeholder(g, "b", DType::kF32, {3});
  Output loss = ops::ReduceSum(g, ops::Maximum(g, a, b));
  auto grads = AddGradients(g, loss, {a, b});
  ASSERT_TRUE(grads.ok()) << grads.status();
  auto out = RunGraph(g, *grads, {{a, Tensor::FromVector<float>({3}, {1, 2, 3}).value()},
                             {b, Tensor::FromVector<float>({3}, {1, 5, 0}).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{1, 0, 1}));
  EXPECT_EQ((*out)[1].ToVector<float>(), (std::vector<float>{0, 1, 0}));
}

// Same-shape inputs need no SumToShapeOf node in the gradient.
TEST(MathTest, SameShapeGradientHasNoReduction) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 3});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, 3});
  Output loss = ops::ReduceSum(g, ops::Mul(g, a, b));
  ASSERT_TRUE(AddGradients(g, loss, {a, b}).ok());
  for (const Node& n : g.nodes()) {
    if (n.name.starts_with("gradients/Mul")) {
      EXPECT_NE(n.op_name(), "SumToShapeOf") << n.name;
    }
  }
}

// oneDNN 2.6's exp gives inf for NaN and clip_v2 gives lo: Exp and Clip put
// the NaN back, so a NaN gradient clipped by value is not trained on as -lo.
TEST(MathTest, ExpAndClipKeepNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1});
  auto e = ops::Exp(g, x);
  auto c = ops::Clip(g, x, -1, 1);
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({e, c}, {}, Phase::kInfer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto got = plan->Run({{x, Tensor::FromVector<float>({3}, {nan, 0.0f, 5.0f}).value()}});
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<float> ev = (*got)[0].ToVector<float>(), cv = (*got)[1].ToVector<float>();
  EXPECT_TRUE(std::isnan(ev[0])) << ev[0];
  EXPECT_FLOAT_EQ(ev[1], 1.0f);
  EXPECT_TRUE(std::isnan(cv[0])) << cv[0];
  EXPECT_FLOAT_EQ(cv[1], 0.0f);
  EXPECT_FLOAT_EQ(cv[2], 1.0f);
}

}  // namespace
}  // namespace gradflow
