#ifndef GRADFLOW_CORE_DTYPE_H_
#define GRADFLOW_CORE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gradflow {

// Element types. f32 carries all differentiable values; i32/i64 carry labels,
// indices and counters. bf16 (bfloat16: f32's sign and exponent, 7 mantissa
// bits) is storage only: the inputs of the matrix products a mixed-precision
// policy computes in bf16 (ops that take it say so: OpDef::takes_bf16).
enum class DType { kF32, kI32, kI64, kBF16 };

constexpr size_t SizeOf(DType t) {
  switch (t) {
    case DType::kI64: return 8;
    case DType::kBF16: return 2;
    default: return 4;
  }
}

constexpr std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kBF16: return "bf16";
  }
  return "?";
}

template <typename T> constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<int64_t>() { return DType::kI64; }

// Whether values of `dtype` are C++ arithmetic values (all but bf16).
constexpr bool IsArithmetic(DType t) { return t != DType::kBF16; }

// Calls f(T{}) with T the element type of `dtype` (float, int32_t or
// int64_t): the one switch over dtypes, for kernels written once as a
// template (`VisitDType(d, [&](auto zero) { Loop<decltype(zero)>(...); })`).
// bf16 has no C++ arithmetic type: callers check IsArithmetic first (or run
// where the graph lets no bf16 in); for bf16, f is not called.
template <typename F>
void VisitDType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32: f(float{}); return;
    case DType::kI32: f(int32_t{}); return;
    case DType::kI64: f(int64_t{}); return;
    case DType::kBF16: return;
  }
}

// bf16 <-> f32, rounding to nearest even, as the CPU's conversion
// instruction (AVX512-BF16's vcvtneps2bf16, which ops::Cast and oneDNN use) does:
// an f32 denormal becomes a zero of its sign, and a NaN stays a (quiet) NaN.
inline uint16_t FloatToBFloat16(float f) {
  uint32_t bits;
  __builtin_memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
inline float BFloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DTYPE_H_
