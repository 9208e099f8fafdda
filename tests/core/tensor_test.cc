#include "core/tensor.h"

#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

bool IsAligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % Tensor::kAlignment == 0;
}

TEST(TensorTest, StorageIs64ByteAlignedForEveryDtypeAndSize) {
  EXPECT_EQ(Tensor::kAlignment, 64u);  // one cache line / one AVX-512 register
  for (DType dt : {DType::kF32, DType::kI32, DType::kI64}) {
    for (int64_t n : {1, 3, 17, 64, 1000}) {
      Tensor t(dt, {n});
      EXPECT_TRUE(IsAligned(t.raw())) << DTypeName(dt) << " n=" << n;
    }
  }
  EXPECT_TRUE(IsAligned(Tensor(DType::kF32, {0}).raw()));
}

TEST(TensorTest, ConstructedZeroFilled) {
  Tensor t(DType::kI64, {3, 5});
  EXPECT_EQ(t.num_elements(), 15);
  EXPECT_EQ(t.num_bytes(), 15u * 8);
  EXPECT_FALSE(t.empty());
  for (int64_t v : t.flat<int64_t>()) EXPECT_EQ(v, 0);
  EXPECT_TRUE(Tensor().empty());
}

TEST(TensorTest, FromVectorAndScalar) {
  Tensor t = Tensor::FromVector<int32_t>({2, 2}, {1, 2, 3, 4}).value();
  EXPECT_EQ(t.dtype(), DType::kI32);
  EXPECT_EQ(t.ToVector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 4}));
  Tensor s = Tensor::Scalar(2.5f);
  EXPECT_EQ(s.shape().rank(), 0);
  EXPECT_EQ(s.num_elements(), 1);
  EXPECT_EQ(s.data<float>()[0], 2.5f);
}

TEST(TensorTest, CopySharesStorage) {
  Tensor a = Tensor::FromVector<float>({3}, {1, 2, 3}).value();
  Tensor b = a;
  b.data<float>()[0] = 9;
  EXPECT_EQ(a.data<float>()[0], 9);
  EXPECT_EQ(a.raw(), b.raw());
}

TEST(TensorTest, ViewSharesStorageAndKeepsItAlive) {
  Tensor view;
  {
    Tensor t = Tensor::FromVector<float>({3, 2}, {1, 2, 3, 4, 5, 6}).value();
    view = t.View(2 * sizeof(float), DType::kF32, {2, 2});  // rows 1 and 2
    t.data<float>()[2] = 30;
  }
  EXPECT_EQ(view.shape(), (Shape{2, 2}));
  EXPECT_EQ(view.ToVector<float>(), (std::vector<float>{30, 4, 5, 6}));
}

TEST(TensorTest, CloneIsDeep) {
  Tensor a = Tensor::FromVector<float>({2, 2}, {1, 2, 3, 4}).value();
  Tensor c = a.Clone();
  EXPECT_NE(c.raw(), a.raw());
  EXPECT_TRUE(IsAligned(c.raw()));
  EXPECT_EQ(c.shape(), a.shape());
  EXPECT_EQ(c.dtype(), a.dtype());
  EXPECT_EQ(c.ToVector<float>(), a.ToVector<float>());
  c.data<float>()[1] = -1;
  EXPECT_EQ(a.data<float>()[1], 2);  // the original is untouched
}

TEST(TensorTest, SliceCopiesRowsOfDimZero) {
  Tensor a = Tensor::FromVector<int32_t>({4, 3}, {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}).value();
  Tensor s = a.Slice(1, 3).value();
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.ToVector<int32_t>(), (std::vector<int32_t>{10, 11, 12, 20, 21, 22}));
  EXPECT_TRUE(IsAligned(s.raw()));
  s.data<int32_t>()[0] = -5;
  EXPECT_EQ(a.data<int32_t>()[3], 10);  // a copy, not a view
  EXPECT_EQ(a.Slice(2, 2)->num_elements(), 0);
  EXPECT_EQ(a.Slice(0, 4)->ToVector<int32_t>(), a.ToVector<int32_t>());
}

TEST(TensorTest, ReshapedSharesStorage) {
  Tensor a = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6}).value();
  Tensor r = a.Reshaped({3, 2}).value();
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.raw(), a.raw());
}

// Issue 13 item 4: Slice(0, 20000) of 10000 rows read past the buffer, and
// Slice(5, 2) returned a tensor of shape [-3, 28, 28].
TEST(TensorTest, SliceOutsideDimZeroIsAnError) {
  Tensor images(DType::kF32, {10, 28, 28});
  for (auto [begin, end] : {std::pair{0, 20}, std::pair{5, 2}, std::pair{-1, 3}, std::pair{11, 11}}) {
    absl::StatusOr<Tensor> s = images.Slice(begin, end);
    ASSERT_FALSE(s.ok()) << begin << ", " << end;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr("0 <= begin <= end <= 10"));
  }
  EXPECT_FALSE(Tensor::Scalar(1).Slice(0, 1).ok());
  EXPECT_EQ(images.Slice(10, 10)->shape(), (Shape{0, 28, 28}));
}

// Issue 13 item 5: 20 values into a shape of 2 overflowed the heap.
TEST(TensorTest, FromVectorNeedsExactlyOneValuePerElement) {
  absl::StatusOr<Tensor> t = Tensor::FromVector<float>({2}, std::vector<float>(20, 1.0f));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("shape [2] holds 2 elements, but 20 values were given"));
  EXPECT_FALSE(Tensor::FromVector<float>({2, 2}, {1, 2, 3}).ok());
  EXPECT_FALSE(Tensor::FromVector<float>({-1, 2}, {1, 2}).ok());
}

// Issue 13 item 5: Reshaped({8, 784}) on 4 images was accepted.
TEST(TensorTest, ReshapedToAnotherElementCountIsAnError) {
  Tensor images(DType::kF32, {4, 28, 28});
  absl::StatusOr<Tensor> r = images.Reshaped({8, 784});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("[4, 28, 28] (3136 elements) to [8, 784] (6272 elements)"));
  EXPECT_FALSE(images.Reshaped({-1, 784}).ok());
  EXPECT_FALSE(images.Reshaped({int64_t{1} << 62, 1 << 2, 4}).ok());
  EXPECT_EQ(images.Reshaped({4, 784})->shape(), (Shape{4, 784}));
}

// Issue 13 item 6: a size beyond memory is ResourceExhausted, a size beyond
// int64 InvalidArgument; neither throws.
TEST(TensorTest, CreateReportsSizesThatCannotBeAllocated) {
  absl::StatusOr<Tensor> huge = Tensor::Create(DType::kF32, {784, int64_t{1} << 40});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(huge.status().message(), HasSubstr("shape [784, 1099511627776]"));
  absl::StatusOr<Tensor> overflow = Tensor::Create(DType::kF32, {4, int64_t{1} << 62});
  EXPECT_EQ(overflow.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::Create(DType::kF32, {-1, 3}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Tensor> ok = Tensor::Create(DType::kI64, {2, 3});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->num_bytes(), 48u);
  EXPECT_TRUE(IsAligned(ok->raw()));
  EXPECT_THROW(Tensor(DType::kF32, {4, int64_t{1} << 62}), std::bad_alloc);
}

TEST(TensorTest, DebugString) {
  Tensor a = Tensor::FromVector<int32_t>({4}, {1, 2, 3, 4}).value();
  EXPECT_EQ(a.DebugString(2), "i32[4] {1, 2, ...}");
  EXPECT_EQ(a.DebugString(), "i32[4] {1, 2, 3, 4}");
}

}  // namespace
}  // namespace gradflow
