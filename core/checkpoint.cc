#include "core/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"
#include "core/file_descriptor.h"
#include "core/status.h"

namespace gradflow {

// The file holds little-endian numbers and tensors are written and read as raw
// memory; a big-endian host would need byte swaps this code does not have.
static_assert(std::endian::native == std::endian::little,
              "checkpoint files are little-endian; big-endian hosts are not supported");

namespace {

using Json = nlohmann::json;

// The u64 header length that starts every safetensors file.
constexpr size_t kHeaderLengthBytes = 8;
// The reference writer pads the header with spaces so the data section starts
// at a multiple of 8 bytes; gradflow writes the same.
constexpr size_t kHeaderAlignment = 8;
constexpr char kMetadataKey[] = "__metadata__";
// A tensor rank beyond this is certainly corrupt (numpy 2 allows 64 dims);
// the cap also bounds what a header of repeated `1,` can make us store.
constexpr size_t kMaxRank = 64;
// The safetensors dtypes gradflow has no DType for: valid files, but
// unsupported here (Unimplemented rather than InvalidArgument).
constexpr std::string_view kOtherSafetensorsDTypes[] = {
    "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "U32", "F64", "U64",
};
constexpr char kSupportedDTypes[] = "F32, I32, I64, BF16";

// A name or key for an error message (see QuoteUserText).
std::string Quote(std::string_view s) { return QuoteUserText(s); }

std::string SafetensorsName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

std::string DimsString(const std::vector<int64_t>& dims) {
  return "[" + absl::StrJoin(dims, ", ") + "]";
}

// ---------------------------------------------------------------- reading --

// Reads exactly `n` bytes at `offset`. Returns false with errno set on an OS
// error, or false with errno == 0 when the file ended early.
bool ReadFully(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = 0;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// One tensor as the header describes it, before validation.
struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> dims;
  std::vector<uint64_t> offsets;  // [begin, end] once parsed
};

struct ParsedHeader {
  std::vector<HeaderEntry> entries;
  std::map<std::string, std::string> metadata;
};

// A strict streaming parser for the header. Builds the entries directly (no
// JSON DOM, so a hostile header cannot make us allocate much more than its own
// size), stops at the first problem, and catches what nlohmann's DOM parser
// would hide: duplicate keys (it keeps the last), unknown fields and values of
// the wrong type.
class HeaderParser : public nlohmann::json_sax<Json> {
 public:
  const std::string& error() const { return error_; }
  ParsedHeader& result() { return result_; }
  bool done() const { return state_ == State::kDone; }

  bool null() override { return Unexpected("null"); }
  bool boolean(bool) override { return Unexpected("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v >= 0) return number_unsigned(static_cast<number_unsigned_t>(v));
    if (state_ == State::kShape) {
      return Fail(absl::StrCat("tensor ", Quote(entry_.name), " has a negative dimension (", v,
                               ") in its shape"));
    }
    if (state_ == State::kOffsets) {
      return Fail(
          absl::StrCat("tensor ", Quote(entry_.name), " has a negative data offset (", v, ")"));
    }
    return Unexpected("a negative integer");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (state_ == State::kShape) {
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Fail(absl::StrCat("tensor ", Quote(entry_.name), " has a dimension (", v,
                                 ") larger than 2^63 - 1"));
      }
      if (entry_.dims.size() == kMaxRank) {
        return Fail(absl::StrCat("tensor ", Quote(entry_.name), " has more than ", kMaxRank,
                                 " dimensions"));
      }
      entry_.dims.push_back(static_cast<int64_t>(v));
      return true;
    }
    if (state_ == State::kOffsets) {
      if (entry_.offsets.size() == 2) {
        return Fail(absl::StrCat("data_offsets of tensor ", Quote(entry_.name),
                                 " must have exactly two entries [begin, end]"));
      }
      entry_.offsets.push_back(v);
      return true;
    }
    return Unexpected("a number");
  }
  bool number_float(number_float_t, const string_t& text) override {
    return Unexpected(absl::StrCat("the non-integer or too large number ", text));
  }
  bool string(string_t& s) override {
    if (state_ == State::kMetadataValue) {
      result_.metadata.emplace(key_, std::move(s));
      state_ = State::kMetadata;
      return true;
    }
    if (state_ == State::kEntryValue && field_ == Field::kDType) {
      entry_.dtype = std::move(s);
      state_ = State::kEntry;
      return true;
    }
    return Unexpected("a string");
  }
  bool binary(binary_t&) override { return Unexpected("binary data"); }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::kStart:
        state_ = State::kTop;
        return true;
      case State::kTopValue:
        if (key_ == kMetadataKey) {
          state_ = State::kMetadata;
        } else if (result_.entries.size() == kMaxCheckpointTensors) {
          return Fail(absl::StrCat("the header describes more than ", kMaxCheckpointTensors, " tensors"));
        } else {
          entry_ = HeaderEntry();
          entry_.name = key_;
          fields_seen_ = 0;
          state_ = State::kEntry;
        }
        return true;
      default:
        return Unexpected("an object");
    }
  }
  bool key(string_t& k) override {
    switch (state_) {
      case State::kTop:
        if (!names_.insert(k).second) {
          return Fail(absl::StrCat("the header has the key ", Quote(k), " twice"));
        }
        key_ = std::move(k);
        state_ = State::kTopValue;
        return true;
      case State::kMetadata:
        if (result_.metadata.count(k) != 0) {
          return Fail(absl::StrCat("__metadata__ has the key ", Quote(k), " twice"));
        }
        key_ = std::move(k);
        state_ = State::kMetadataValue;
        return true;
      case State::kEntry: {
        if (k == "dtype") {
          field_ = Field::kDType;
        } else if (k == "shape") {
          field_ = Field::kShape;
        } else if (k == "data_offsets") {
          field_ = Field::kOffsets;
        } else {
          return Fail(absl::StrCat("tensor ", Quote(entry_.name), " has the unknown field ",
                                   Quote(k), " (expected dtype, shape, data_offsets)"));
        }
        unsigned bit = 1u << static_cast<int>(field_);
        if (fields_seen_ & bit) {
          return Fail(
              absl::StrCat("tensor ", Quote(entry_.name), " has the field ", Quote(k), " twice"));
        }
        fields_seen_ |= bit;
        state_ = State::kEntryValue;
        return true;
      }
      default:
        return Fail("unexpected key");  // the JSON grammar puts keys only in objects
    }
  }
  bool end_object() override {
    switch (state_) {
      case State::kTop:
        state_ = State::kDone;
        return true;
      case State::kMetadata:
        state_ = State::kTop;
        return true;
      case State::kEntry:
        for (auto [field, name] :
             {std::pair{Field::kDType, "dtype"}, std::pair{Field::kShape, "shape"},
              std::pair{Field::kOffsets, "data_offsets"}}) {
          if (!(fields_seen_ & (1u << static_cast<int>(field)))) {
            return Fail(absl::StrCat("tensor ", Quote(entry_.name), " has no field '", name, "'"));
          }
        }
        result_.entries.push_back(std::move(entry_));
        state_ = State::kTop;
        return true;
      default:
        return Fail("unexpected end of object");
    }
  }
  bool start_array(std::size_t) override {
    if (state_ == State::kEntryValue && field_ == Field::kShape) {
      state_ = State::kShape;
      return true;
    }
    if (state_ == State::kEntryValue && field_ == Field::kOffsets) {
      state_ = State::kOffsets;
      return true;
    }
    return Unexpected("an array");
  }
  bool end_array() override {
    if (state_ == State::kShape) {
      state_ = State::kEntry;
      return true;
    }
    if (state_ == State::kOffsets) {
      if (entry_.offsets.size() != 2) {
        return Fail(absl::StrCat("data_offsets of tensor ", Quote(entry_.name),
                                 " must have exactly two entries [begin, end], not ",
                                 entry_.offsets.size()));
      }
      state_ = State::kEntry;
      return true;
    }
    return Fail("unexpected end of array");
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return Fail(absl::StrCat("the header is not valid JSON: ", e.what()));
  }

 private:
  enum class State {
    kStart,
    kTop,
    kTopValue,
    kMetadata,
    kMetadataValue,
    kEntry,
    kEntryValue,
    kShape,
    kOffsets,
    kDone,
  };
  enum class Field { kDType = 0, kShape = 1, kOffsets = 2 };

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  // A value of the wrong kind (`found`) where the state expects another.
  bool Unexpected(const std::string& found) {
    switch (state_) {
      case State::kStart:
        return Fail(absl::StrCat("the header must be a JSON object, found ", found));
      case State::kTopValue:
        if (key_ == kMetadataKey) {
          return Fail(absl::StrCat("__metadata__ must be an object of strings, found ", found));
        }
        return Fail(absl::StrCat("the entry for tensor ", Quote(key_),
                                 " must be an object {dtype, shape, data_offsets}, found ", found));
      case State::kMetadataValue:
        return Fail(absl::StrCat("__metadata__ value for key ", Quote(key_),
                                 " must be a string, found ", found));
      case State::kEntryValue:
        switch (field_) {
          case Field::kDType:
            return Fail(absl::StrCat("dtype of tensor ", Quote(entry_.name),
                                     " must be a string, found ", found));
          case Field::kShape:
            return Fail(absl::StrCat("shape of tensor ", Quote(entry_.name),
                                     " must be an array of non-negative integers, found ", found));
          case Field::kOffsets:
            return Fail(absl::StrCat("data_offsets of tensor ", Quote(entry_.name),
                                     " must be an array [begin, end], found ", found));
        }
        break;
      case State::kShape:
        return Fail(absl::StrCat("shape of tensor ", Quote(entry_.name),
                                 " must hold non-negative integers, found ", found));
      case State::kOffsets:
        return Fail(absl::StrCat("data_offsets of tensor ", Quote(entry_.name),
                                 " must hold non-negative integers, found ", found));
      default:
        break;
    }
    return Fail(absl::StrCat("unexpected ", found, " in the header"));
  }

  State state_ = State::kStart;
  Field field_ = Field::kDType;
  unsigned fields_seen_ = 0;
  std::string key_;
  HeaderEntry entry_;
  std::set<std::string> names_;
  ParsedHeader result_;
  std::string error_;
};

// A header entry checked against the rules and the data section's size.
struct TensorLayout {
  const HeaderEntry* entry;
  DType dtype;
  uint64_t begin;
  uint64_t end;
};

absl::StatusOr<DType> ParseDType(const HeaderEntry& e) {
  if (e.dtype == "F32") return DType::kF32;
  if (e.dtype == "I32") return DType::kI32;
  if (e.dtype == "I64") return DType::kI64;
  if (e.dtype == "BF16") return DType::kBF16;
  for (std::string_view other : kOtherSafetensorsDTypes) {
    if (e.dtype == other) {
      return absl::UnimplementedError(absl::StrCat("tensor ", Quote(e.name), " has dtype ",
                                                   Quote(e.dtype),
                                                   ", which gradflow does not "
                                                   "support (supported: ",
                                                   kSupportedDTypes, ")"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("tensor ", Quote(e.name),
                                                 " has the unknown dtype ", Quote(e.dtype),
                                                 " (supported: ", kSupportedDTypes, ")"));
}

// Checks one entry on its own: dtype, element count without overflow, byte
// count == elements * element size, begin <= end <= data_bytes, alignment.
absl::StatusOr<TensorLayout> CheckEntry(const HeaderEntry& e, uint64_t data_bytes) {
  GF_ASSIGN_OR_RETURN(DType dtype, ParseDType(e));
  int64_t elements = 1;
  for (int64_t d : e.dims) {
    if (__builtin_mul_overflow(elements, d, &elements)) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", DimsString(e.dims), " of tensor ",
                                                     Quote(e.name),
                                                     " has more elements than fit in 64 bits"));
    }
  }
  uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(elements), uint64_t{SizeOf(dtype)},
                             &expected_bytes) ||
      expected_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", DimsString(e.dims), " of tensor ",
                                                   Quote(e.name),
                                                   " needs more bytes than fit in "
                                                   "64 bits"));
  }
  uint64_t begin = e.offsets[0], end = e.offsets[1];
  std::string offsets =
      absl::StrCat("data_offsets [", begin, ", ", end, "] of tensor ", Quote(e.name));
  if (begin > end) {
    return absl::InvalidArgumentError(absl::StrCat(offsets, " are reversed (begin > end)"));
  }
  if (end > data_bytes) {
    return absl::DataLossError(absl::StrCat(offsets, " run past the end of the data section (",
                                            data_bytes,
                                            " bytes); the file is truncated or its "
                                            "offsets are wrong"));
  }
  if (end - begin != expected_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        offsets, " span ", end - begin, " bytes, but shape ", DimsString(e.dims), " of ", e.dtype,
        " needs ", expected_bytes, " (", elements, " elements x ", SizeOf(dtype), " bytes)"));
  }
  if (begin % SizeOf(dtype) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(offsets,
                                                   " are misaligned: begin is not a "
                                                   "multiple of the ",
                                                   SizeOf(dtype), "-byte element size of ",
                                                   e.dtype));
  }
  return TensorLayout{&e, dtype, begin, end};
}

// The tensors must tile the data section exactly: sorted by offset, each
// begins where the previous ended, the first at 0, the last at the end.
absl::Status CheckTiling(std::vector<TensorLayout>& layouts, uint64_t data_bytes) {
  std::sort(layouts.begin(), layouts.end(), [](const TensorLayout& a, const TensorLayout& b) {
    return std::tie(a.begin, a.end, a.entry->name) < std::tie(b.begin, b.end, b.entry->name);
  });
  uint64_t covered = 0;
  const TensorLayout* previous = nullptr;
  for (const TensorLayout& t : layouts) {
    if (t.begin < covered) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensors ", Quote(previous->entry->name), " [", previous->begin, ", ", previous->end,
          ") and ", Quote(t.entry->name), " [", t.begin, ", ", t.end, ") overlap"));
    }
    if (t.begin > covered) {
      return absl::InvalidArgumentError(absl::StrCat("bytes [", covered, ", ", t.begin,
                                                     ") of the data section belong to no tensor "
                                                     "(a gap before tensor ",
                                                     Quote(t.entry->name), ")"));
    }
    covered = t.end;
    previous = &t;
  }
  if (covered != data_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the data section has ", data_bytes - covered, " trailing bytes after the last tensor (",
        data_bytes, " bytes, tensors cover ", covered, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> LoadCheckpointOrError(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is rejected
  // below); reads of regular files ignore the flag.
  int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (raw_fd < 0) return OsError(errno, "cannot open it");
  FileDescriptor fd(raw_fd);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return OsError(errno, "cannot stat it");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("it is not a regular file (a directory, FIFO or device?)");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderLengthBytes) {
    return absl::DataLossError(absl::StrCat("the file has ", file_size, " bytes, fewer than the ",
                                            kHeaderLengthBytes, "-byte header length"));
  }
  uint8_t length_bytes[kHeaderLengthBytes];
  if (!ReadFully(fd.get(), length_bytes, kHeaderLengthBytes, 0)) {
    return errno ? OsError(errno, "cannot read the header length")
                 : absl::DataLossError("the file shrank while being read");
  }
  uint64_t header_bytes;
  std::memcpy(&header_bytes, length_bytes, sizeof(header_bytes));  // little-endian host
  if (header_bytes > file_size - kHeaderLengthBytes) {
    return absl::DataLossError(absl::StrCat("the header length (", header_bytes,
                                            " bytes) runs past the end of the file (", file_size,
                                            " bytes); the file is truncated or not a "
                                            "safetensors file"));
  }
  if (header_bytes > kMaxCheckpointHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the header length (", header_bytes,
                                                   " bytes) is above the limit of ",
                                                   kMaxCheckpointHeaderBytes, " bytes"));
  }
  std::string header(header_bytes, '\0');
  if (!ReadFully(fd.get(), header.data(), header.size(), kHeaderLengthBytes)) {
    return errno ? OsError(errno, "cannot read the header")
                 : absl::DataLossError("the file shrank while being read");
  }
  // The spec requires the JSON to start right away; only trailing spaces
  // (padding) are allowed around it.
  if (header.empty() || header[0] != '{') {
    return absl::InvalidArgumentError(
        "the header does not start with '{' (not a safetensors file?)");
  }
  HeaderParser parser;
  Json::sax_parse(header.begin(), header.end(), &parser);
  if (!parser.error().empty()) return absl::InvalidArgumentError(parser.error());
  if (!parser.done()) return absl::InvalidArgumentError("the header is incomplete JSON");
  ParsedHeader& parsed = parser.result();
  header.clear();
  header.shrink_to_fit();

  const uint64_t data_start = kHeaderLengthBytes + header_bytes;
  const uint64_t data_bytes = file_size - data_start;
  std::vector<TensorLayout> layouts;
  layouts.reserve(parsed.entries.size());
  for (const HeaderEntry& e : parsed.entries) {
    GF_ASSIGN_OR_RETURN(TensorLayout layout, CheckEntry(e, data_bytes));
    layouts.push_back(layout);
  }
  GF_RETURN_IF_ERROR(CheckTiling(layouts, data_bytes));

  // Every size is now known to fit inside the file, so each allocation below
  // is backed by bytes that really exist; read them straight into the tensors.
  Checkpoint checkpoint;
  for (const TensorLayout& t : layouts) {
    GF_ASSIGN_OR_RETURN(Tensor tensor, Tensor::Create(t.dtype, Shape(t.entry->dims)));
    if (!ReadFully(fd.get(), tensor.raw(), t.end - t.begin, data_start + t.begin)) {
      return errno ? OsError(errno, absl::StrCat("cannot read tensor ", Quote(t.entry->name)))
                   : absl::DataLossError("the file shrank while being read");
    }
    checkpoint.tensors.emplace(t.entry->name, std::move(tensor));
  }
  checkpoint.metadata = std::move(parsed.metadata);
  return checkpoint;
}

// ---------------------------------------------------------------- writing --

// The padded header: "<8-byte length><JSON><spaces>", and the tensors in the
// order their bytes follow it.
struct Serialized {
  std::string prefix;
  std::vector<const Tensor*> data_order;
};

absl::StatusOr<Serialized> Serialize(const std::map<std::string, Tensor>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  if (tensors.size() > kMaxCheckpointTensors) {
    return absl::InvalidArgumentError(absl::StrCat(tensors.size(), " tensors, more than the ",
                                                   kMaxCheckpointTensors, " a checkpoint may hold"));
  }
  std::vector<std::pair<const std::string*, const Tensor*>> order;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) {
      return absl::InvalidArgumentError(
          "the tensor name '__metadata__' is reserved for the header's metadata; rename it");
    }
    if (tensor.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quote(name),
                                                     " has no storage (a default-constructed "
                                                     "Tensor); give it a shape and data"));
    }
    if (!tensor.shape().IsFullyKnown() || tensor.shape().NumElements() != tensor.num_elements()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quote(name), " has shape ",
                                                     tensor.shape().ToString(),
                                                     ", which is not fully known"));
    }
    order.emplace_back(&name, &tensor);
  }
  // Larger elements first, then by name: every tensor starts at a multiple of
  // its element size (the reference writer orders by dtype the same way).
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return SizeOf(a.second->dtype()) > SizeOf(b.second->dtype());
  });
  Json header = Json::object();  // a std::map: keys come out sorted
  Serialized out;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : order) {
    uint64_t end = offset + tensor->num_bytes();
    header[*name] = {{"dtype", SafetensorsName(tensor->dtype())},
                     {"shape", tensor->shape().dims()},
                     {"data_offsets", {offset, end}}};
    out.data_order.push_back(tensor);
    offset = end;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a tensor name or metadata string is not valid UTF-8 (safetensors headers are UTF-8 "
        "JSON): ",
        e.what()));
  }
  text.append((kHeaderAlignment - text.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
  if (text.size() > kMaxCheckpointHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the header would be ", text.size(), " bytes, above the limit of ",
                     kMaxCheckpointHeaderBytes, "; use fewer tensors or shorter names"));
  }
  uint64_t length = text.size();
  out.prefix.resize(kHeaderLengthBytes);
  std::memcpy(out.prefix.data(), &length, kHeaderLengthBytes);  // little-endian host
  out.prefix += text;
  return out;
}

absl::Status SaveCheckpointOrError(const std::string& path,
                                   const std::map<std::string, Tensor>& tensors,
                                   const std::map<std::string, std::string>& metadata) {
  GF_ASSIGN_OR_RETURN(Serialized serialized, Serialize(tensors, metadata));
  std::vector<FilePiece> pieces = {{serialized.prefix.data(), serialized.prefix.size()}};
  for (const Tensor* t : serialized.data_order) pieces.push_back({t->raw(), t->num_bytes()});
  return WriteFileAtomically(path, pieces);
}

// Prefixes an error with what was being done to which file.
absl::Status WithContext(const absl::Status& status, std::string_view action,
                         const std::string& path) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(std::string(action), " checkpoint '", path,
                                                  "': ", std::string(status.message())));
}

}  // namespace

absl::Status SaveCheckpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  return WithContext(SaveCheckpointOrError(path, tensors, metadata), "cannot save", path);
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path) {
  absl::StatusOr<Checkpoint> result = LoadCheckpointOrError(path);
  if (!result.ok()) return WithContext(result.status(), "cannot load", path);
  return result;
}

}  // namespace gradflow
