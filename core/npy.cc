#include "core/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"
#include "core/file_descriptor.h"
#include "core/status.h"

namespace gradflow {
namespace {

static_assert(std::endian::native == std::endian::little, "the .npy code copies little-endian data as is");

constexpr std::string_view kMagic("\x93NUMPY", 6);
// Magic, two version bytes, then the header length: 2 bytes (1.0), 4 (2.0, 3.0).
constexpr size_t kVersionEnd = 8;
// np.save aligns the data to this many bytes.
constexpr size_t kHeaderAlignment = 64;
// float64 and uint8 data are converted through a buffer of this many bytes.
constexpr size_t kConversionChunkBytes = size_t{1} << 20;

// ---------------------------------------------------------------- header --

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// The dict NumPy writes (format.py's header_data_from_array_1_0, as repr):
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }". Keys and
// strings in single or double quotes, without escapes; spaces between
// tokens; a trailing comma allowed in the dict and the tuple, required in a
// 1-tuple ("(5,)", as Python's repr writes it); then only spaces and '\n'.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  absl::StatusOr<NpyHeader> Parse() {
    NpyHeader header;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    GF_RETURN_IF_ERROR(Expect('{'));
    while (!Peek('}')) {
      GF_ASSIGN_OR_RETURN(std::string key, String());
      GF_RETURN_IF_ERROR(Expect(':'));
      if (key == "descr" && !seen_descr) {
        seen_descr = true;
        GF_ASSIGN_OR_RETURN(header.descr, Descr());
      } else if (key == "fortran_order" && !seen_order) {
        seen_order = true;
        GF_ASSIGN_OR_RETURN(header.fortran_order, Bool());
      } else if (key == "shape" && !seen_shape) {
        seen_shape = true;
        GF_ASSIGN_OR_RETURN(header.shape, Tuple());
      } else {
        return Error(absl::StrCat("unexpected key ", QuoteUserText(key),
                                  " (a header has 'descr', 'fortran_order' and 'shape', once each)"));
      }
      if (!Peek('}')) GF_RETURN_IF_ERROR(Expect(','));
    }
    GF_RETURN_IF_ERROR(Expect('}'));
    if (!seen_descr || !seen_order || !seen_shape) {
      return Error("the header dict must have all of 'descr', 'fortran_order' and 'shape'");
    }
    SkipSpaces();
    if (pos_ != text_.size() && text_.substr(pos_) != "\n") {
      return Error("unexpected text after the header dict (only spaces and a final newline may follow)");
    }
    return header;
  }

 private:
  void SkipSpaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  bool Peek(char c) {
    SkipSpaces();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("bad header at byte ", pos_, ": ", what));
  }
  absl::Status Expect(char c) {
    if (!Peek(c)) return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String() {
    SkipSpaces();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return Error("expected a quoted string");
    }
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return Error("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    if (value.find('\\') != std::string::npos) return Error("escapes in strings are not supported");
    pos_ = end + 1;
    return value;
  }

  // A structured dtype's descr is a list, which is named as such.
  absl::StatusOr<std::string> Descr() {
    if (Peek('[')) {
      return Error("'descr' is a list: structured (record) dtypes are not supported; save a plain numeric array");
    }
    return String();
  }

  absl::StatusOr<bool> Bool() {
    SkipSpaces();
    for (const auto& [word, value] : {std::pair{std::string_view("True"), true}, {"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    return Error("'fortran_order' must be True or False");
  }

  absl::StatusOr<int64_t> Dim() {
    SkipSpaces();
    const size_t start = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const int digit = text_[pos_++] - '0';
      if (value > (INT64_MAX - digit) / 10) return Error("a dimension does not fit in int64");
      value = value * 10 + digit;
    }
    if (pos_ == start) return Error("a shape dimension must be a non-negative integer");
    return value;
  }

  absl::StatusOr<std::vector<int64_t>> Tuple() {
    GF_RETURN_IF_ERROR(Expect('('));
    std::vector<int64_t> dims;
    bool trailing_comma = false;
    while (!Peek(')')) {
      if (static_cast<int>(dims.size()) == kMaxNpyRank) {
        return Error(absl::StrCat("the shape has more than ", kMaxNpyRank, " dimensions"));
      }
      GF_ASSIGN_OR_RETURN(int64_t dim, Dim());
      dims.push_back(dim);
      trailing_comma = Peek(',');
      if (!trailing_comma) break;
      ++pos_;
    }
    GF_RETURN_IF_ERROR(Expect(')'));
    if (dims.size() == 1 && !trailing_comma) return Error("'shape' must be a tuple: write (n,) for one dimension");
    return dims;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------- element types --

enum class Conversion { kNone, kFromFloat64, kFromUint8 };

struct ElementType {
  DType dtype;
  size_t file_bytes;  // per element in the file
  Conversion conversion;
};

absl::StatusOr<ElementType> ElementTypeOf(const std::string& descr) {
  if (descr == "<f4") return ElementType{DType::kF32, 4, Conversion::kNone};
  if (descr == "<f8") return ElementType{DType::kF32, 8, Conversion::kFromFloat64};
  if (descr == "<i4") return ElementType{DType::kI32, 4, Conversion::kNone};
  if (descr == "<i8") return ElementType{DType::kI64, 8, Conversion::kNone};
  if (descr == "|u1") return ElementType{DType::kF32, 1, Conversion::kFromUint8};
  const std::string quoted = QuoteUserText(descr);
  if (!descr.empty() && descr[0] == '>') {
    return absl::InvalidArgumentError(absl::StrCat("dtype ", quoted, " is big-endian; save it little-endian: ",
                                                   "np.save(path, a.astype(a.dtype.newbyteorder('<')))"));
  }
  if (descr.find('O') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("dtype ", quoted, " is an object array (pickled Python ",
                                                   "objects), which is never loaded; save a numeric array"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dtype ", quoted, " is not supported; use float32 ('<f4'), float64 ('<f8'), int32 ('<i4'), ",
                   "int64 ('<i8') or uint8 ('|u1'), e.g. np.save(path, a.astype(np.float32))"));
}

// ----------------------------------------------------------------- reading --

// Reads exactly `n` bytes at `offset`: OK, an OS error, or DataLoss if the
// file ends first.
absl::Status ReadAt(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return OsError(errno, "cannot read it");
    if (r == 0) return absl::DataLossError("the file shrank while being read");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

// An open regular file: the descriptor (not owned) and its size.
struct OpenFile {
  int fd;
  uint64_t size;
};

absl::StatusOr<uint64_t> RegularFileSize(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return OsError(errno, "cannot stat it");
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("it is not a regular file (a directory, FIFO or device?)");
  return static_cast<uint64_t>(st.st_size);
}

// The header text and where the data starts.
struct HeaderText {
  std::string text;
  uint64_t data_offset;
};

absl::StatusOr<HeaderText> ReadHeaderText(const OpenFile& file) {
  std::array<char, kVersionEnd + 4> prefix{};
  if (file.size < kVersionEnd + 2) {
    return absl::DataLossError(absl::StrCat("the file has ", file.size, " bytes, too few for a .npy header"));
  }
  GF_RETURN_IF_ERROR(ReadAt(file.fd, prefix.data(), kVersionEnd + 2, 0));
  if (std::string_view(prefix.data(), kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError("it does not start with \"\\x93NUMPY\" (not a .npy file; an .npz is a zip of them)");
  }
  const int major = static_cast<uint8_t>(prefix[6]), minor = static_cast<uint8_t>(prefix[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    return absl::InvalidArgumentError(absl::StrCat("format version ", major, ".", minor,
                                                   " is not supported (1.0, 2.0 and 3.0 are)"));
  }
  size_t length_bytes = major == 1 ? 2 : 4;
  if (length_bytes == 4) GF_RETURN_IF_ERROR(ReadAt(file.fd, prefix.data() + kVersionEnd + 2, 2, kVersionEnd + 2));
  uint32_t header_bytes = 0;
  for (size_t i = 0; i < length_bytes; ++i) header_bytes |= uint32_t{static_cast<uint8_t>(prefix[kVersionEnd + i])} << (8 * i);
  const uint64_t header_start = kVersionEnd + length_bytes;
  if (header_bytes > kMaxNpyHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the header length (", header_bytes,
                                                   " bytes) is above the limit of ", kMaxNpyHeaderBytes));
  }
  if (header_start + header_bytes > file.size) {
    return absl::DataLossError(absl::StrCat("the header length (", header_bytes, " bytes) runs past the end of the file (",
                                            file.size, " bytes): truncated"));
  }
  HeaderText header{std::string(header_bytes, '\0'), header_start + header_bytes};
  GF_RETURN_IF_ERROR(ReadAt(file.fd, header.text.data(), header_bytes, header_start));
  return header;
}

// The element count times the element size must not overflow and must be
// the bytes the file holds after the header: checked before any allocation.
absl::Status CheckDataSize(const NpyHeader& header, const ElementType& type, uint64_t data_bytes) {
  // A zero dimension makes an empty array whatever the others are.
  const bool empty = std::find(header.shape.begin(), header.shape.end(), 0) != header.shape.end();
  uint64_t elements = empty ? 0 : 1;
  for (int64_t d : empty ? std::vector<int64_t>{} : header.shape) {
    if (elements > static_cast<uint64_t>(INT64_MAX) / type.file_bytes / static_cast<uint64_t>(d)) {
      return absl::InvalidArgumentError(absl::StrCat("shape (", absl::StrJoin(header.shape, ", "),
                                                     ") has more elements than any file can hold"));
    }
    elements *= static_cast<uint64_t>(d);
  }
  const uint64_t needed = elements * type.file_bytes;
  if (needed > data_bytes) {
    return absl::DataLossError(absl::StrCat("shape (", absl::StrJoin(header.shape, ", "), ") of ",
                                            QuoteUserText(header.descr), " needs ", needed, " bytes of data but the file has ",
                                            data_bytes, ": it is truncated"));
  }
  if (needed < data_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(data_bytes - needed, " bytes follow the data of shape (",
                                                   absl::StrJoin(header.shape, ", "), "); not a .npy file np.save wrote"));
  }
  return absl::OkStatus();
}

// Converts file elements of type `From` into float32, a bounded chunk at a time.
template <typename From>
absl::Status ReadConverted(int fd, uint64_t offset, float* out, int64_t elements) {
  std::vector<From> chunk(kConversionChunkBytes / sizeof(From));
  for (int64_t done = 0; done < elements;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(elements - done, static_cast<int64_t>(chunk.size())));
    GF_RETURN_IF_ERROR(ReadAt(fd, chunk.data(), n * sizeof(From), offset + done * sizeof(From)));
    std::transform(chunk.begin(), chunk.begin() + n, out + done, [](From v) { return static_cast<float>(v); });
    done += static_cast<int64_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ReadData(const OpenFile& file, const NpyHeader& header, const ElementType& type,
                                uint64_t offset) {
  GF_ASSIGN_OR_RETURN(Tensor tensor, Tensor::Create(type.dtype, Shape(header.shape)));
  switch (type.conversion) {
    case Conversion::kNone:
      GF_RETURN_IF_ERROR(ReadAt(file.fd, tensor.raw(), tensor.num_bytes(), offset));
      break;
    case Conversion::kFromFloat64:
      GF_RETURN_IF_ERROR(ReadConverted<double>(file.fd, offset, tensor.data<float>(), tensor.num_elements()));
      break;
    case Conversion::kFromUint8:
      GF_RETURN_IF_ERROR(ReadConverted<uint8_t>(file.fd, offset, tensor.data<float>(), tensor.num_elements()));
      break;
  }
  return tensor;
}

absl::StatusOr<Tensor> ReadNpyOrError(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused).
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0) return OsError(errno, "cannot open it");
  FileDescriptor fd(raw);
  GF_ASSIGN_OR_RETURN(const uint64_t size, RegularFileSize(raw));
  const OpenFile file{raw, size};
  GF_ASSIGN_OR_RETURN(HeaderText text, ReadHeaderText(file));
  GF_ASSIGN_OR_RETURN(NpyHeader header, HeaderParser(text.text).Parse());
  GF_ASSIGN_OR_RETURN(ElementType type, ElementTypeOf(header.descr));
  if (header.fortran_order) {
    return absl::InvalidArgumentError(
        "fortran_order is True (column-major data); save it in C order: np.save(path, np.ascontiguousarray(a))");
  }
  GF_RETURN_IF_ERROR(CheckDataSize(header, type, file.size - text.data_offset));
  return ReadData(file, header, type, text.data_offset);
}

// ----------------------------------------------------------------- writing --

std::string Descr(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "<f4";
    case DType::kI32: return "<i4";
    case DType::kI64: return "<i8";
    case DType::kBF16: break;  // refused by WriteNpy
  }
  return "?";
}

// Python's repr of the shape tuple: "()", "(5,)", "(5, 4, 4)".
std::string ShapeTuple(const Shape& shape) {
  if (shape.rank() == 1) return absl::StrCat("(", shape[0], ",)");
  return absl::StrCat("(", absl::StrJoin(shape.dims(), ", "), ")");
}

// np.save leaves room after the dict to rewrite dim 0 with up to this many
// digits in place (format.py's GROWTH_AXIS_MAX_DIGITS).
constexpr size_t kGrowthAxisDigits = 21;

// Magic, version, length and header exactly as np.save writes them: the
// dict, the growth spaces, then spaces and '\n' so that the data starts at a
// multiple of 64 (a whole 64 more when the text already ends on one, as
// format.py's _wrap_header computes it). Version 1.0 unless its 16-bit
// length cannot hold the header.
std::string Preamble(const Tensor& tensor) {
  std::string header = absl::StrCat("{'descr': '", Descr(tensor.dtype()), "', 'fortran_order': False, 'shape': ",
                                    ShapeTuple(tensor.shape()), ", }");
  if (tensor.shape().rank() > 0) {
    header.append(kGrowthAxisDigits - std::min(kGrowthAxisDigits, std::to_string(tensor.shape()[0]).size()), ' ');
  }
  const auto header_length = [&](size_t length_bytes) {
    const size_t used = kVersionEnd + length_bytes + header.size() + 1;
    return header.size() + 1 + (kHeaderAlignment - used % kHeaderAlignment);
  };
  const bool version1 = header_length(2) <= 0xffff;
  const size_t length_bytes = version1 ? 2 : 4;
  const size_t total = header_length(length_bytes);
  std::string out(kMagic);
  out += static_cast<char>(version1 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < length_bytes; ++i) out += static_cast<char>((total >> (8 * i)) & 0xff);
  out += header;
  out.append(total - header.size() - 1, ' ');
  out += '\n';
  return out;
}

}  // namespace

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  absl::StatusOr<Tensor> tensor = ReadNpyOrError(path);
  if (tensor.ok()) return tensor;
  return absl::Status(tensor.status().code(),
                      absl::StrCat("cannot read .npy file ", QuoteUserText(path, 4096), ": ", tensor.status().message()));
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  if (tensor.dtype() == DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write .npy file ", QuoteUserText(path, 4096),
                                                   ": NumPy has no bf16; cast the tensor to f32 first (Cast)"));
  }
  const std::string preamble = Preamble(tensor);
  const FilePiece pieces[] = {{preamble.data(), preamble.size()}, {tensor.raw(), tensor.num_bytes()}};
  absl::Status written = WriteFileAtomically(path, pieces);
  if (written.ok()) return written;
  return absl::Status(written.code(),
                      absl::StrCat("cannot write .npy file ", QuoteUserText(path, 4096), ": ", written.message()));
}

}  // namespace gradflow
