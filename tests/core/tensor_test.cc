#include "core/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace gradflow {
namespace {

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
  Tensor t = Tensor::FromVector<int32_t>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(t.dtype(), DType::kI32);
  EXPECT_EQ(t.ToVector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 4}));
  Tensor s = Tensor::Scalar(2.5f);
  EXPECT_EQ(s.shape().rank(), 0);
  EXPECT_EQ(s.num_elements(), 1);
  EXPECT_EQ(s.data<float>()[0], 2.5f);
}

TEST(TensorTest, CopySharesStorage) {
  Tensor a = Tensor::FromVector<float>({3}, {1, 2, 3});
  Tensor b = a;
  b.data<float>()[0] = 9;
  EXPECT_EQ(a.data<float>()[0], 9);
  EXPECT_EQ(a.raw(), b.raw());
}

TEST(TensorTest, ViewSharesStorageAndKeepsItAlive) {
  Tensor view;
  {
    Tensor t = Tensor::FromVector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
    view = t.View(2 * sizeof(float), DType::kF32, {2, 2});  // rows 1 and 2
    t.data<float>()[2] = 30;
  }
  EXPECT_EQ(view.shape(), (Shape{2, 2}));
  EXPECT_EQ(view.ToVector<float>(), (std::vector<float>{30, 4, 5, 6}));
}

TEST(TensorTest, CloneIsDeep) {
  Tensor a = Tensor::FromVector<float>({2, 2}, {1, 2, 3, 4});
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
  Tensor a = Tensor::FromVector<int32_t>({4, 3}, {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32});
  Tensor s = a.Slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.ToVector<int32_t>(), (std::vector<int32_t>{10, 11, 12, 20, 21, 22}));
  EXPECT_TRUE(IsAligned(s.raw()));
  s.data<int32_t>()[0] = -5;
  EXPECT_EQ(a.data<int32_t>()[3], 10);  // a copy, not a view
  EXPECT_EQ(a.Slice(2, 2).num_elements(), 0);
  EXPECT_EQ(a.Slice(0, 4).ToVector<int32_t>(), a.ToVector<int32_t>());
}

TEST(TensorTest, ReshapedSharesStorage) {
  Tensor a = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = a.Reshaped({3, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.raw(), a.raw());
}

TEST(TensorTest, DebugString) {
  Tensor a = Tensor::FromVector<int32_t>({4}, {1, 2, 3, 4});
  EXPECT_EQ(a.DebugString(2), "i32[4] {1, 2, ...}");
  EXPECT_EQ(a.DebugString(), "i32[4] {1, 2, 3, 4}");
}

}  // namespace
}  // namespace gradflow
