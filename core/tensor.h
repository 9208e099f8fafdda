#ifndef GRADFLOW_CORE_TENSOR_H_
#define GRADFLOW_CORE_TENSOR_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace gradflow {

// A dense, row-major tensor with 64-byte aligned storage. Copies share the
// storage (like a shared_ptr); Clone() makes a deep copy.
class Tensor {
 public:
  static constexpr size_t kAlignment = 64;

  Tensor() = default;
  // Zero-filled tensor of a fully known shape (unknown dims give 0 elements).
  // Like std::vector, throws std::bad_alloc if the storage cannot be had;
  // code sizing a tensor from input it does not control uses Create.
  Tensor(DType dtype, Shape shape);
  // A zero-filled tensor, or InvalidArgument (unknown dims, a size beyond
  // int64) or ResourceExhausted (more bytes than the machine's memory, or the
  // allocation failed): never an exception.
  static absl::StatusOr<Tensor> Create(DType dtype, Shape shape);

  // A tensor of `shape` holding `values` (row-major). InvalidArgument unless
  // `values` has exactly as many elements as `shape`.
  template <typename T>
  static absl::StatusOr<Tensor> FromVector(Shape shape, const std::vector<T>& values) {
    absl::StatusOr<int64_t> elements = shape.CheckedNumElements();
    if (!elements.ok()) return elements.status();
    if (static_cast<uint64_t>(*elements) != values.size()) {
      return absl::InvalidArgumentError(absl::StrCat("FromVector: shape ", shape.ToString(),
                                                     " holds ", *elements, " elements, but ",
                                                     values.size(), " values were given"));
    }
    absl::StatusOr<Tensor> t = Create(DTypeOf<T>(), std::move(shape));
    if (t.ok()) std::copy(values.begin(), values.end(), t->data<T>());
    return t;
  }
  static Tensor Scalar(float v) {
    Tensor t(DType::kF32, Shape{});
    *t.data<float>() = v;
    return t;
  }

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
  // Rows [begin, end) of dim 0, copied. InvalidArgument unless the tensor has
  // a dim 0 and 0 <= begin <= end <= shape()[0].
  absl::StatusOr<Tensor> Slice(int64_t begin, int64_t end) const;
  // Same storage, another fully known shape. InvalidArgument unless `shape`
  // has the same element count.
  absl::StatusOr<Tensor> Reshaped(Shape shape) const;
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
