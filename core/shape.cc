#include "core/shape.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow {
namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// The product of known, non-negative dims, or false if it exceeds int64. A
// zero dim makes the product 0 however large the others are.
bool KnownProduct(const std::vector<int64_t>& dims, int64_t* product) {
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) {
    *product = 0;
    return true;
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n)) return false;
  }
  *product = n;
  return true;
}

}  // namespace

bool Shape::IsFullyKnown() const {
  for (int64_t d : dims_) {
    if (d < 0) return false;
  }
  return true;
}

int64_t Shape::NumElements() const {
  if (!IsFullyKnown()) return kUnknown;
  int64_t n = 0;
  return KnownProduct(dims_, &n) ? n : kMaxInt64;
}

absl::StatusOr<int64_t> Shape::CheckedNumElements() const {
  if (!IsFullyKnown()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape ", ToString(), " has an unknown or negative dimension"));
  }
  int64_t n = 0;
  if (!KnownProduct(dims_, &n)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape ", ToString(), " has more than 2^63 - 1 elements; a dimension is far too large"));
  }
  return n;
}

absl::StatusOr<size_t> Shape::CheckedNumBytes(DType dtype) const {
  absl::StatusOr<int64_t> elements = CheckedNumElements();
  if (!elements.ok()) return elements.status();
  int64_t bytes = 0;
  if (__builtin_mul_overflow(*elements, static_cast<int64_t>(SizeOf(dtype)), &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("a ", std::string(DTypeName(dtype)),
                                                   " tensor of shape ", ToString(),
                                                   " needs more than 2^63 - 1 bytes"));
  }
  return static_cast<size_t>(bytes);
}

Shape Shape::WithBatch(int64_t batch) const {
  Shape s = *this;
  if (!s.dims_.empty()) s.dims_[0] = batch;
  return s;
}

bool Shape::SameUpToBatch(const Shape& other) const {
  if (rank() != other.rank()) return false;
  for (int d = 0; d < rank(); ++d) {
    if (dims_[d] != other[d] && !(d == 0 && (dims_[d] < 0 || other[d] < 0))) return false;
  }
  return true;
}

std::string Shape::ToString() const { return "[" + absl::StrJoin(dims_, ", ") + "]"; }

}  // namespace gradflow
