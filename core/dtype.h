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

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DTYPE_H_
