#ifndef GRADFLOW_CORE_SHAPE_H_
#define GRADFLOW_CORE_SHAPE_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

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
  // Product of the dimensions; -1 if any is unknown; 1 for a scalar.
  int64_t NumElements() const;
  // Same shape with dim 0 replaced by `batch`.
  Shape WithBatch(int64_t batch) const;
  std::string ToString() const;  // "[-1, 784]"

  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  std::vector<int64_t> dims_;
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_SHAPE_H_
