#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

namespace gradflow {
namespace {

std::shared_ptr<uint8_t[]> AllocateAligned(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (std::max<size_t>(bytes, 1) + Tensor::kAlignment - 1) /
                   Tensor::kAlignment * Tensor::kAlignment;
  void* p = std::aligned_alloc(Tensor::kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

}  // namespace

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), num_elements_(shape_.NumElements()) {
  if (num_elements_ < 0) num_elements_ = 0;  // unknown dims: callers check IsFullyKnown
  data_ = AllocateAligned(num_bytes());
}

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_);
  if (num_bytes() > 0) std::memcpy(t.raw(), raw(), num_bytes());
  return t;
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  Shape s = shape_.WithBatch(end - begin);
  Tensor t(dtype_, s);
  size_t row_bytes = shape_[0] == 0 ? 0 : num_bytes() / shape_[0];
  if (t.num_bytes() > 0) {
    std::memcpy(t.raw(), static_cast<const uint8_t*>(raw()) + begin * row_bytes, t.num_bytes());
  }
  return t;
}

Tensor Tensor::View(size_t offset, DType dtype, Shape shape) const {
  Tensor t;
  t.dtype_ = dtype;
  t.num_elements_ = shape.NumElements();
  t.shape_ = std::move(shape);
  t.data_ = std::shared_ptr<uint8_t[]>(data_, data_.get() + offset);  // aliasing: shares ownership
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

std::string Tensor::DebugString(int max_elements) const {
  std::string s = absl::StrCat(std::string(DTypeName(dtype_)), shape_.ToString(), " {");
  int64_t n = std::min<int64_t>(num_elements_, max_elements);
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    switch (dtype_) {
      case DType::kF32: absl::StrAppend(&s, data<float>()[i]); break;
      case DType::kI32: absl::StrAppend(&s, data<int32_t>()[i]); break;
      case DType::kI64: absl::StrAppend(&s, data<int64_t>()[i]); break;
    }
  }
  if (n < num_elements_) s += ", ...";
  return s + "}";
}

}  // namespace gradflow
