#ifndef GRADFLOW_CORE_TENSOR_H_
#define GRADFLOW_CORE_TENSOR_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace gradflow {

// A dense, row-major tensor with 64-byte aligned storage. Copies share the
// storage (like a shared_ptr); Clone() makes a deep copy.
class Tensor {
 public:
  static constexpr size_t kAlignment = 64;

  Tensor() = default;
  // Zero-filled tensor of a fully known shape.
  Tensor(DType dtype, Shape shape);

  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values) {
    Tensor t(DTypeOf<T>(), std::move(shape));
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }
  static Tensor Scalar(float v) { return FromVector<float>({}, {v}); }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  size_t num_bytes() const { return num_elements_ * SizeOf(dtype_); }
  bool empty() const { return data_ == nullptr; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  template <typename T> T* data() { return static_cast<T*>(raw()); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw()); }
  template <typename T> std::span<T> flat() { return {data<T>(), size_t(num_elements_)}; }
  template <typename T> std::span<const T> flat() const {
    return {data<T>(), size_t(num_elements_)};
  }
  template <typename T> std::vector<T> ToVector() const {
    return std::vector<T>(data<T>(), data<T>() + num_elements_);
  }

  Tensor Clone() const;
  // Rows [begin, end) of dim 0, copied.
  Tensor Slice(int64_t begin, int64_t end) const;
  // Same storage, another shape with the same element count.
  Tensor Reshaped(Shape shape) const;
  // A tensor of `dtype` and `shape` over bytes [offset, offset + its size) of
  // this one's storage (no copy; keeps the storage alive). The range must lie
  // inside the storage; views need not be 64-byte aligned.
  Tensor View(size_t offset, DType dtype, Shape shape) const;
  std::string DebugString(int max_elements = 8) const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  int64_t num_elements_ = 0;
  std::shared_ptr<uint8_t[]> data_;
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_TENSOR_H_
