// libFuzzer target for Tensor construction, slicing and reshaping
// (core/tensor.h, core/shape.h) from arbitrary shapes and counts.
//
// The input is read as a little program (bytes past the end read as 0):
//   dtype, shape A, a value count (A's element count plus a signed delta),
//   slice bounds [begin, end), shape B.
// A dim byte below 0xF0 is a small dim (0..16); 0xF0..0xFE takes the next
// byte k and makes 2^(k mod 63); 0xFF is -1 (unknown). Slice bounds are
// signed bytes, or with a marker byte 0x80 the extremes of int64.
//
// Invariants: Create, FromVector, Slice and Reshaped return a status, never
// crash, overflow (UBSan) or read out of bounds (ASan); each succeeds exactly
// when its documented condition holds, and what it returns has the promised
// shape, size and contents.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using gradflow::DType;
using gradflow::Shape;
using gradflow::Tensor;

// Tensors above this are not allocated (libFuzzer's RSS limit is 2 GiB).
constexpr size_t kMaxFuzzBytes = size_t{1} << 20;
// Far beyond any machine's memory: Create must say ResourceExhausted.
constexpr size_t kBeyondAnyMemory = size_t{1} << 50;
constexpr int kMaxRank = 5;

class Program {
 public:
  Program(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }

  Shape ReadShape() {
    std::vector<int64_t> dims(Byte() % (kMaxRank + 1));
    for (int64_t& d : dims) {
      const uint8_t code = Byte();
      if (code < 0xF0) {
        d = code % 17;
      } else if (code == 0xFF) {
        d = Shape::kUnknown;
      } else {
        d = int64_t{1} << (Byte() % 63);
      }
    }
    return Shape(std::move(dims));
  }

  int64_t ReadBound() {
    const int8_t b = static_cast<int8_t>(Byte());
    if (b != std::numeric_limits<int8_t>::min()) return b;
    return Byte() % 2 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// Row-major pattern the slices are checked against.
void Fill(Tensor& t) {
  auto* bytes = static_cast<uint8_t*>(t.raw());
  for (size_t i = 0; i < t.num_bytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 131 + 7);
}

void CheckCreate(DType dtype, const Shape& shape) {
  absl::StatusOr<size_t> bytes = shape.CheckedNumBytes(dtype);
  if (!bytes.ok()) {
    GF_FUZZ_CHECK(!Tensor::Create(dtype, shape).ok(), "Create accepted %s", shape.ToString().c_str());
    return;
  }
  if (*bytes > kBeyondAnyMemory) {
    absl::StatusCode code = Tensor::Create(dtype, shape).status().code();
    GF_FUZZ_CHECK(code == absl::StatusCode::kResourceExhausted, "Create of %zu bytes gave code %d", *bytes,
                  static_cast<int>(code));
  }
}

void CheckFromVector(const Shape& shape, int64_t count) {
  absl::StatusOr<int64_t> elements = shape.CheckedNumElements();
  absl::StatusOr<Tensor> t = Tensor::FromVector<float>(shape, std::vector<float>(count, 1.5f));
  const bool expected = elements.ok() && *elements == count;
  GF_FUZZ_CHECK(t.ok() == expected, "FromVector(%s, %lld values) ok=%d", shape.ToString().c_str(),
                static_cast<long long>(count), t.ok());
  if (t.ok()) GF_FUZZ_CHECK(t->num_elements() == count && t->shape() == shape, "FromVector's result");
}

void CheckSlice(const Tensor& t, int64_t begin, int64_t end) {
  absl::StatusOr<Tensor> s = t.Slice(begin, end);
  const bool valid = t.shape().rank() > 0 && 0 <= begin && begin <= end && end <= t.shape()[0];
  GF_FUZZ_CHECK(s.ok() == valid, "Slice(%lld, %lld) of %s ok=%d", static_cast<long long>(begin),
                static_cast<long long>(end), t.shape().ToString().c_str(), s.ok());
  if (!s.ok()) return;
  GF_FUZZ_CHECK(s->shape() == t.shape().WithBatch(end - begin), "Slice's shape %s", s->shape().ToString().c_str());
  const size_t row = t.shape()[0] == 0 ? 0 : t.num_bytes() / t.shape()[0];
  const auto* src = static_cast<const uint8_t*>(t.raw()) + begin * row;
  const auto* dst = static_cast<const uint8_t*>(s->raw());
  for (size_t i = 0; i < s->num_bytes(); ++i) GF_FUZZ_CHECK(dst[i] == src[i], "Slice byte %zu differs", i);
}

void CheckReshaped(const Tensor& t, const Shape& shape) {
  absl::StatusOr<Tensor> r = t.Reshaped(shape);
  absl::StatusOr<int64_t> elements = shape.CheckedNumElements();
  const bool valid = elements.ok() && *elements == t.num_elements();
  GF_FUZZ_CHECK(r.ok() == valid, "Reshaped(%s) of %s ok=%d", shape.ToString().c_str(),
                t.shape().ToString().c_str(), r.ok());
  if (r.ok()) GF_FUZZ_CHECK(r->raw() == t.raw() && r->shape() == shape, "Reshaped shares storage");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Program p(data, size);
  const DType dtype = static_cast<DType>(p.Byte() % 3);
  const Shape a = p.ReadShape();
  const int64_t delta = static_cast<int8_t>(p.Byte());
  const int64_t begin = p.ReadBound(), end = p.ReadBound();
  const Shape b = p.ReadShape();

  // Shape arithmetic: the checked count agrees with the saturating one.
  absl::StatusOr<int64_t> elements = a.CheckedNumElements();
  if (elements.ok()) GF_FUZZ_CHECK(a.NumElements() == *elements, "NumElements disagrees");
  CheckCreate(dtype, a);

  const int64_t count = std::max<int64_t>(0, (elements.ok() && *elements <= 4096 ? *elements : 0) + delta);
  CheckFromVector(a, count);

  absl::StatusOr<size_t> bytes = a.CheckedNumBytes(dtype);
  if (!bytes.ok() || *bytes > kMaxFuzzBytes) return 0;
  absl::StatusOr<Tensor> t = Tensor::Create(dtype, a);
  GF_FUZZ_CHECK(t.ok(), "Create of %zu bytes failed", *bytes);
  GF_FUZZ_CHECK(t->num_bytes() == *bytes && t->shape() == a, "Create's size");
  Fill(*t);
  CheckSlice(*t, begin, end);
  CheckReshaped(*t, b);
  return 0;
}
