#include "core/fashion_mnist.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace gradflow {

const char* const kFashionMnistClassNames[kFashionMnistNumClasses] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

namespace {

// IDX type byte for unsigned 8-bit data (LeCun's MNIST page).
constexpr uint8_t kIdxTypeUnsignedByte = 0x08;
constexpr int kIdxImagesRank = 3;  // magic 0x00000803
constexpr int kIdxLabelsRank = 1;  // magic 0x00000801
// Keras's chapter code scales pixels with `X / 255.` (in float64, then f32).
constexpr double kPixelScale = 255.0;
// Read in bounded chunks so memory follows what the file really holds, not
// what its header claims.
constexpr size_t kReadChunkBytes = size_t{1} << 20;

// gzip's two magic bytes (RFC 1952); files without them are read as plain IDX.
constexpr uint8_t kGzipMagic[2] = {0x1f, 0x8b};
// zlib's windowBits for "gzip wrapper, 32 KiB window" (zlib.h, inflateInit2).
constexpr int kGzipWindowBits = 16 + MAX_WBITS;

uint32_t BigEndian32(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

std::string DimsString(const std::vector<int64_t>& dims) {
  return "[" + absl::StrJoin(dims, ", ") + "]";
}

// A path in a message (paths are the user's own, so only control characters
// are masked; long ones are kept whole up to PATH_MAX).
std::string Quoted(const std::string& path) { return QuoteUserText(path, 4096); }

// Closes a file descriptor on every path out of a function.
struct FdCloser {
  void operator()(int* fd) const {
    ::close(*fd);
    delete fd;
  }
};

// The bytes of an IDX file, plain or gzip'd, read in bounded pieces. A gzip
// stream is inflated here (not with gzread) so that its end is checked
// exactly: a cut-off stream, a CRC-32 or length (ISIZE) that disagrees with
// the data, and bytes after the last gzip member are all errors.
class IdxStream {
 public:
  // Opens `path` without blocking (a FIFO must not wait for a writer) and
  // refuses anything but a regular file before reading a byte.
  static absl::StatusOr<std::unique_ptr<IdxStream>> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open IDX file ", Quoted(path)));
    std::unique_ptr<IdxStream> s(new IdxStream(path, fd));
    struct stat st;
    if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat IDX file ", Quoted(path)));
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("IDX file ", Quoted(path),
                                                     " is not a regular file (a directory, FIFO or device?)"));
    }
    uint8_t magic[2];
    GF_ASSIGN_OR_RETURN(size_t got, s->ReadRaw(magic, sizeof(magic)));
    s->gzip_ = got == 2 && magic[0] == kGzipMagic[0] && magic[1] == kGzipMagic[1];
    if (s->gzip_) {
      if (inflateInit2(&s->z_, kGzipWindowBits) != Z_OK) return absl::ResourceExhaustedError("zlib: out of memory");
      s->z_open_ = true;
    }
    s->pending_.assign(magic, magic + got);  // the probe bytes are data too
    return s;
  }
  ~IdxStream() {
    if (z_open_) inflateEnd(&z_);
  }

  // Reads up to `n` bytes; fewer only at the end of the data.
  absl::StatusOr<size_t> Read(uint8_t* dst, size_t n) { return gzip_ ? Inflate(dst, n) : ReadPlain(dst, n); }

  // After the data: the file must end here (and a gzip stream be complete).
  absl::Status CheckAtEnd(const std::string& what) {
    uint8_t extra;
    GF_ASSIGN_OR_RETURN(size_t got, Read(&extra, 1));
    if (got != 0) {
      return absl::DataLossError(absl::StrCat("IDX file ", Quoted(path_), " disagrees with its header: ", what,
                                              ", but the file has more data after them"));
    }
    if (gzip_ && !stream_ended_) {
      return absl::DataLossError(absl::StrCat("IDX file ", Quoted(path_),
                                              " is truncated: its gzip stream ends before its CRC-32 and "
                                              "length trailer"));
    }
    return absl::OkStatus();
  }

  // Why the data ended early, for truncation messages.
  std::string TruncationNote() const { return gzip_ && !stream_ended_ ? " (the gzip stream ends early)" : ""; }

 private:
  IdxStream(std::string path, int fd) : path_(std::move(path)), fd_(new int(fd)) {}

  absl::Status ReadError(const std::string& what) const {
    return absl::DataLossError(absl::StrCat("error reading IDX file ", Quoted(path_), ": ", what));
  }

  // read(2) until `n` bytes or the end of the file.
  absl::StatusOr<size_t> ReadRaw(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(*fd_, dst + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ReadError(std::strerror(errno));
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  absl::StatusOr<size_t> ReadPlain(uint8_t* dst, size_t n) {
    size_t from_pending = std::min(n, pending_.size());
    std::copy_n(pending_.begin(), from_pending, dst);
    pending_.erase(pending_.begin(), pending_.begin() + from_pending);
    GF_ASSIGN_OR_RETURN(size_t got, ReadRaw(dst + from_pending, n - from_pending));
    return from_pending + got;
  }

  // Refills zlib's input from the file; false at the end of the file.
  absl::StatusOr<bool> FillInput() {
    if (!pending_.empty()) {
      input_.assign(pending_.begin(), pending_.end());
      pending_.clear();
    } else {
      input_.resize(kReadChunkBytes);
      GF_ASSIGN_OR_RETURN(size_t got, ReadRaw(input_.data(), input_.size()));
      input_.resize(got);
    }
    z_.next_in = input_.data();
    z_.avail_in = static_cast<uInt>(input_.size());
    return !input_.empty();
  }

  absl::StatusOr<size_t> Inflate(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      if (z_.avail_in == 0) {
        GF_ASSIGN_OR_RETURN(bool more, FillInput());
        if (!more) break;  // end of file: complete only if stream_ended_
      }
      if (stream_ended_) {  // bytes after a gzip member: another member, or junk
        if (inflateReset(&z_) != Z_OK) return ReadError("zlib: cannot reset");
        stream_ended_ = false;
        after_member_ = true;
      }
      z_.next_out = dst + got;
      z_.avail_out = static_cast<uInt>(std::min(n - got, kReadChunkBytes));
      const uInt before = z_.avail_out;
      int r = inflate(&z_, Z_NO_FLUSH);
      got += before - z_.avail_out;
      if (r == Z_STREAM_END) {
        stream_ended_ = true;
        after_member_ = false;
      } else if (r == Z_DATA_ERROR && after_member_) {
        return ReadError("bytes after the end of the gzip stream that are not another gzip member");
      } else if (r == Z_DATA_ERROR) {
        // zlib says which check failed: "incorrect data check" (CRC-32),
        // "incorrect length check" (ISIZE), or bad deflate data.
        return ReadError(absl::StrCat("corrupt gzip data: ", z_.msg != nullptr ? z_.msg : "unknown"));
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        return ReadError(absl::StrCat("zlib error ", r));
      }
    }
    return got;
  }

  std::string path_;
  std::unique_ptr<int, FdCloser> fd_;
  bool gzip_ = false;
  z_stream z_{};
  bool z_open_ = false;
  bool stream_ended_ = false;
  bool after_member_ = false;  // inflating what follows a complete member
  std::vector<uint8_t> pending_;  // read from the file, not yet consumed
  std::vector<uint8_t> input_;    // zlib's current input
};

// An IDX header as read, before any data.
struct IdxHeader {
  std::vector<int64_t> dims;
  uint64_t elements = 0;
};

absl::StatusOr<IdxHeader> ReadIdxHeader(IdxStream& f, const std::string& path, int expected_rank,
                                        const char* what, uint64_t max_elements) {
  // Header: 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims.
  uint8_t magic[4];
  GF_ASSIGN_OR_RETURN(size_t got, f.Read(magic, sizeof(magic)));
  if (got < sizeof(magic)) {
    return absl::DataLossError(absl::StrCat("IDX file ", Quoted(path), " is truncated: it has ", got,
                                            " bytes, fewer than the 4-byte magic number", f.TruncationNote()));
  }
  const uint32_t expected_magic = (uint32_t{kIdxTypeUnsignedByte} << 8) | uint32_t(expected_rank);
  const uint32_t magic_value = BigEndian32(magic);
  if (magic_value != expected_magic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "IDX file %s has bad magic number 0x%08x: expected 0x%08x (unsigned bytes, %d dims: %s)", Quoted(path),
        magic_value, expected_magic, expected_rank, what));
  }
  std::vector<uint8_t> header(4 * size_t(expected_rank));
  GF_ASSIGN_OR_RETURN(got, f.Read(header.data(), header.size()));
  if (got < header.size()) {
    return absl::DataLossError(absl::StrCat("IDX file ", Quoted(path), " is truncated inside its header: ", got,
                                            " of ", header.size(), " dimension bytes", f.TruncationNote()));
  }
  IdxHeader h;
  h.elements = 1;
  for (int i = 0; i < expected_rank; ++i) {
    uint32_t d = BigEndian32(&header[4 * i]);
    h.dims.push_back(d);
    // elements <= 2^31 and d < 2^32 before the product, so it cannot overflow.
    if (h.elements <= kMaxIdxElements) h.elements *= d;
  }
  const uint64_t cap = std::min(max_elements, kMaxIdxElements);
  if (h.elements > cap) {
    return absl::InvalidArgumentError(absl::StrCat("IDX file ", Quoted(path), " claims dims ", DimsString(h.dims),
                                                   ", more than the ", cap,
                                                   " elements this reader accepts; the header is likely corrupt"));
  }
  return h;
}

// The header's data bytes, then a check that the file ends there. The buffer
// grows as data arrives (capped at the claim), so memory follows what the
// file really holds.
absl::StatusOr<std::vector<uint8_t>> ReadIdxData(IdxStream& f, const std::string& path, const IdxHeader& h) {
  const size_t claimed = static_cast<size_t>(h.elements);
  std::vector<uint8_t> data;
  try {
    while (data.size() < claimed) {
      size_t chunk = std::min(kReadChunkBytes, claimed - data.size());
      size_t old_size = data.size();
      if (data.capacity() < old_size + chunk) {
        data.reserve(std::min(claimed, std::max(2 * data.capacity(), old_size + chunk)));
      }
      data.resize(old_size + chunk);
      GF_ASSIGN_OR_RETURN(size_t got, f.Read(data.data() + old_size, chunk));
      if (got < chunk) {
        return absl::DataLossError(absl::StrCat("IDX file ", Quoted(path), " is truncated: its header claims dims ",
                                                DimsString(h.dims), " = ", claimed, " data bytes, but it holds only ",
                                                old_size + got, f.TruncationNote()));
      }
    }
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", claimed, " bytes for IDX file ", Quoted(path), " ", DimsString(h.dims)));
  }
  GF_RETURN_IF_ERROR(f.CheckAtEnd(absl::StrCat("dims ", DimsString(h.dims), " = ", claimed, " data bytes")));
  return data;
}

// One IDX file with its header read and its data still to come.
struct OpenIdx {
  std::unique_ptr<IdxStream> stream;
  IdxHeader header;
};

absl::StatusOr<OpenIdx> OpenIdxFile(const std::string& path, int expected_rank, const char* what,
                                    uint64_t max_elements) {
  GF_ASSIGN_OR_RETURN(std::unique_ptr<IdxStream> stream, IdxStream::Open(path));
  GF_ASSIGN_OR_RETURN(IdxHeader header, ReadIdxHeader(*stream, path, expected_rank, what, max_elements));
  return OpenIdx{std::move(stream), std::move(header)};
}

absl::StatusOr<Tensor> ImagesFrom(OpenIdx& idx, const std::string& path) {
  GF_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadIdxData(*idx.stream, path, idx.header));
  GF_ASSIGN_OR_RETURN(Tensor images, Tensor::Create(DType::kF32, Shape(idx.header.dims)));
  float* dst = images.data<float>();
  for (size_t i = 0; i < bytes.size(); ++i) dst[i] = static_cast<float>(bytes[i] / kPixelScale);
  return images;
}

absl::StatusOr<Tensor> LabelsFrom(OpenIdx& idx, const std::string& path) {
  GF_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadIdxData(*idx.stream, path, idx.header));
  GF_ASSIGN_OR_RETURN(Tensor labels, Tensor::Create(DType::kI32, Shape(idx.header.dims)));
  std::copy(bytes.begin(), bytes.end(), labels.data<int32_t>());
  return labels;
}

// The path of `base` in `dir`, preferring the gzip'd file Debian ships.
absl::StatusOr<std::string> FindIdxFile(const std::string& dir, const std::string& base) {
  std::string gz = absl::StrCat(dir, "/", base, ".gz");
  std::string plain = absl::StrCat(dir, "/", base);
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(plain, ec)) return plain;
  return absl::NotFoundError(absl::StrCat(
      "Fashion-MNIST file not found: '", gz, "' (nor uncompressed '", plain,
      "'). Install the dataset with `apt-get install dataset-fashion-mnist`, or set ",
      kFashionMnistDirEnvVar, " to a folder holding the IDX files"));
}

}  // namespace

absl::StatusOr<Tensor> ReadIdxImages(const std::string& path, uint64_t max_elements) {
  GF_ASSIGN_OR_RETURN(OpenIdx idx, OpenIdxFile(path, kIdxImagesRank, "images [N, rows, cols]", max_elements));
  return ImagesFrom(idx, path);
}

absl::StatusOr<Tensor> ReadIdxLabels(const std::string& path, uint64_t max_elements) {
  GF_ASSIGN_OR_RETURN(OpenIdx idx, OpenIdxFile(path, kIdxLabelsRank, "labels [N]", max_elements));
  return LabelsFrom(idx, path);
}

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& split, std::string dir, int64_t max_examples) {
  // File name prefixes of the original distribution, which Debian keeps.
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown Fashion-MNIST split '", split, "': expected \"train\" or \"test\""));
  }
  if (dir.empty()) {
    const char* env = std::getenv(kFashionMnistDirEnvVar);
    dir = (env != nullptr && env[0] != '\0') ? env : kFashionMnistDir;
  }
  GF_ASSIGN_OR_RETURN(std::string images_path, FindIdxFile(dir, prefix + "-images-idx3-ubyte"));
  GF_ASSIGN_OR_RETURN(std::string labels_path, FindIdxFile(dir, prefix + "-labels-idx1-ubyte"));

  // Both headers are read and checked against each other before any data
  // is expanded: a count mismatch costs nothing.
  constexpr uint64_t kPixels = uint64_t{kFashionMnistImageSize} * kFashionMnistImageSize;
  const uint64_t max_count = static_cast<uint64_t>(std::max<int64_t>(max_examples, 0));
  GF_ASSIGN_OR_RETURN(OpenIdx images, OpenIdxFile(images_path, kIdxImagesRank, "images [N, rows, cols]",
                                                  max_count * kPixels));
  GF_ASSIGN_OR_RETURN(OpenIdx labels_idx, OpenIdxFile(labels_path, kIdxLabelsRank, "labels [N]", max_count));
  const std::vector<int64_t>& s = images.header.dims;
  if (s[1] != kFashionMnistImageSize || s[2] != kFashionMnistImageSize) {
    return absl::InvalidArgumentError(absl::StrCat("Fashion-MNIST images file ", Quoted(images_path),
                                                   " has images of ", s[1], "x", s[2], ", not ",
                                                   kFashionMnistImageSize, "x", kFashionMnistImageSize));
  }
  if (s[0] != labels_idx.header.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat("Fashion-MNIST count mismatch: ", Quoted(images_path), " has ",
                                                   s[0], " images but ", Quoted(labels_path), " has ",
                                                   labels_idx.header.dims[0], " labels"));
  }
  Dataset ds;
  GF_ASSIGN_OR_RETURN(ds.labels, LabelsFrom(labels_idx, labels_path));
  GF_ASSIGN_OR_RETURN(ds.images, ImagesFrom(images, images_path));
  std::span<const int32_t> labels = ds.labels.flat<int32_t>();
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kFashionMnistNumClasses) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Fashion-MNIST labels file '", labels_path, "' has label ", labels[i], " at index ", i,
          ", outside [0, ", kFashionMnistNumClasses - 1, "]"));
    }
  }
  return ds;
}

}  // namespace gradflow
