// ops/reduce: ReduceSum/Mean/Max against a naive reference over every axis
// subset of small shapes and the layouts that take each loop path; the -1
// batch (count from the concrete shape); axis errors; gradients (broadcast
// back, 1/count, max ties split evenly); SumToShapeOf / BroadcastLike; and
// bitwise determinism across thread counts.

#include "ops/reduce.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "absl/strings/str_join.h"
#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/math.h"
#include "tests/util/messages.h"
#include "tests/util/run_graph.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;
using testing_util::RunGraph;

// The kernels sum in f32 in a different (blocked, vectorized) order than the
// double reference: relative to the sum of |terms|.
constexpr double kSumTolerance = 1e-6;

Tensor Random(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  Tensor t(DType::kF32, shape);
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Uniform(lo, hi));
  return t;
}

enum class Kind { kSum, kMean, kMax };

// Reference reduction in double: (values, sum of |x| per output for the tolerance).
struct Ref {
  Shape shape;  // keepdims=false shape
  std::vector<double> value, magnitude;
};

Ref RefReduce(const Tensor& x, const std::vector<int>& axes, Kind kind) {
  const Shape& s = x.shape();
  std::vector<bool> red(s.rank(), axes.empty());
  for (int a : axes) red[a < 0 ? a + s.rank() : a] = true;
  Ref r;
  std::vector<int64_t> out_dims;
  for (int i = 0; i < s.rank(); ++i) {
    if (!red[i]) out_dims.push_back(s[i]);
  }
  r.shape = Shape(out_dims);
  const int64_t n_out = r.shape.NumElements();
  r.value.assign(n_out, kind == Kind::kMax ? -std::numeric_limits<double>::infinity() : 0.0);
  r.magnitude.assign(n_out, 0.0);
  std::vector<int64_t> count(n_out, 0);
  for (int64_t e = 0; e < x.num_elements(); ++e) {
    int64_t rest = e, o = 0, mult = 1;
    for (int i = s.rank() - 1; i >= 0; --i) {
      const int64_t idx = rest % s[i];
      rest /= s[i];
      if (!red[i]) {
        o += idx * mult;
        mult *= s[i];
      }
    }
    const double v = x.data<float>()[e];
    r.value[o] = kind == Kind::kMax ? std::max(r.value[o], v) : r.value[o] + v;
    r.magnitude[o] += std::abs(v);
    ++count[o];
  }
  if (kind == Kind::kMean) {
    for (int64_t o = 0; o < n_out; ++o) {
      r.value[o] /= count[o];
      r.magnitude[o] /= count[o];
    }
  }
  return r;
}

Output Build(Kind kind, const Scope& s, Output x, std::vector<int> axes, bool keepdims) {
  switch (kind) {
    case Kind::kSum: return ops::ReduceSum(s, x, axes, keepdims);
    case Kind::kMean: return ops::ReduceMean(s, x, axes, keepdims);
    case Kind::kMax: return ops::ReduceMax(s, x, axes, keepdims);
  }
  return {};
}

const char* Name(Kind k) { return k == Kind::kSum ? "sum" : k == Kind::kMean ? "mean" : "max"; }

void CheckAgainstReference(Kind kind, const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  const std::string what = std::string(Name(kind)) + " of " + x.shape().ToString() + " over [" +
                           absl::StrJoin(axes, ",") + "]" + (keepdims ? " keepdims" : "");
  SCOPED_TRACE(what);
  Graph g;
  Output px = ops::Placeholder(g, "x", DType::kF32, x.shape());
  Output y = Build(kind, g, px, axes, keepdims);
  ASSERT_TRUE(g.ok()) << g.status();
  auto out = RunGraph(g, {y}, {{px, x}});
  ASSERT_TRUE(out.ok()) << out.status();
  Ref ref = RefReduce(x, axes, kind);
  ASSERT_EQ((*out)[0].num_elements(), ref.shape.NumElements());
  EXPECT_EQ((*out)[0].shape().rank(), keepdims ? x.shape().rank() : ref.shape.rank());
  if (!keepdims) {
    EXPECT_EQ((*out)[0].shape(), ref.shape);
  }
  int bad = 0;
  for (int64_t o = 0; o < ref.shape.NumElements() && bad < 5; ++o) {
    const double got = (*out)[0].data<float>()[o];
    const double tol = kind == Kind::kMax ? 0 : kSumTolerance * std::max(1.0, ref.magnitude[o]);
    if (std::abs(got - ref.value[o]) > tol) {
      ++bad;
      ADD_FAILURE() << "output " << o << ": got " << got << ", want " << ref.value[o];
    }
  }
}

// Every subset of axes of a rank-3 shape, with and without keepdims.
TEST(ReduceTest, AllAxisSubsetsMatchReference) {
  Tensor x = Random({3, 4, 5}, 1);
  for (Kind kind : {Kind::kSum, Kind::kMean, Kind::kMax}) {
    for (int mask = 0; mask < 8; ++mask) {
      std::vector<int> axes;
      for (int i = 0; i < 3; ++i) {
        if (mask & (1 << i)) axes.push_back(i);
      }
      for (bool keepdims : {false, true}) CheckAgainstReference(kind, x, axes, keepdims);
    }
  }
}

// Layouts for each loop path: inner kept dim (blocked, incl. > one block),
// inner reduced dim, alternating runs, size-1 dims, a long full reduction
// (chunked), a scalar, negative axes, and sizes above the parallel threshold.
TEST(ReduceTest, LoopPathsMatchReference) {
  struct C {
    Shape shape;
    std::vector<int> axes;
  };
  std::vector<C> cases = {
      {{64, 1000}, {0}},    {{64, 1000}, {1}},     {{1000, 3}, {0}},       {{5, 600}, {0}},
      {{3, 1, 4}, {1}},     {{3, 1, 4}, {0, 1}},   {{2, 3, 4, 5}, {0, 2}}, {{2, 3, 4, 5}, {1, 3}},
      {{100003}, {}},       {{7, 20000}, {}},      {{}, {}},               {{4, 5}, {-1}},
      {{4, 5, 6}, {-3, -1}}, {{1, 1}, {0}},        {{300, 200}, {0}},      {{6, 1, 7000}, {2}},
  };
  uint64_t seed = 10;
  for (const C& c : cases) {
    Tensor x = Random(c.shape, ++seed);
    for (Kind kind : {Kind::kSum, Kind::kMean, Kind::kMax}) CheckAgainstReference(kind, x, c.axes, false);
  }
}

TEST(ReduceTest, InfersShapes) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3, 4});
  EXPECT_EQ(ops::ReduceSum(g, x).shape(), Shape{});
  EXPECT_EQ(ops::ReduceSum(g, x, {}, true).shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(ops::ReduceMean(g, x, {0}).shape(), (Shape{3, 4}));
  EXPECT_EQ(ops::ReduceMean(g, x, {0}, true).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(ops::ReduceMax(g, x, {-1}).shape(), (Shape{-1, 3}));
  EXPECT_EQ(ops::ReduceMax(g, x, {2, 1}, true).shape(), (Shape{-1, 1, 1}));
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST(ReduceTest, AxisErrorsNameNodeAndShape) {
  {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
    ops::ReduceSum(g.Scope("loss"), x, {2});
    ASSERT_FALSE(g.ok());
    ExpectMentions(g.status().message(), {"loss/ReduceSum", "'x' f32[-1, 3]", "axis 2 is out of range", "-2..1"});
  }
  {
    Graph g;
    ops::ReduceMean(g, ops::Placeholder(g, "x", DType::kF32, {2, 3}), {1, -1});
    ASSERT_FALSE(g.ok());
    EXPECT_NE(std::string(g.status().message()).find("listed twice"), std::string::npos) << g.status();
  }
  {
    Graph g;
    ops::ReduceMax(g, ops::Placeholder(g, "labels", DType::kI32, {2}));
    ASSERT_FALSE(g.ok());
    EXPECT_NE(std::string(g.status().message()).find("must be f32"), std::string::npos) << g.status();
  }
}

// The mean over the batch divides by the batch fed, not by anything known at
// build time; its gradient is 1/batch everywhere.
TEST(ReduceTest, MeanOverUnknownBatchUsesConcreteCount) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 2});
  Output m = ops::ReduceMean(g, x, {0});
  Output all = ops::ReduceMean(g, x);
  Output rows = ops::ReduceSum(g, x, {1});
  ASSERT_EQ(m.shape(), Shape{2});
  ASSERT_EQ(rows.shape(), Shape{-1});
  auto grads = AddGradients(g, all, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({m, all, rows, (*grads)[0]});
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (int64_t batch : {1, 3, 8}) {
    Tensor xv(DType::kF32, {batch, 2});
    for (int64_t i = 0; i < batch; ++i) {
      xv.data<float>()[2 * i] = static_cast<float>(i);
      xv.data<float>()[2 * i + 1] = 1.0f;
    }
    auto out = plan->Run({{x, xv}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[0], (batch - 1) / 2.0f);
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[1], 1.0f);
    EXPECT_FLOAT_EQ((*out)[1].data<float>()[0], ((batch - 1) / 2.0f + 1.0f) / 2.0f);
    ASSERT_EQ((*out)[2].shape(), Shape{batch});
    for (int64_t i = 0; i < batch; ++i) EXPECT_FLOAT_EQ((*out)[2].data<float>()[i], i + 1.0f);
    ASSERT_EQ((*out)[3].shape(), (Shape{batch, 2}));
    for (float v : (*out)[3].flat<float>()) EXPECT_FLOAT_EQ(v, 1.0f / (2 * batch));
  }
}

// d/dx of sum(w * reduce(x)), against the definition.
TEST(ReduceTest, GradientsBroadcastBack) {
  Tensor xv = Random({2, 3, 4}, 5);
  for (Kind kind : {Kind::kSum, Kind::kMean, Kind::kMax}) {
    for (bool keepdims : {false, true}) {
      SCOPED_TRACE(std::string(Name(kind)) + (keepdims ? " keepdims" : ""));
      Graph g;
      Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 3, 4});
      Output y = Build(kind, g, x, {0, 2}, keepdims);
      Tensor wv = Random(keepdims ? Shape{1, 3, 1} : Shape{3}, 6);
      Output loss = ops::ReduceSum(g, ops::Mul(g, y, ops::Constant(g, wv)));
      auto grads = AddGradients(g, loss, {x});
      ASSERT_TRUE(grads.ok()) << grads.status();
      auto out = RunGraph(g, {(*grads)[0]}, {{x, xv}});
      ASSERT_TRUE(out.ok()) << out.status();
      ASSERT_EQ((*out)[0].shape(), (Shape{2, 3, 4}));
      for (int j = 0; j < 3; ++j) {
        float mx = -1e30f;
        for (int i = 0; i < 2; ++i) {
          for (int k = 0; k < 4; ++k) mx = std::max(mx, xv.data<float>()[i * 12 + j * 4 + k]);
        }
        for (int i = 0; i < 2; ++i) {
          for (int k = 0; k < 4; ++k) {
            const int e = i * 12 + j * 4 + k;
            double want = wv.data<float>()[j];
            if (kind == Kind::kMean) want /= 8;
            if (kind == Kind::kMax) want = xv.data<float>()[e] == mx ? want : 0.0;
            EXPECT_NEAR((*out)[0].data<float>()[e], want, 1e-6) << "element " << e;
          }
        }
      }
    }
  }
}

// Ties split the gradient evenly among the maximal elements.
TEST(ReduceTest, MaxGradientSplitsTies) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {2, 4});
  Output loss = ops::ReduceSum(g, ops::ReduceMax(g, x, {1}));
  auto grads = AddGradients(g, loss, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  auto out = RunGraph(g, *grads, {{x, Tensor::FromVector<float>({2, 4}, {1, 3, 3, 2, 5, 5, 5, 5}).value()}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{0, 0.5f, 0.5f, 0, 0.25f, 0.25f, 0.25f, 0.25f}));
}

// ---------------------------------------------------------------- SumToShapeOf / BroadcastLike

TEST(ReduceTest, SumToShapeOfAndBroadcastLike) {
  Tensor big = Random({2, 3, 4}, 21);
  Tensor small = Random({3, 1}, 22);
  Graph g;
  Output pb = ops::Placeholder(g, "big", DType::kF32, {2, 3, 4});
  Output ps = ops::Placeholder(g, "small", DType::kF32, {3, 1});
  Output sum = ops::SumToShapeOf(g, pb, ps);
  Output mean = ops::SumToShapeOf(g, pb, ps, true);
  Output bcast = ops::BroadcastLike(g, ps, pb);
  Output bmean = ops::BroadcastLike(g, ps, pb, true);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(sum.shape(), (Shape{3, 1}));
  EXPECT_EQ(bcast.shape(), (Shape{2, 3, 4}));
  auto out = RunGraph(g, {sum, mean, bcast, bmean}, {{pb, big}, {ps, small}});
  ASSERT_TRUE(out.ok()) << out.status();
  for (int j = 0; j < 3; ++j) {
    double s = 0;
    for (int i = 0; i < 2; ++i) {
      for (int k = 0; k < 4; ++k) {
        s += big.data<float>()[i * 12 + j * 4 + k];
        EXPECT_EQ((*out)[2].data<float>()[i * 12 + j * 4 + k], small.data<float>()[j]);
        EXPECT_FLOAT_EQ((*out)[3].data<float>()[i * 12 + j * 4 + k], small.data<float>()[j] / 8);
      }
    }
    EXPECT_NEAR((*out)[0].data<float>()[j], s, 1e-5);
    EXPECT_NEAR((*out)[1].data<float>()[j], s / 8, 1e-6);
  }
}

TEST(ReduceTest, SumToShapeOfRejectsNonBroadcastableShape) {
  Graph g;
  Output a = ops::Placeholder(g, "dy", DType::kF32, {2, 3});
  Output b = ops::Placeholder(g, "bias", DType::kF32, {4});
  ops::SumToShapeOf(g, a, b);
  ASSERT_FALSE(g.ok());
  ExpectMentions(g.status().message(), {"'bias' f32[4]", "'dy' f32[2, 3]", "does not broadcast"});
}

// ---------------------------------------------------------------- determinism

// Same bits on 1 and 2 threads, for each loop path.
TEST(ReduceTest, ResultsDoNotDependOnThreadCount) {
  struct C {
    Shape shape;
    std::vector<int> axes;
  };
  std::vector<C> cases = {{{200003}, {}}, {{512, 300}, {0}}, {{300, 512}, {1}}, {{40, 50, 60}, {0, 2}}};
  const int saved = omp_get_max_threads();
  for (const C& c : cases) {
    Tensor xv = Random(c.shape, 31);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      Graph g;
      Output x = ops::Placeholder(g, "x", DType::kF32, c.shape);
      auto out = RunGraph(g, {ops::ReduceSum(g, x, c.axes), ops::ReduceMean(g, x, c.axes)}, {{x, xv}});
      ASSERT_TRUE(out.ok()) << out.status();
      results.push_back((*out)[0].ToVector<float>());
      auto mean = (*out)[1].ToVector<float>();
      results.back().insert(results.back().end(), mean.begin(), mean.end());
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)), 0)
        << c.shape.ToString();
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace gradflow
