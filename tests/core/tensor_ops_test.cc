// Tests of core/tensor_ops.cc: each helper against values computed by hand
// (the NumPy expression in a comment) and each error case.

#include "core/tensor_ops.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kHuge = int64_t{1} << 62;

Tensor F32(Shape shape, const std::vector<float>& values) { return Tensor::FromVector(shape, values).value(); }
Tensor I32(Shape shape, const std::vector<int32_t>& values) { return Tensor::FromVector(shape, values).value(); }
Tensor I64(Shape shape, const std::vector<int64_t>& values) { return Tensor::FromVector(shape, values).value(); }

// x = np.arange(12, dtype=np.float32).reshape(4, 3)
Tensor Arange43() { return F32({4, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}); }

void ExpectError(const absl::StatusOr<Tensor>& result, const std::string& text) {
  ASSERT_FALSE(result.ok()) << "expected an error containing: " << text;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr(text));
}

// ---------------------------------------------------------------- rows

TEST(TensorOpsTest, SliceRowsTakesPythonIndices) {
  Tensor x = Arange43();
  auto middle = SliceRows(x, 1, 3);  // x[1:3]
  ASSERT_TRUE(middle.ok()) << middle.status();
  EXPECT_EQ(middle->shape(), (Shape{2, 3}));
  EXPECT_THAT(middle->ToVector<float>(), ElementsAre(3, 4, 5, 6, 7, 8));
  auto last = SliceRows(x, -1, 4);  // x[-1:]
  ASSERT_TRUE(last.ok());
  EXPECT_THAT(last->ToVector<float>(), ElementsAre(9, 10, 11));
  auto head = SliceRows(x, 0, -3);  // x[:-3]
  ASSERT_TRUE(head.ok());
  EXPECT_THAT(head->ToVector<float>(), ElementsAre(0, 1, 2));
  auto none = SliceRows(x, 2, 2);  // x[2:2]
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->shape(), (Shape{0, 3}));
  auto labels = SliceRows(I64({5}, {5, 6, 7, 8, 9}), -4, -2);  // y[-4:-2]
  ASSERT_TRUE(labels.ok());
  EXPECT_THAT(labels->ToVector<int64_t>(), ElementsAre(6, 7));
}

TEST(TensorOpsTest, SliceRowsRefusesOutOfRange) {
  Tensor x(DType::kF32, {10, 2});
  ExpectError(SliceRows(x, 5, 12), "SliceRows: rows [5, 12) are out of range for a tensor of 10 rows");
  ExpectError(SliceRows(x, -11, 3), "[-10, 10]");
  ExpectError(SliceRows(x, 6, 4), "begin <= end");
  ExpectError(SliceRows(x, std::numeric_limits<int64_t>::min(), 1), "out of range");
  ExpectError(SliceRows(Tensor::Scalar(1), 0, 1), "a scalar");
  ExpectError(SliceRows(Tensor(), 0, 0), "holds no data");
}

TEST(TensorOpsTest, GatherRowsInGivenOrderWithRepeats) {
  // x[np.array([3, 0, 3])]
  auto picked = GatherRows(Arange43(), I32({3}, {3, 0, 3}));
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_EQ(picked->shape(), (Shape{3, 3}));
  EXPECT_THAT(picked->ToVector<float>(), ElementsAre(9, 10, 11, 0, 1, 2, 9, 10, 11));
  auto labels = GatherRows(I32({3}, {7, 8, 9}), I64({2}, {2, 1}));  // y[[2, 1]]
  ASSERT_TRUE(labels.ok());
  EXPECT_THAT(labels->ToVector<int32_t>(), ElementsAre(9, 8));
  auto empty = GatherRows(Arange43(), I32({0}, {}));  // x[[]]
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->shape(), (Shape{0, 3}));
}

TEST(TensorOpsTest, GatherRowsChecksIndices) {
  ExpectError(GatherRows(Arange43(), I32({2}, {1, 4})), "index 4 (indices[1]) is out of range for a tensor of 4 rows");
  ExpectError(GatherRows(Arange43(), I64({1}, {-1})), "negative ones are refused");
  ExpectError(GatherRows(Arange43(), F32({1}, {1})), "rank-1 i32 or i64");
  ExpectError(GatherRows(Arange43(), I32({1, 1}, {1})), "rank-1 i32 or i64");
  ExpectError(GatherRows(Arange43(), Tensor()), "indices");
}

TEST(TensorOpsTest, BooleanMaskKeepsMarkedRows) {
  // x[np.array([True, False, False, True])]
  auto kept = BooleanMask(Arange43(), I32({4}, {1, 0, 0, 1}));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->shape(), (Shape{2, 3}));
  EXPECT_THAT(kept->ToVector<float>(), ElementsAre(0, 1, 2, 9, 10, 11));
  auto none = BooleanMask(Arange43(), I32({4}, {0, 0, 0, 0}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->shape(), (Shape{0, 3}));
}

TEST(TensorOpsTest, BooleanMaskChecksTheMask) {
  ExpectError(BooleanMask(Arange43(), I32({3}, {1, 0, 1})), "the mask has 3 entries but the tensor f32[4, 3] has 4 rows");
  ExpectError(BooleanMask(Arange43(), I32({4}, {1, 2, 0, 0})), "mask[1] is 2; a mask holds only 0 and 1");
  ExpectError(BooleanMask(Arange43(), F32({4}, {1, 0, 0, 0})), "rank-1 i32 or i64");
}

TEST(TensorOpsTest, CompareMakesMasksWithNumPysNaNRules) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = F32({4}, {0.2f, 0.5f, 0.9f, nan});
  auto greater = Compare(x, ">", 0.5);  // (x > 0.5).astype(np.int32)
  ASSERT_TRUE(greater.ok()) << greater.status();
  EXPECT_EQ(greater->dtype(), DType::kI32);
  EXPECT_THAT(greater->ToVector<int32_t>(), ElementsAre(0, 0, 1, 0));
  EXPECT_THAT(Compare(x, ">=", 0.5)->ToVector<int32_t>(), ElementsAre(0, 1, 1, 0));
  EXPECT_THAT(Compare(x, "<", 0.5)->ToVector<int32_t>(), ElementsAre(1, 0, 0, 0));
  EXPECT_THAT(Compare(x, "<=", 0.5)->ToVector<int32_t>(), ElementsAre(1, 1, 0, 0));
  EXPECT_THAT(Compare(x, "==", 0.5)->ToVector<int32_t>(), ElementsAre(0, 1, 0, 0));
  EXPECT_THAT(Compare(x, "!=", 0.5)->ToVector<int32_t>(), ElementsAre(1, 0, 1, 1));
  auto labels = Compare(I64({2, 2}, {1, 2, 3, 4}), "==", 3);  // keeps the shape
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->shape(), (Shape{2, 2}));
  EXPECT_THAT(labels->ToVector<int32_t>(), ElementsAre(0, 0, 1, 0));
  ExpectError(Compare(x, "=>", 0.5), "unknown comparison '=>'; use one of <, <=, >, >=, ==, !=");
}

// ---------------------------------------------------------------- reductions

TEST(TensorOpsTest, ArgMaxAlongEachAxis) {
  Tensor x = F32({2, 3}, {1, 5, 5, 7, 2, 0});
  auto rows = ArgMax(x, 1);  // np.argmax(x, 1): the first maximum
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->dtype(), DType::kI64);
  EXPECT_THAT(rows->ToVector<int64_t>(), ElementsAre(1, 0));
  auto columns = ArgMax(x, -2, DType::kI32);  // np.argmax(x, 0).astype(np.int32)
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ(columns->dtype(), DType::kI32);
  EXPECT_THAT(columns->ToVector<int32_t>(), ElementsAre(1, 0, 0));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(ArgMax(F32({4}, {1, nan, 9, nan}), 0)->ToVector<int64_t>(), ElementsAre(1));  // NaN wins
  EXPECT_THAT(ArgMax(I32({3}, {-4, -2, -3}), 0)->ToVector<int64_t>(), ElementsAre(1));
  ExpectError(ArgMax(x, 2), "axis 2 is out of range for f32[2, 3] (rank 2); use an axis in [-2, 1]");
  ExpectError(ArgMax(Tensor(DType::kF32, {0, 3}), 0), "axis 0 of f32[0, 3] is empty");
  ExpectError(ArgMax(x, 0, DType::kF32), "i32 or i64");
}

TEST(TensorOpsTest, SumMeanVarianceStdWithKeepdims) {
  // x = [[1, 2], [3, 6]]
  Tensor x = F32({2, 2}, {1, 2, 3, 6});
  EXPECT_THAT(Sum(x, 0)->ToVector<float>(), ElementsAre(4, 8));         // x.sum(0)
  EXPECT_THAT(Mean(x, 1)->ToVector<float>(), ElementsAre(1.5f, 4.5f));  // x.mean(1)
  EXPECT_THAT(Variance(x, 0)->ToVector<float>(), ElementsAre(1, 4));    // x.var(0): ((1-2)^2 + (3-2)^2) / 2
  EXPECT_THAT(Std(x, -1)->ToVector<float>(), ElementsAre(0.5f, 1.5f));  // x.std(-1)
  auto kept = Mean(x, 0, /*keepdims=*/true);                            // x.mean(0, keepdims=True)
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->shape(), (Shape{1, 2}));
  EXPECT_EQ(Sum(x, 1)->shape(), (Shape{2}));
  // A middle axis of a rank-3 tensor: np.arange(8).reshape(2, 2, 2).sum(1)
  auto middle = Sum(F32({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), 1, true);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(middle->shape(), (Shape{2, 1, 2}));
  EXPECT_THAT(middle->ToVector<float>(), ElementsAre(2, 4, 10, 12));
  // Far from zero, the two-pass variance keeps its digits: np.var([1e8, 1e8 + 8], dtype=np.float32) == 16.
  EXPECT_THAT(Variance(F32({2}, {1e8f + 0, 1e8f + 8}), 0)->ToVector<float>(), ElementsAre(16));
}

TEST(TensorOpsTest, IntegerReductions) {
  Tensor y = I32({2, 3}, {1, 2, 3, 4, 5, 6});
  auto sum = Sum(y, 1);  // y.sum(1): int64
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->dtype(), DType::kI64);
  EXPECT_THAT(sum->ToVector<int64_t>(), ElementsAre(6, 15));
  auto mean = Mean(y, 0);  // y.mean(0), as f32
  ASSERT_TRUE(mean.ok());
  EXPECT_EQ(mean->dtype(), DType::kF32);
  EXPECT_THAT(mean->ToVector<float>(), ElementsAre(2.5f, 3.5f, 4.5f));
  const int64_t big = std::numeric_limits<int64_t>::max();
  ExpectError(Sum(I64({2}, {big, 1}), 0), "Sum: the sum along axis 0 of i64[2] overflows int64");
  EXPECT_THAT(Sum(I64({2}, {big, -1}), 0)->ToVector<int64_t>(), ElementsAre(big - 1));
}

TEST(TensorOpsTest, ReductionsOfEmptyAndHugeShapes) {
  Tensor empty(DType::kF32, {0, 3});
  auto sum = Sum(empty, 0);  // np.zeros((0, 3)).sum(0)
  ASSERT_TRUE(sum.ok());
  EXPECT_THAT(sum->ToVector<float>(), ElementsAre(0, 0, 0));
  ExpectError(Mean(empty, 0), "Mean: axis 0 of f32[0, 3] is empty");
  ExpectError(Std(empty, 0), "Std: axis 0");
  EXPECT_EQ(Mean(empty, 1)->shape(), (Shape{0}));  // no lanes: nothing undefined
  // 0 elements, but [2^62, 2^62] around axis 0 cannot be counted, let alone allocated.
  Tensor huge(DType::kF32, {0, kHuge, kHuge});
  ExpectError(Sum(huge, 0), "multiply to more than 2^63 - 1 elements");
  ExpectError(Sum(Tensor::Scalar(1), 0), "axis 0 is out of range for f32[] (rank 0)");
  ExpectError(Sum(Tensor(), 0), "holds no data");
}

// ---------------------------------------------------------------- stacking

TEST(TensorOpsTest, ConcatenateAlongEachAxis) {
  Tensor a = F32({1, 2}, {1, 2}), b = F32({2, 2}, {3, 4, 5, 6});
  std::vector<Tensor> rows = {a, b};
  auto along0 = Concatenate(rows, 0);  // np.concatenate([a, b], 0)
  ASSERT_TRUE(along0.ok()) << along0.status();
  EXPECT_EQ(along0->shape(), (Shape{3, 2}));
  EXPECT_THAT(along0->ToVector<float>(), ElementsAre(1, 2, 3, 4, 5, 6));
  std::vector<Tensor> columns = {F32({2, 1}, {1, 2}), F32({2, 2}, {3, 4, 5, 6})};
  auto along1 = Concatenate(columns, -1);  // np.concatenate([c, d], -1)
  ASSERT_TRUE(along1.ok());
  EXPECT_EQ(along1->shape(), (Shape{2, 3}));
  EXPECT_THAT(along1->ToVector<float>(), ElementsAre(1, 3, 4, 2, 5, 6));
  std::vector<Tensor> labels = {I64({2}, {1, 2}), I64({0}, {}), I64({1}, {3})};
  EXPECT_THAT(Concatenate(labels, 0)->ToVector<int64_t>(), ElementsAre(1, 2, 3));
}

TEST(TensorOpsTest, ConcatenateChecksShapesDtypesAndSizes) {
  std::vector<Tensor> mismatched = {F32({2, 2}, {1, 2, 3, 4}), F32({2, 3}, {1, 2, 3, 4, 5, 6})};
  ExpectError(Concatenate(mismatched, 0), "tensor 1 is f32[2, 3] but tensor 0 is f32[2, 2]");
  EXPECT_TRUE(Concatenate(mismatched, 1).ok());
  std::vector<Tensor> dtypes = {F32({1}, {1}), I32({1}, {1})};
  ExpectError(Concatenate(dtypes, 0), "tensor 1 is i32[1]");
  std::vector<Tensor> ranks = {F32({1}, {1}), F32({1, 1}, {1})};
  ExpectError(Concatenate(ranks, 0), "tensor 1 is f32[1, 1]");
  ExpectError(Concatenate({}, 0), "at least one tensor");
  ExpectError(Concatenate(ranks, 1), "axis 1 is out of range for f32[1]");
  std::vector<Tensor> huge = {Tensor(DType::kF32, {kHuge, 0}), Tensor(DType::kF32, {kHuge, 0})};
  ExpectError(Concatenate(huge, 0), "longer than 2^63 - 1");
  std::vector<Tensor> hollow = {Tensor(DType::kF32, {1}), Tensor()};
  ExpectError(Concatenate(hollow, 0), "holds no data");
}

TEST(TensorOpsTest, StackAddsAnAxis) {
  std::vector<Tensor> parts = {F32({2}, {1, 2}), F32({2}, {3, 4}), F32({2}, {5, 6})};
  auto front = Stack(parts, 0);  // np.stack([a, b, c], 0)
  ASSERT_TRUE(front.ok()) << front.status();
  EXPECT_EQ(front->shape(), (Shape{3, 2}));
  EXPECT_THAT(front->ToVector<float>(), ElementsAre(1, 2, 3, 4, 5, 6));
  auto back = Stack(parts, -1);  // np.stack([a, b, c], -1)
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->shape(), (Shape{2, 3}));
  EXPECT_THAT(back->ToVector<float>(), ElementsAre(1, 3, 5, 2, 4, 6));
  std::vector<Tensor> scalars = {I32({}, {7}), I32({}, {8})};
  EXPECT_THAT(Stack(scalars, 0)->ToVector<int32_t>(), ElementsAre(7, 8));
  std::vector<Tensor> mismatched = {F32({2}, {1, 2}), F32({3}, {1, 2, 3})};
  ExpectError(Stack(mismatched, 0), "tensor 1 is f32[3] but tensor 0 is f32[2]; stacked tensors need the same dtype and shape");
  ExpectError(Stack(parts, 2), "axis 2 is out of range for stacking f32[2]; use an axis in [-2, 1]");
  ExpectError(Stack({}, 0), "at least one tensor");
}

// ---------------------------------------------------------------- data preparation

TEST(TensorOpsTest, StandardizeUsesPopulationStdAndKerasFloor) {
  // x = [[1, 5], [3, 5]]: column 0 has mean 2, std 1; column 1 is constant.
  // (x - x.mean(0)) / np.maximum(x.std(0), 1e-7)
  auto z = Standardize(F32({2, 2}, {1, 5, 3, 5}));
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_THAT(z->ToVector<float>(), ElementsAre(-1, 0, 1, 0));
  auto from_ints = Standardize(I32({4}, {0, 0, 2, 2}));  // mean 1, std 1
  ASSERT_TRUE(from_ints.ok());
  EXPECT_EQ(from_ints->dtype(), DType::kF32);
  EXPECT_THAT(from_ints->ToVector<float>(), ElementsAre(-1, -1, 1, 1));
  // After it every column has mean 0 and std 1.
  auto big = Standardize(Arange43());
  ASSERT_TRUE(big.ok());
  for (float m : Mean(*big, 0)->ToVector<float>()) EXPECT_NEAR(m, 0, 1e-6);
  for (float s : Std(*big, 0)->ToVector<float>()) EXPECT_NEAR(s, 1, 1e-6);
  ExpectError(Standardize(Tensor(DType::kF32, {0, 2})), "Standardize: f32[0, 2] has no rows");
  ExpectError(Standardize(Tensor::Scalar(3)), "a scalar");
}

TEST(TensorOpsTest, OneHotLabels) {
  auto hot = OneHot(I32({3}, {2, 0, 1}), 3);  // np.eye(3, dtype=np.float32)[[2, 0, 1]]
  ASSERT_TRUE(hot.ok()) << hot.status();
  EXPECT_EQ(hot->shape(), (Shape{3, 3}));
  EXPECT_THAT(hot->ToVector<float>(), ElementsAre(0, 0, 1, 1, 0, 0, 0, 1, 0));
  EXPECT_EQ(OneHot(I64({2, 1}, {1, 0}), 2)->shape(), (Shape{2, 1, 2}));
  ExpectError(OneHot(I32({2}, {0, 3}), 3), "label 3 (element 1) is not in [0, 3)");
  ExpectError(OneHot(I32({1}, {-1}), 3), "label -1");
  ExpectError(OneHot(I32({1}, {0}), 0), "classes must be >= 1");
  ExpectError(OneHot(F32({1}, {0}), 2), "labels must be i32 or i64");
  ExpectError(OneHot(I32({4}, {0, 0, 0, 0}), kHuge), "OneHot: the result shape [4, 4611686018427387904] has more than 2^63 - 1");
}

TEST(TensorOpsTest, CastChecksRanges) {
  auto ints = Cast(F32({4}, {1.9f, -1.9f, 0, 2147483520.0f}), DType::kI32);  // x.astype(np.int32)
  ASSERT_TRUE(ints.ok()) << ints.status();
  EXPECT_THAT(ints->ToVector<int32_t>(), ElementsAre(1, -1, 0, 2147483520));
  EXPECT_THAT(Cast(I32({2}, {-3, 4}), DType::kF32)->ToVector<float>(), ElementsAre(-3, 4));
  EXPECT_THAT(Cast(I32({1}, {-3}), DType::kI64)->ToVector<int64_t>(), ElementsAre(-3));
  EXPECT_THAT(Cast(I64({1}, {-5}), DType::kI32)->ToVector<int32_t>(), ElementsAre(-5));
  ExpectError(Cast(I64({2}, {1, int64_t{1} << 40}), DType::kI32), "element 1 of i64[2] is 1.09951e+12, which i32 cannot hold");
  ExpectError(Cast(F32({1}, {std::numeric_limits<float>::quiet_NaN()}), DType::kI64), "which i64 cannot hold");
  ExpectError(Cast(F32({1}, {std::numeric_limits<float>::infinity()}), DType::kI32), "which i32 cannot hold");
  ExpectError(Cast(F32({1}, {9.3e18f}), DType::kI64), "which i64 cannot hold");
  Tensor x = F32({1}, {2});
  auto same = Cast(x, DType::kF32);  // a copy, not the same storage
  ASSERT_TRUE(same.ok());
  EXPECT_NE(same->raw(), x.raw());
}

}  // namespace
}  // namespace gradflow
