// Loss values and gradients on tiny fixed inputs, checked against values
// computed by hand (in double) or quoted from the Keras documentation
// examples; label errors; unknown batch; shape errors.
//
// Every test creates its placeholders before any computing node (see the
// note in dense_test.cc on the executor's feed buffers).

#include "ops/losses.h"

#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;

// Single-precision evaluation of values around 1.
constexpr float kTolerance = 1e-5f;

Tensor F32(Shape shape, std::vector<float> v) { return Tensor::FromVector<float>(std::move(shape), v).value(); }
Tensor I32(Shape shape, std::vector<int32_t> v) { return Tensor::FromVector<int32_t>(std::move(shape), v).value(); }

void ExpectValues(const Tensor& got, const std::vector<double>& want, const std::string& what,
                  float tolerance = kTolerance) {
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got.data<float>()[i], want[i], tolerance) << what << " element " << i;
  }
}

enum class Kind { kSparse, kCategorical, kBinary, kMse };

Output MakeLoss(Graph& g, Kind kind, Output t, Output y, bool from_logits) {
  switch (kind) {
    case Kind::kSparse: return ops::SparseCategoricalCrossentropy(g.Scope("loss"), t, y, from_logits);
    case Kind::kCategorical: return ops::CategoricalCrossentropy(g.Scope("loss"), t, y, from_logits);
    case Kind::kBinary: return ops::BinaryCrossentropy(g.Scope("loss"), t, y, from_logits);
    case Kind::kMse: return ops::MeanSquaredError(g.Scope("loss"), t, y);
  }
  return {};
}

// Runs a loss built by `build` on fed targets and y (y's batch is -1): the
// loss tensor and d(sum loss)/dy.
struct ConfiguredRun {
  absl::Status status;
  Tensor loss, dy;
};
ConfiguredRun RunBuiltLoss(const Tensor& targets, const Tensor& y,
                           const std::function<Output(Graph&, Output, Output)>& build) {
  Graph g;
  Shape t_shape = targets.shape(), y_shape = y.shape();
  t_shape[0] = -1;
  y_shape[0] = -1;
  auto pt = ops::Placeholder(g, "targets", targets.dtype(), t_shape);
  auto py = ops::Placeholder(g, "y", DType::kF32, y_shape);
  Output loss = build(g, pt, py);
  ConfiguredRun run;
  if (!g.ok()) {
    run.status = g.status();
    return run;
  }
  auto grads = AddGradients(g, loss, {py});
  EXPECT_TRUE(grads.ok()) << grads.status();
  Session s(g);
  auto plan = s.Compile({loss, (*grads)[0]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{pt, targets}, {py, y}});
  if (!out.ok()) {
    run.status = out.status();
    return run;
  }
  run.loss = (*out)[0];
  run.dy = (*out)[1];
  return run;
}

// Runs loss(t, y) (a scalar) and dloss/dy.
struct LossRun {
  absl::Status status;
  float loss = 0;
  Tensor dy;
};
LossRun RunLoss(Kind kind, const Tensor& targets, const Tensor& y, bool from_logits) {
  ConfiguredRun run = RunBuiltLoss(targets, y, [&](Graph& g, Output t, Output p) {
    return MakeLoss(g, kind, t, p, from_logits);
  });
  if (!run.status.ok()) return {run.status};
  EXPECT_EQ(run.loss.shape(), Shape{});
  return {run.status, run.loss.data<float>()[0], run.dy};
}

// ---------------------------------------------------------------- sparse categorical

// logits [[1, 2, 3], [1, 0, -1]], labels [2, 0]. Both rows have the loss
// log(1 + e⁻¹ + e⁻²) = 0.40760596444 (the label holds the largest logit in row
// 0 and row 1 alike), so the mean is the same. The gradient is
// (softmax − onehot) / 2, softmax row 0 = [0.0900306, 0.2447285, 0.6652410].
constexpr double kLogitsLoss = 0.40760596444438046;
const std::vector<double> kLogitsGrad = {0.04501528658519022,  0.12236423552739879, -0.16737952211258916,
                                         -0.16737952211258905, 0.12236423552739882, 0.04501528658519022};

TEST(SparseCategoricalCrossentropyTest, FromLogitsMatchesHandComputedValues) {
  LossRun r = RunLoss(Kind::kSparse, I32({2}, {2, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, kLogitsLoss, kTolerance);
  ExpectValues(r.dy, kLogitsGrad, "dlogits");
}

TEST(SparseCategoricalCrossentropyTest, FromLogitsIsStableForHugeLogits) {
  LossRun r = RunLoss(Kind::kSparse, I32({2}, {0, 2}), F32({2, 3}, {1000, 0, -1000, 1000, 0, -1000}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  // Row 0: log(1 + e⁻¹⁰⁰⁰ + e⁻²⁰⁰⁰) ≈ 0; row 1: 2000.
  EXPECT_NEAR(r.loss, 1000.0, 1e-3);
  ExpectValues(r.dy, {0, 0, 0, 0.5, 0, -0.5}, "dlogits");
}

TEST(SparseCategoricalCrossentropyTest, LabelsShapedNBy1AreAccepted) {
  LossRun r = RunLoss(Kind::kSparse, I32({2, 1}, {2, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, kLogitsLoss, kTolerance);
}

// Keras's documentation example: y_true [1, 2], y_pred [[0.05, 0.95, 0],
// [0.1, 0.8, 0.1]] -> 1.177. The 0 is clipped to 1e-7 and gets no gradient.
TEST(SparseCategoricalCrossentropyTest, FromProbabilitiesMatchesKerasExample) {
  LossRun r = RunLoss(Kind::kSparse, I32({2}, {1, 2}), F32({2, 3}, {0.05f, 0.95f, 0, 0.1f, 0.8f, 0.1f}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 1.1769392436907955, kTolerance);
  // ∂ℓ/∂p_k = 1/Σc − [k = label]/c_label, halved for the mean; Σc = 1 (+1e-7).
  ExpectValues(r.dy, {0.5, 0.5 - 0.5 / 0.95, 0, 0.5, 0.5, 0.5 - 0.5 / 0.1}, "dp", 1e-4f);
}

TEST(SparseCategoricalCrossentropyTest, FromProbabilitiesClipsAtEpsilon) {
  // The label's probability is 0: clipped to 1e-7, loss = log((1 + 1e-7) / 1e-7).
  LossRun r = RunLoss(Kind::kSparse, I32({1}, {0}), F32({1, 3}, {0, 0.05f, 0.95f}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, std::log((1 + 1e-7) / 1e-7), 1e-4);
  EXPECT_EQ(r.dy.data<float>()[0], 0.0f);  // clipped: no gradient
}

TEST(SparseCategoricalCrossentropyTest, LabelOutOfRangeIsARunTimeErrorNamingNodeRowAndValue) {
  for (int32_t bad : {3, -1}) {
    SCOPED_TRACE(bad);
    LossRun r = RunLoss(Kind::kSparse, I32({2}, {2, bad}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
    ASSERT_FALSE(r.status.ok());
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
    const std::string msg(r.status.message());
    EXPECT_NE(msg.find("'loss/SparseCategoricalCrossentropy"), std::string::npos) << msg;
    EXPECT_NE(msg.find("label " + std::to_string(bad) + " in row 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("C = 3"), std::string::npos) << msg;
  }
}

TEST(SparseCategoricalCrossentropyTest, LabelShapeMismatchIsABuildError) {
  LossRun r = RunLoss(Kind::kSparse, I32({2, 3}, {0, 0, 0, 0, 0, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
  ASSERT_FALSE(r.status.ok());
  ExpectMentions(r.status.message(), {"loss/SparseCategoricalCrossentropy", "'targets' i32[-1, 3]", "'y' f32[-1, 3]"});
}

TEST(SparseCategoricalCrossentropyTest, FloatLabelsAreRejected) {
  LossRun r = RunLoss(Kind::kSparse, F32({2}, {2, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(std::string(r.status.message()).find("i32"), std::string::npos) << r.status;
}

// One plan, built with batch -1, at two batch sizes: the mean divides by the
// concrete batch.
TEST(SparseCategoricalCrossentropyTest, UnknownBatchAveragesOverTheConcreteBatch) {
  Graph g;
  auto labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  auto logits = ops::Placeholder(g, "logits", DType::kF32, {-1, 3});
  auto loss = ops::SparseCategoricalCrossentropy(g, labels, logits, true);
  Session s(g);
  auto plan = s.Compile({loss});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto two = plan->Run({{labels, I32({2}, {2, 0})}, {logits, F32({2, 3}, {1, 2, 3, 1, 0, -1})}});
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_NEAR((*two)[0].data<float>()[0], kLogitsLoss, kTolerance);
  // Four rows: the two above plus two with loss log(3) (uniform logits).
  auto four = plan->Run({{labels, I32({4}, {2, 0, 1, 2})},
                         {logits, F32({4, 3}, {1, 2, 3, 1, 0, -1, 0, 0, 0, 5, 5, 5})}});
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_NEAR((*four)[0].data<float>()[0], (2 * kLogitsLoss + 2 * std::log(3.0)) / 4, kTolerance);
}

TEST(CategoricalCrossentropyTest, TargetsGetNoGradient) {
  Graph g;
  auto onehot = ops::Placeholder(g, "onehot", DType::kF32, {-1, 3});
  auto logits = ops::Placeholder(g, "logits", DType::kF32, {-1, 3});
  auto loss = ops::CategoricalCrossentropy(g, onehot, logits, true);
  auto grads = AddGradients(g, loss, {onehot});
  ASSERT_TRUE(grads.ok()) << grads.status();
  // No path carries a gradient to the targets: autodiff answers with zeros.
  EXPECT_EQ((*grads)[0].node->op_name(), "ZerosLike");
}

// ---------------------------------------------------------------- categorical

TEST(CategoricalCrossentropyTest, FromLogitsEqualsTheSparseLossOnOneHotRows) {
  LossRun r = RunLoss(Kind::kCategorical, F32({2, 3}, {0, 0, 1, 1, 0, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, kLogitsLoss, kTolerance);
  ExpectValues(r.dy, kLogitsGrad, "dlogits");
}

TEST(CategoricalCrossentropyTest, FromLogitsWithSoftTargets) {
  // t = [0.5, 0.5, 0] on logits [1, 2, 3]: ℓ = lse − (1 + 2)/2; ∂ℓ/∂x = 1·softmax − t.
  LossRun r = RunLoss(Kind::kCategorical, F32({1, 3}, {0.5f, 0.5f, 0}), F32({1, 3}, {1, 2, 3}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 3.40760596444438 - 1.5, kTolerance);
  ExpectValues(r.dy, {0.0900305732 - 0.5, 0.2447284711 - 0.5, 0.6652409558}, "dlogits");
}

// Keras's documentation example: y_true [[0, 1, 0], [0, 0, 1]], y_pred
// [[0.05, 0.95, 0], [0.1, 0.8, 0.1]] -> 1.177.
TEST(CategoricalCrossentropyTest, FromProbabilitiesMatchesKerasExample) {
  LossRun r = RunLoss(Kind::kCategorical, F32({2, 3}, {0, 1, 0, 0, 0, 1}),
                      F32({2, 3}, {0.05f, 0.95f, 0, 0.1f, 0.8f, 0.1f}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 1.176939193690798, kTolerance);
  // q = p (rows sum to 1), g = −t/q: row 0 g = [0, −1/0.95, 0 (clipped)],
  // ∂ℓ/∂p_k = (g_k − Σ g·q) / 1, halved for the mean; Σ g·q = −1.
  ExpectValues(r.dy, {0.5, 0.5 * (1 - 1 / 0.95), 0.5, 0.5, 0.5, 0.5 * (1 - 1 / 0.1)}, "dp", 1e-4f);
}

TEST(CategoricalCrossentropyTest, FromProbabilitiesNormalizesRows) {
  // Doubling the probabilities changes nothing: Keras divides by the row sum.
  LossRun a = RunLoss(Kind::kCategorical, F32({1, 3}, {0, 0, 1}), F32({1, 3}, {0.2f, 0.2f, 0.6f}), false);
  LossRun b = RunLoss(Kind::kCategorical, F32({1, 3}, {0, 0, 1}), F32({1, 3}, {0.4f, 0.4f, 1.2f}), false);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_NEAR(a.loss, -std::log(0.6), kTolerance);
  EXPECT_NEAR(b.loss, -std::log(0.6), kTolerance);
}

TEST(CategoricalCrossentropyTest, ShapeMismatchNamesBothShapes) {
  LossRun r = RunLoss(Kind::kCategorical, F32({2, 4}, std::vector<float>(8)), F32({2, 3}, std::vector<float>(6)), true);
  ASSERT_FALSE(r.status.ok());
  ExpectMentions(r.status.message(), {"f32[-1, 4]", "f32[-1, 3]"});
}

// ---------------------------------------------------------------- binary

// Keras's documentation example: y_true [[0, 1], [0, 0]], y_pred [[0.6, 0.4],
// [0.4, 0.6]] -> 0.815 (0.8149242256 with Keras 2's +eps inside the logs).
TEST(BinaryCrossentropyTest, FromProbabilitiesMatchesKerasExample) {
  LossRun r = RunLoss(Kind::kBinary, F32({2, 2}, {0, 1, 0, 0}), F32({2, 2}, {0.6f, 0.4f, 0.4f, 0.6f}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 0.8149242256804743, kTolerance);
  // ∂e/∂p = −t/p + (1 − t)/(1 − p), over 4 elements.
  ExpectValues(r.dy, {0.25 / 0.4, -0.25 / 0.4, 0.25 / 0.6, 0.25 / 0.4}, "dp", 1e-4f);
}

TEST(BinaryCrossentropyTest, FromProbabilitiesClipsZeroAndOne) {
  // p = 1 with t = 0 is clipped to 1 − 1e-7: Keras 3 gives e = −log(1 − c),
  // with no eps inside the log (tf.keras 2.x: −log(1 − c + 1e-7), about
  // log 2 = 0.69 less, which fails here).
  LossRun r = RunLoss(Kind::kBinary, F32({1, 2}, {0, 1}), F32({1, 2}, {1, 1}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const double e0 = -std::log(1 - double(1.0f - 1e-7f));
  EXPECT_NEAR(r.loss, e0 / 2, 1e-3);
  ExpectValues(r.dy, {0, 0}, "dp (clipped)");
}

// Keras's documentation example: y_true [0, 1, 0, 0], logits [-18.6, 0.51,
// 2.94, -12.8] -> 0.865 (a rank-1 batch: the mean over its only axis).
TEST(BinaryCrossentropyTest, FromLogitsMatchesKerasExample) {
  LossRun r = RunLoss(Kind::kBinary, F32({4}, {0, 1, 0, 0}), F32({4}, {-18.6f, 0.51f, 2.94f, -12.8f}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 0.8654579497810972, kTolerance);
  auto sigmoid = [](double x) { return 1 / (1 + std::exp(-x)); };
  ExpectValues(r.dy,
               {sigmoid(-18.6) / 4, (sigmoid(0.51) - 1) / 4, sigmoid(2.94) / 4, sigmoid(-12.8) / 4},
               "dlogits");
}

TEST(BinaryCrossentropyTest, FromLogitsIsStableForHugeLogits) {
  LossRun r = RunLoss(Kind::kBinary, F32({1, 2}, {1, 0}), F32({1, 2}, {-500, -500}), true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 250.0, 1e-3);  // (500 + 0) / 2
  ExpectValues(r.dy, {-0.5, 0}, "dlogits");
}

// ---------------------------------------------------------------- mean squared error

// Keras's documentation example: y_true [[0, 1], [0, 0]], y_pred [[1, 1], [1, 0]] -> 0.5.
TEST(MeanSquaredErrorTest, MatchesKerasExample) {
  LossRun r = RunLoss(Kind::kMse, F32({2, 2}, {0, 1, 0, 0}), F32({2, 2}, {1, 1, 1, 0}), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, 0.5, kTolerance);
  ExpectValues(r.dy, {0.5, 0, 0.5, 0}, "dy");  // 2 (y − t) / 4
}

TEST(MeanSquaredErrorTest, Rank3AveragesOverEverything) {
  std::vector<float> t(12, 0.0f), y(12);
  double want = 0;
  for (int i = 0; i < 12; ++i) {
    y[i] = 0.5f * i;
    want += 0.25 * i * i / 12;
  }
  LossRun r = RunLoss(Kind::kMse, F32({2, 2, 3}, t), F32({2, 2, 3}, y), false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, want, 1e-4);
}

// A larger batch runs the row loop in parallel; the result must match a
// serial double-precision reference (and so cannot depend on the threads).
TEST(MeanSquaredErrorTest, LargeBatchMatchesSerialReference) {
  const int64_t n = 4096, d = 10;
  std::vector<float> t(n * d), y(n * d);
  double want = 0;
  for (int64_t i = 0; i < n * d; ++i) {
    t[i] = float((i * 37) % 101) / 101.0f;
    y[i] = float((i * 53) % 97) / 97.0f;
    want += (double(y[i]) - t[i]) * (double(y[i]) - t[i]);
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  LossRun one = RunLoss(Kind::kMse, F32({n, d}, t), F32({n, d}, y), false);
  omp_set_num_threads(2);
  LossRun r = RunLoss(Kind::kMse, F32({n, d}, t), F32({n, d}, y), false);
  omp_set_num_threads(saved);
  ASSERT_TRUE(r.status.ok() && one.status.ok()) << r.status;
  EXPECT_NEAR(r.loss, want / (n * d), 1e-6);
  EXPECT_EQ(r.loss, one.loss);  // bit for bit, 1 thread or 2
}

// ---------------------------------------------------------------- configured losses

// Runs a configured loss (ops::Loss): the loss tensor and d(sum loss)/dy.
ConfiguredRun RunConfigured(const losses::Loss& config, const Tensor& targets, const Tensor& y) {
  return RunBuiltLoss(targets, y, [&](Graph& g, Output t, Output p) { return ops::Loss(g.Scope("loss"), t, p, config); });
}

// t = [[1, 0, 1, 0], [0, 1, 1, 0]], p = [[0, 0.2, 0.7, 0.1], [0.3, 0.9, 1, 0]]:
// p = 0 with t = 1, p = 1 with t = 1 and p = 0 with t = 0 are clipped.
// Keras 3 (c = clip(p, 1e-7, 1 − 1e-7), in float64 by numpy):
//   e = −(t log c + (1 − t) log(1 − c)), mean over all 8 = 2.1581637993650724
// tf.keras 2.x (+1e-7 inside both logs): 2.0715202976780165.
// ∂/∂p = (−t/(p + d) + (1 − t)/(1 − p + d)) / 8 where p is not clipped, else 0.
const Tensor& BceTargets() {
  static const Tensor t = F32({2, 4}, {1, 0, 1, 0, 0, 1, 1, 0});
  return t;
}
const Tensor& BceProbabilities() {
  static const Tensor p = F32({2, 4}, {0, 0.2f, 0.7f, 0.1f, 0.3f, 0.9f, 1, 0});
  return p;
}

TEST(BinaryCrossentropyTest, Keras3FormulaIsTheDefaultFromProbabilities) {
  ConfiguredRun r = RunConfigured(losses::BinaryCrossentropy{}, BceTargets(), BceProbabilities());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ExpectValues(r.loss, {2.1581637993650724}, "loss", 1e-5f);  // the 2.x formula gives 2.0715
  ExpectValues(r.dy, {0, 0.15625, -0.178571432, 0.138888889, 0.178571432, -0.138888893, 0, 0}, "dp", 1e-5f);
  // The bool builder is the same loss.
  LossRun same = RunLoss(Kind::kBinary, BceTargets(), BceProbabilities(), false);
  EXPECT_NEAR(same.loss, 2.1581637993650724, 1e-5);
}

TEST(BinaryCrossentropyTest, Keras2LogEpsilonIsAnExplicitOption) {
  ConfiguredRun r = RunConfigured(losses::BinaryCrossentropy{.keras2_log_epsilon = true}, BceTargets(),
                                  BceProbabilities());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ExpectValues(r.loss, {2.0715202976780165}, "loss", 1e-5f);
  ExpectValues(r.dy, {0, 0.156249981, -0.178571406, 0.138888874, 0.178571406, -0.138888877, 0, 0}, "dp", 1e-5f);
}

// Keras 3 binary label smoothing: t' = t (1 − 0.2) + 0.5 · 0.2; then the
// formula above: 2.4508853475727066, ∂/∂p = (−t'/p + (1 − t')/(1 − p)) / 8.
TEST(BinaryCrossentropyTest, LabelSmoothingMovesTargetsTowardOneHalf) {
  ConfiguredRun r = RunConfigured(losses::BinaryCrossentropy{.label_smoothing = 0.2}, BceTargets(),
                                  BceProbabilities());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ExpectValues(r.loss, {2.4508853475727066}, "loss", 1e-5f);
  ExpectValues(r.dy, {0, 0.078125, -0.119047623, 0, 0.119047623, 0, 0, 0}, "dp", 1e-5f);
}

// Keras 3 categorical label smoothing on the logits [[1, 2, 3], [1, 0, −1]],
// one-hot [[0, 0, 1], [1, 0, 0]]: t' = t (1 − 0.1) + 0.1 / 3,
// ℓ = Σ t' (logsumexp(x) − x) = 0.5076059644443801 for both rows;
// ∂ℓ/∂x = ((Σ t') softmax(x) − t') / 2.
TEST(CategoricalCrossentropyTest, LabelSmoothingSpreadsOverTheClasses) {
  ConfiguredRun r = RunConfigured(losses::CategoricalCrossentropy{.from_logits = true, .label_smoothing = 0.1},
                                  F32({2, 3}, {0, 0, 1, 1, 0, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ExpectValues(r.loss, {0.5076059644443801}, "loss");
  ExpectValues(r.dy, {0.02834861991852357, 0.1056975688607322, -0.13404618877925567, -0.13404618877925567,
                      0.1056975688607322, 0.02834861991852357},
               "dlogits");
}

TEST(CategoricalCrossentropyTest, ReductionNoneGivesOneValuePerSample) {
  ConfiguredRun r = RunConfigured(
      losses::CategoricalCrossentropy{.from_logits = true, .label_smoothing = 0.1, .reduction = losses::Reduction::kNone},
      F32({2, 3}, {0, 0, 1, 1, 0, 0}), F32({2, 3}, {1, 2, 3, 1, 0, -1}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.loss.shape(), Shape({2}));
  ExpectValues(r.loss, {0.5076059644443801, 0.5076059644443801}, "per-sample loss");
  // d(sum of the per-sample losses)/dx: twice the mean's gradient.
  ExpectValues(r.dy, {0.05669723983704714, 0.2113951377214644, -0.26809237755851134, -0.26809237755851134,
                      0.2113951377214644, 0.05669723983704714},
               "dlogits");
}

TEST(SparseCategoricalCrossentropyTest, ReductionNoneAndSum) {
  // Both rows have ℓ = log(1 + e⁻¹ + e⁻²) (see kLogitsLoss).
  const Tensor labels = I32({2}, {2, 0}), logits = F32({2, 3}, {1, 2, 3, 1, 0, -1});
  ConfiguredRun none = RunConfigured(
      losses::SparseCategoricalCrossentropy{.from_logits = true, .reduction = losses::Reduction::kNone}, labels, logits);
  ASSERT_TRUE(none.status.ok()) << none.status;
  ExpectValues(none.loss, {kLogitsLoss, kLogitsLoss}, "per-sample loss");
  ConfiguredRun sum = RunConfigured(
      losses::SparseCategoricalCrossentropy{.from_logits = true, .reduction = losses::Reduction::kSum}, labels, logits);
  ASSERT_TRUE(sum.status.ok()) << sum.status;
  EXPECT_EQ(sum.loss.shape(), Shape{});
  ExpectValues(sum.loss, {2 * kLogitsLoss}, "summed loss");
  std::vector<double> twice;
  for (double g : kLogitsGrad) twice.push_back(2 * g);
  ExpectValues(sum.dy, twice, "dlogits");
}

// Keras 3 huber, e = y − t, mean over the last axis of
//   ½ e² (|e| <= δ), δ |e| − ½ δ² (|e| > δ);   ∂/∂y = e or δ sign(e), / 3 per row.
// t = [[0, 1, 2], [0.5, −1, 3]], y = [[0.3, −1, 2.5], [3, −1.2, 0]] (numpy, float64):
//   δ = 1: rows 0.5566666666666666, 1.5066666666666666; mean 1.0316666666666665
//   δ = 2: rows 0.7233333333333333, 2.34; mean 1.5316666666666665
TEST(HuberTest, MatchesKeras3FormulaWithDefaultDelta) {
  EXPECT_EQ(losses::Huber{}.delta, 1.0);  // Keras 3 default
  const Tensor t = F32({2, 3}, {0, 1, 2, 0.5f, -1, 3}), y = F32({2, 3}, {0.3f, -1, 2.5f, 3, -1.2f, 0});
  ConfiguredRun r = RunConfigured(losses::Huber{}, t, y);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ExpectValues(r.loss, {1.0316666666666665}, "loss");
  // Mean over 2 rows: the per-element derivative / 6.
  ExpectValues(r.dy, {0.05, -1.0 / 6, 0.5 / 6, 1.0 / 6, -0.2 / 6, -1.0 / 6}, "dy");
  ConfiguredRun wide = RunConfigured(losses::Huber{.delta = 2, .reduction = losses::Reduction::kNone}, t, y);
  ASSERT_TRUE(wide.status.ok()) << wide.status;
  ExpectValues(wide.loss, {0.7233333333333333, 2.34}, "per-sample loss, delta 2");
  ExpectValues(wide.dy, {0.1, -2.0 / 3, 0.5 / 3, 2.0 / 3, -0.2 / 3, -2.0 / 3}, "dy, delta 2");
}

TEST(HuberTest, BadConfigurationIsABuildErrorNamingTheField) {
  ConfiguredRun r = RunConfigured(losses::Huber{.delta = -1}, F32({1, 2}, {0, 0}), F32({1, 2}, {0, 0}));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(r.status.message(), {"Huber", "delta", "-1"});
  r = RunConfigured(losses::BinaryCrossentropy{.label_smoothing = 1.5}, F32({1, 2}, {0, 0}), F32({1, 2}, {0, 0}));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(r.status.message(), {"BinaryCrossentropy", "label_smoothing", "1.5"});
}

}  // namespace
}  // namespace gradflow
