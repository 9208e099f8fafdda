#include "core/shape.h"

#include <limits>

#include "gtest/gtest.h"

namespace gradflow {
namespace {

TEST(ShapeTest, RankAndDims) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s[0], 2);
  EXPECT_EQ(s[2], 4);
  EXPECT_EQ(s.dims(), (std::vector<int64_t>{2, 3, 4}));
  s[1] = 5;
  EXPECT_EQ(s[1], 5);
}

TEST(ShapeTest, NumElements) {
  EXPECT_EQ((Shape{2, 3, 4}).NumElements(), 24);
  EXPECT_EQ((Shape{7, 0}).NumElements(), 0);
  EXPECT_EQ(Shape().NumElements(), 1);  // a scalar holds one element
  EXPECT_EQ((Shape{Shape::kUnknown, 784}).NumElements(), Shape::kUnknown);
}

// Issue 13 item 6: {4, 2^62} overflowed int64 (UB) in NumElements.
TEST(ShapeTest, ElementCountAndByteSizeAreOverflowChecked) {
  const Shape huge{4, int64_t{1} << 62};
  EXPECT_EQ(huge.NumElements(), std::numeric_limits<int64_t>::max());  // saturates
  EXPECT_EQ(huge.CheckedNumElements().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((Shape{int64_t{1} << 32, int64_t{1} << 32}).CheckedNumElements().status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*(Shape{int64_t{1} << 62}).CheckedNumElements(), int64_t{1} << 62);
  EXPECT_EQ((Shape{int64_t{1} << 62}).CheckedNumBytes(DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*(Shape{0, int64_t{1} << 62, int64_t{1} << 62}).CheckedNumElements(), 0);
  EXPECT_EQ(*(Shape{3, 5}).CheckedNumBytes(DType::kI64), 120u);
  EXPECT_FALSE((Shape{-1, 5}).CheckedNumBytes(DType::kF32).ok());
}

TEST(ShapeTest, IsFullyKnown) {
  EXPECT_TRUE(Shape().IsFullyKnown());
  EXPECT_TRUE((Shape{32, 784}).IsFullyKnown());
  EXPECT_FALSE((Shape{-1, 784}).IsFullyKnown());
}

TEST(ShapeTest, WithBatchReplacesDimZeroOnly) {
  Shape s{-1, 28, 28};
  EXPECT_EQ(s.WithBatch(32), (Shape{32, 28, 28}));
  EXPECT_EQ(s, (Shape{-1, 28, 28}));  // the original is unchanged
  EXPECT_EQ(Shape().WithBatch(5), Shape());  // a scalar has no batch dim
}

TEST(ShapeTest, ToString) {
  EXPECT_EQ((Shape{-1, 784}).ToString(), "[-1, 784]");
  EXPECT_EQ(Shape().ToString(), "[]");
}

TEST(ShapeTest, Equality) {
  EXPECT_EQ((Shape{1, 2}), Shape(std::vector<int64_t>{1, 2}));
  EXPECT_NE((Shape{1, 2}), (Shape{2, 1}));
  EXPECT_NE((Shape{1}), (Shape{1, 1}));
}

}  // namespace
}  // namespace gradflow
