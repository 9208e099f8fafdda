#ifndef GRADFLOW_CORE_DTYPE_H_
#define GRADFLOW_CORE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gradflow {

// Element types. f32 carries all differentiable values; i32/i64 carry labels,
// indices and counters.
enum class DType { kF32, kI32, kI64 };

constexpr size_t SizeOf(DType t) { return t == DType::kI64 ? 8 : 4; }

constexpr std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
  }
  return "?";
}

template <typename T> constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<int64_t>() { return DType::kI64; }

// Calls f(T{}) with T the element type of `dtype` (float, int32_t or
// int64_t): the one switch over dtypes, for kernels written once as a
// template (`VisitDType(d, [&](auto zero) { Loop<decltype(zero)>(...); })`).
template <typename F>
void VisitDType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32: f(float{}); return;
    case DType::kI32: f(int32_t{}); return;
    case DType::kI64: f(int64_t{}); return;
  }
}

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DTYPE_H_
