// ops/softmax: Softmax and LogSoftmax against naive double reference loops
// (forward, the backward primitives, and gradients through AddGradients).

#include "ops/softmax.h"

#include <cmath>
#include <vector>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "tests/ops/op_grad_check.h"

namespace gradflow {
namespace {

constexpr double kTolerance = 1e-5;
// LogSoftmax's forward loop is ~1 ulp of |y|; oneDNN 2.6.3's jit
// logsoftmax_forward was off by 3.5e-6 and would fail this.
constexpr double kLogSoftmaxTolerance = 1e-6;

// Reference softmax / log-softmax of each row of `depth` values, in double.
std::vector<double> RefSoftmax(const std::vector<float>& x, int64_t depth, bool log) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / depth; ++r) {
    const float* row = &x[r * depth];
    double max = row[0];
    for (int64_t j = 1; j < depth; ++j) max = std::max<double>(max, row[j]);
    double sum = 0;
    for (int64_t j = 0; j < depth; ++j) sum += std::exp(row[j] - max);
    for (int64_t j = 0; j < depth; ++j) {
      y[r * depth + j] = log ? row[j] - max - std::log(sum) : std::exp(row[j] - max) / sum;
    }
  }
  return y;
}

Tensor RandomTensor(Shape shape, double lo, double hi, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, std::move(shape));
  for (float& v : t.flat<float>()) v = static_cast<float>(rng.Uniform(lo, hi));
  return t;
}

std::vector<Tensor> RunGraph(Graph& g, std::vector<ValueRef> fetches, std::vector<Feed> feeds) {
  EXPECT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile(fetches, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  auto out = plan->Run(feeds);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>{};
}

TEST(SoftmaxTest, ForwardMatchesReferenceAndRowsSumToOne) {
  for (Shape shape : {Shape{5, 10}, Shape{2, 3, 7}, Shape{1, 1}}) {
    SCOPED_TRACE(shape.ToString());
    Graph g;
    Shape build_shape = shape;
    build_shape[0] = -1;
    Output x = ops::Placeholder(g, "x", DType::kF32, build_shape);
    Output y = ops::Softmax(g, x);
    Output log_y = ops::LogSoftmax(g, x);
    EXPECT_EQ(y.shape(), build_shape);
    Tensor xv = RandomTensor(shape, -5, 5, 7);
    auto out = RunGraph(g, {y, log_y}, {{x, xv}});
    ASSERT_EQ(out.size(), 2u);
    const int64_t depth = shape[shape.rank() - 1];
    std::vector<double> want = RefSoftmax(xv.ToVector<float>(), depth, false);
    std::vector<double> want_log = RefSoftmax(xv.ToVector<float>(), depth, true);
    const float* got = out[0].data<float>();
    const float* got_log = out[1].data<float>();
    for (int64_t r = 0; r < xv.num_elements() / depth; ++r) {
      double sum = 0;
      for (int64_t j = 0; j < depth; ++j) {
        int64_t i = r * depth + j;
        EXPECT_NEAR(got[i], want[i], kTolerance);
        EXPECT_NEAR(got_log[i], want_log[i],
                    kLogSoftmaxTolerance * std::max(1.0, std::abs(want_log[i])));
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << r;
    }
  }
}

TEST(SoftmaxTest, StableForHugeAndTinyLogits) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {2, 3});
  Tensor xv = Tensor::FromVector<float>({2, 3}, {1000, 1001, 1002, -1000, -2000, -1000}).value();
  auto out = RunGraph(g, {ops::Softmax(g, x), ops::LogSoftmax(g, x)}, {{x, xv}});
  ASSERT_EQ(out.size(), 2u);
  std::vector<double> want = RefSoftmax(xv.ToVector<float>(), 3, false);
  std::vector<double> want_log = RefSoftmax(xv.ToVector<float>(), 3, true);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(out[0].data<float>()[i])) << i;
    EXPECT_TRUE(std::isfinite(out[1].data<float>()[i])) << i;
    EXPECT_NEAR(out[0].data<float>()[i], want[i], kTolerance) << i;
    EXPECT_NEAR(out[1].data<float>()[i], want_log[i], kTolerance * std::abs(want_log[i]) + kTolerance)
        << i;
  }
  // -2000 - (-1000 + log 2): log(softmax(x)) would be log(0) = -inf here.
  EXPECT_NEAR(out[1].data<float>()[4], -1000.0 - std::log(2.0), 1e-2);
}

// The backward primitives with an arbitrary dy:
//   softmax     dx = (dy - sum(dy * y)) * y
//   log-softmax dx = dy - softmax(x) * sum(dy)
TEST(SoftmaxTest, BackwardOpsMatchReference) {
  const int64_t depth = 6;
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, depth});
  Output dy = ops::Placeholder(g, "dy", DType::kF32, {-1, depth});
  Output y = ops::Softmax(g, x);
  Output log_y = ops::LogSoftmax(g, x);
  Output dx = g.AddNode1(g, "SoftmaxGrad", {dy, y});
  Output log_dx = g.AddNode1(g, "LogSoftmaxGrad", {dy, log_y});
  EXPECT_EQ(dx.shape(), Shape({-1, depth}));
  Tensor xv = RandomTensor({4, depth}, -3, 3, 11);
  Tensor dyv = RandomTensor({4, depth}, -1, 1, 12);
  auto out = RunGraph(g, {dx, log_dx}, {{x, xv}, {dy, dyv}});
  ASSERT_EQ(out.size(), 2u);
  std::vector<double> s = RefSoftmax(xv.ToVector<float>(), depth, false);
  const float* d = dyv.data<float>();
  for (int64_t r = 0; r < 4; ++r) {
    double dot = 0, sum = 0;
    for (int64_t j = 0; j < depth; ++j) {
      dot += d[r * depth + j] * s[r * depth + j];
      sum += d[r * depth + j];
    }
    for (int64_t j = 0; j < depth; ++j) {
      int64_t i = r * depth + j;
      EXPECT_NEAR(out[0].data<float>()[i], (d[i] - dot) * s[i], kTolerance);
      EXPECT_NEAR(out[1].data<float>()[i], d[i] - s[i] * sum, kTolerance);
    }
  }
}

// Through autodiff, with a non-uniform dy: L = sum(sigmoid(softmax(x))) and
// L = sum(log_softmax(x)) (whose dx = 1 - depth * softmax(x)).
TEST(SoftmaxTest, GradientsThroughAutodiff) {
  const int64_t depth = 5;
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, depth});
  Output y = ops::Softmax(g, x);
  auto g1 = AddGradients(g, ops::Sigmoid(g, y), {x});
  ASSERT_TRUE(g1.ok()) << g1.status();
  auto g2 = AddGradients(g, ops::LogSoftmax(g, x), {x});
  ASSERT_TRUE(g2.ok()) << g2.status();
  Tensor xv = RandomTensor({3, depth}, -2, 2, 5);
  auto out = RunGraph(g, {(*g1)[0], (*g2)[0]}, {{x, xv}});
  ASSERT_EQ(out.size(), 2u);
  std::vector<double> s = RefSoftmax(xv.ToVector<float>(), depth, false);
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<double> dy(depth);
    double dot = 0;
    for (int64_t j = 0; j < depth; ++j) {
      double sig = 1 / (1 + std::exp(-s[r * depth + j]));
      dy[j] = sig * (1 - sig);
      dot += dy[j] * s[r * depth + j];
    }
    for (int64_t j = 0; j < depth; ++j) {
      int64_t i = r * depth + j;
      EXPECT_NEAR(out[0].data<float>()[i], (dy[j] - dot) * s[i], kTolerance);
      EXPECT_NEAR(out[1].data<float>()[i], 1 - depth * s[i], kTolerance * depth);
    }
  }
}

TEST(SoftmaxTest, RankOneWorks) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {4});
  Tensor xv = Tensor::FromVector<float>({4}, {1, 2, 3, 4}).value();
  auto out = RunGraph(g, {ops::Softmax(g, x)}, {{x, xv}});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want = RefSoftmax(xv.ToVector<float>(), 4, false);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[0].data<float>()[i], want[i], kTolerance);
}

TEST(SoftmaxTest, ShapeErrorsNameNodeAndShape) {
  Graph g;
  Output s = ops::Placeholder(g, "s", DType::kF32, {});
  EXPECT_FALSE(ops::Softmax(g.Scope("out"), s).valid());
  std::string msg(g.status().message());
  EXPECT_NE(msg.find("out/Softmax"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'s' f32[]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scalar"), std::string::npos) << msg;

  Graph g2;
  Output dy = ops::Placeholder(g2, "dy", DType::kF32, {-1, 3});
  Output y = ops::Placeholder(g2, "y", DType::kF32, {-1, 4});
  EXPECT_FALSE(g2.AddNode1(g2, "SoftmaxGrad", {dy, y}).valid());
  msg = std::string(g2.status().message());
  EXPECT_NE(msg.find("SoftmaxGrad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'dy' f32[-1, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'y' f32[-1, 4]"), std::string::npos) << msg;

  Graph g3;
  Output labels = ops::Placeholder(g3, "labels", DType::kI32, {-1, 3});
  EXPECT_FALSE(ops::LogSoftmax(g3, labels).valid());
  EXPECT_NE(std::string(g3.status().message()).find("i32"), std::string::npos) << g3.status();
}

TEST(SoftmaxTest, GradChecksPassWithRandomUpstreamGradient) {
  testing_util::CheckOpGradients("Softmax");
  testing_util::CheckOpGradients("LogSoftmax");
}

}  // namespace
}  // namespace gradflow
