// The streaming metrics' per-batch statistics (ops/metric_statistics.h) on
// fixed inputs, worked out by hand in the comments, the accuracies'
// statistics form, and the build errors.

#include "ops/metric_statistics.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/metrics.h"
#include "tests/util/run_graph.h"

namespace gradflow {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;

Tensor F32(Shape shape, std::vector<float> v) { return Tensor::FromVector<float>(std::move(shape), v).value(); }
Tensor I32(Shape shape, std::vector<int32_t> v) { return Tensor::FromVector<int32_t>(std::move(shape), v).value(); }

// op(targets, y) over placeholders with batch -1; its value.
template <typename Build>
absl::StatusOr<std::vector<float>> Run2(const Tensor& t, const Tensor& y, Build build) {
  Graph g;
  Shape st = t.shape(), sy = y.shape();
  st[0] = sy[0] = -1;
  Output pt = ops::Placeholder(g, "t", t.dtype(), st), py = ops::Placeholder(g, "y", y.dtype(), sy);
  Output out = build(g, pt, py);
  auto fetched = testing_util::RunGraph(g, {out}, {{pt, t}, {py, y}});
  if (!fetched.ok()) return fetched.status();
  const Tensor& v = (*fetched)[0];
  return std::vector<float>(v.data<float>(), v.data<float>() + v.num_elements());
}

const Tensor kTargets = F32({2, 2}, {0, 1, 2, 4});
const Tensor kPredictions = F32({2, 2}, {1, 1, 1, 5});

TEST(MeanErrorStatisticsTest, SumsPerRowMeansAndCountsRows) {
  // Rows: |0-1|, |1-1| -> mean 0.5; |2-1|, |4-5| -> 1. Sum 1.5 over 2 rows.
  EXPECT_THAT(*Run2(kTargets, kPredictions, [](Graph& g, Output t, Output y) {
    return ops::MeanErrorStatistics(g, t, y, "absolute");
  }), ElementsAre(1.5f, 2.0f));
  EXPECT_THAT(*Run2(kTargets, kPredictions, [](Graph& g, Output t, Output y) {
    return ops::MeanErrorStatistics(g, t, y, "squared");
  }), ElementsAre(1.5f, 2.0f));
  // 100 |t - y| / max(|t|, 1e-7): 1e9, 0 -> 5e8; 50, 25 -> 37.5.
  auto mape = Run2(kTargets, kPredictions, [](Graph& g, Output t, Output y) {
    return ops::MeanErrorStatistics(g, t, y, "absolute_percentage");
  });
  ASSERT_TRUE(mape.ok()) << mape.status();
  EXPECT_THAT(*mape, ElementsAre(FloatNear(5e8f + 37.5f, 64.0f), 2.0f));
  auto bad = Run2(kTargets, kPredictions, [](Graph& g, Output t, Output y) {
    return ops::MeanErrorStatistics(g, t, y, "logcosh");
  });
  EXPECT_THAT(bad.status().message(), HasSubstr("use absolute, squared or absolute_percentage"));
}

TEST(TopKStatisticsTest, CountsTiesWithTheKthAsIn) {
  const Tensor y = F32({3, 4}, {0.1f, 0.4f, 0.4f, 0.1f,    // label 2 ties with 1 for the top: in the top 1
                                0.5f, 0.2f, 0.2f, 0.1f,    // label 3: three classes higher, not in the top 2
                                0.3f, 0.3f, 0.3f, 0.1f});  // label 1: in the top 1 (ties)
  const Tensor labels = I32({3}, {2, 3, 1});
  for (int64_t k : {1, 2, 4}) {
    auto stats = Run2(labels, y, [k](Graph& g, Output t, Output p) { return ops::TopKStatistics(g, t, p, k, true); });
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_THAT(*stats, ElementsAre(k == 4 ? 3.0f : 2.0f, 3.0f)) << "k = " << k;
  }
  const Tensor onehot = F32({3, 4}, {0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0});
  EXPECT_THAT(*Run2(onehot, y, [](Graph& g, Output t, Output p) { return ops::TopKStatistics(g, t, p, 2, false); }),
              ElementsAre(2.0f, 3.0f));
  auto too_many = Run2(labels, y, [](Graph& g, Output t, Output p) { return ops::TopKStatistics(g, t, p, 5, true); });
  EXPECT_THAT(too_many.status().message(), HasSubstr("k = 5 is more than the 4 classes"));
}

TEST(ConfusionStatisticsTest, CountsEveryThresholdOverEveryElement) {
  const Tensor t = F32({4, 1}, {1, 0, 1, 0});
  const Tensor y = F32({4, 1}, {0.9f, 0.6f, 0.3f, 0.1f});
  const Tensor thresholds = F32({2}, {0.5f, 0.2f});
  auto counts = Run2(t, y, [&](Graph& g, Output a, Output b) {
    return ops::ConfusionStatistics(g, a, b, thresholds, false);
  });
  ASSERT_TRUE(counts.ok()) << counts.status();
  // > 0.5: 0.9 (tp), 0.6 (fp); 0.3 fn, 0.1 tn. > 0.2: 0.9, 0.3 tp; 0.6 fp; 0.1 tn.
  EXPECT_THAT(*counts, ElementsAre(1, 1, 1, 1, 2, 1, 1, 0));
  // Soft labels: a target 0.25 adds 0.25 to the positives and 0.75 to the negatives.
  auto soft = Run2(F32({1, 1}, {0.25f}), F32({1, 1}, {0.7f}), [&](Graph& g, Output a, Output b) {
    return ops::ConfusionStatistics(g, a, b, thresholds, true);
  });
  ASSERT_TRUE(soft.ok()) << soft.status();
  EXPECT_THAT(*soft, ElementsAre(0.25f, 0.75f, 0, 0, 0.25f, 0.75f, 0, 0));
  auto empty = Run2(t, y, [&](Graph& g, Output a, Output b) {
    return ops::ConfusionStatistics(g, a, b, F32({0}, {}), false);
  });
  EXPECT_THAT(empty.status().message(), HasSubstr("thresholds must be f32 [T] with T >= 1"));
}

TEST(AccuracyStatisticsTest, GiveHitsAndCountInsteadOfTheFraction) {
  const Tensor y = F32({3, 2}, {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f});
  EXPECT_THAT(*Run2(I32({3}, {0, 0, 0}), y, [](Graph& g, Output t, Output p) {
    return ops::SparseCategoricalAccuracy(g, t, p, /*statistics=*/true);
  }), ElementsAre(2.0f, 3.0f));
  EXPECT_THAT(*Run2(F32({3, 2}, {1, 0, 1, 0, 1, 0}), y, [](Graph& g, Output t, Output p) {
    return ops::CategoricalAccuracy(g, t, p, /*statistics=*/true);
  }), ElementsAre(2.0f, 3.0f));
  // Elements: (y > 0.5) == t for t = y rounded: 6 of 6; counted over elements.
  EXPECT_THAT(*Run2(F32({3, 2}, {1, 0, 0, 1, 1, 0}), y, [](Graph& g, Output t, Output p) {
    return ops::BinaryAccuracy(g, t, p, 0.5, /*statistics=*/true);
  }), ElementsAre(6.0f, 6.0f));
}

}  // namespace
}  // namespace gradflow
