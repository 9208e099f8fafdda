#include "core/shape.h"

#include "absl/strings/str_join.h"

namespace gradflow {

bool Shape::IsFullyKnown() const {
  for (int64_t d : dims_) {
    if (d < 0) return false;
  }
  return true;
}

int64_t Shape::NumElements() const {
  int64_t n = 1;
  for (int64_t d : dims_) {
    if (d < 0) return kUnknown;
    n *= d;
  }
  return n;
}

Shape Shape::WithBatch(int64_t batch) const {
  Shape s = *this;
  if (!s.dims_.empty()) s.dims_[0] = batch;
  return s;
}

std::string Shape::ToString() const { return "[" + absl::StrJoin(dims_, ", ") + "]"; }

}  // namespace gradflow
