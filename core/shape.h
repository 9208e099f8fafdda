#ifndef GRADFLOW_CORE_SHAPE_H_
#define GRADFLOW_CORE_SHAPE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace gradflow {

// A tensor shape. A dimension of -1 is unknown until compile time (only the
// batch dimension, dim 0, may be unknown).
class Shape {
 public:
  static constexpr int64_t kUnknown = -1;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  const std::vector<int64_t>& dims() const { return dims_; }
  bool IsFullyKnown() const;
  // Product of the dimensions; -1 if any is unknown; 1 for a scalar. A
  // product beyond int64 saturates at INT64_MAX (no overflow); code that
  // sizes a buffer from a shape uses CheckedNumBytes instead.
  int64_t NumElements() const;
  // The element count, or InvalidArgument if a dimension is unknown or the
  // product does not fit in int64.
  absl::StatusOr<int64_t> CheckedNumElements() const;
  // The byte size of a `dtype` tensor of this shape, or InvalidArgument if a
  // dimension is unknown or the size does not fit in int64 (no address space
  // holds more).
  absl::StatusOr<size_t> CheckedNumBytes(DType dtype) const;
  // Same shape with dim 0 replaced by `batch`.
  Shape WithBatch(int64_t batch) const;
  // Same rank and dims, except that dim 0 may be unknown (-1) on either
  // side: graphs are built before the batch size is known.
  bool SameUpToBatch(const Shape& other) const;
  std::string ToString() const;  // "[-1, 784]"

  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  std::vector<int64_t> dims_;
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_SHAPE_H_
