#include "core/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

namespace gradflow {
namespace {

// The machine's physical memory in bytes. A tensor larger than this cannot
// be backed: Linux would hand out the address space (overcommit) and then
// kill the process when the zero fill touches it, so such a request fails
// up front.
size_t PhysicalMemoryBytes() {
  static const size_t bytes = [] {
    long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return SIZE_MAX;  // unknown: let malloc decide
    return static_cast<size_t>(pages) * static_cast<size_t>(page_size);
  }();
  return bytes;
}

// Zeroed, 64-byte aligned storage, or null if it cannot be had.
std::shared_ptr<uint8_t[]> TryAllocateAligned(size_t bytes) {
  if (bytes > PhysicalMemoryBytes()) return nullptr;
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (std::max<size_t>(bytes, 1) + Tensor::kAlignment - 1) /
                   Tensor::kAlignment * Tensor::kAlignment;
  void* p = std::aligned_alloc(Tensor::kAlignment, rounded);
  if (p == nullptr) return nullptr;
  std::memset(p, 0, rounded);
  return std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (shape_.IsFullyKnown()) {  // unknown dims: 0 elements; callers check IsFullyKnown
    absl::StatusOr<size_t> bytes = shape_.CheckedNumBytes(dtype_);
    if (!bytes.ok()) throw std::bad_array_new_length();
    num_elements_ = shape_.NumElements();
  }
  data_ = TryAllocateAligned(num_bytes());
  if (data_ == nullptr) throw std::bad_alloc();
}

absl::StatusOr<Tensor> Tensor::Create(DType dtype, Shape shape) {
  absl::StatusOr<size_t> bytes = shape.CheckedNumBytes(dtype);
  if (!bytes.ok()) return bytes.status();
  Tensor t;
  t.data_ = TryAllocateAligned(*bytes);
  if (t.data_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", *bytes, " bytes for a ", std::string(DTypeName(dtype)), " tensor of shape ",
        shape.ToString(), " (this machine has ", PhysicalMemoryBytes(), " bytes of memory)"));
  }
  t.dtype_ = dtype;
  t.num_elements_ = shape.NumElements();
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_);
  if (num_bytes() > 0) std::memcpy(t.raw(), raw(), num_bytes());
  return t;
}

absl::StatusOr<Tensor> Tensor::Slice(int64_t begin, int64_t end) const {
  if (shape_.rank() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Slice(", begin, ", ", end, ") of a scalar: there is no dim 0 to slice"));
  }
  const int64_t rows = shape_[0];
  if (begin < 0 || begin > end || end > rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Slice(", begin, ", ", end, ") of a tensor of shape ", shape_.ToString(),
        ": rows must satisfy 0 <= begin <= end <= ", rows));
  }
  absl::StatusOr<Tensor> t = Create(dtype_, shape_.WithBatch(end - begin));
  if (!t.ok()) return t.status();
  size_t row_bytes = rows == 0 ? 0 : num_bytes() / static_cast<size_t>(rows);
  if (t->num_bytes() > 0) {
    std::memcpy(t->raw(), static_cast<const uint8_t*>(raw()) + begin * row_bytes, t->num_bytes());
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

absl::StatusOr<Tensor> Tensor::Reshaped(Shape shape) const {
  absl::StatusOr<int64_t> elements = shape.CheckedNumElements();
  if (!elements.ok()) return elements.status();
  if (*elements != num_elements_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape a tensor of shape ", shape_.ToString(), " (", num_elements_,
                     " elements) to ", shape.ToString(), " (", *elements, " elements)"));
  }
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
      case DType::kBF16: absl::StrAppend(&s, BFloat16ToFloat(data<uint16_t>()[i])); break;
    }
  }
  if (n < num_elements_) s += ", ...";
  return s + "}";
}

}  // namespace gradflow
