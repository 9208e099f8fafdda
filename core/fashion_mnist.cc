#include "core/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
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
// zlib's default internal buffer is 8 KiB; a larger one roughly halves the
// read time of the 26 MB train images.
constexpr unsigned kGzBufferBytes = 128 * 1024;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

struct IdxBytes {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // row-major, exactly product(dims) bytes
};

uint32_t BigEndian32(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

std::string DimsString(const std::vector<int64_t>& dims) {
  return "[" + absl::StrJoin(dims, ", ") + "]";
}

// Reads up to `n` bytes; fewer only at the end of the data. Errors of the
// underlying read or of the gzip stream (bad CRC, corrupt deflate data)
// become DataLoss.
absl::StatusOr<size_t> ReadUpTo(gzFile f, const std::string& path, uint8_t* dst, size_t n) {
  size_t got = 0;
  while (got < n) {
    unsigned want = static_cast<unsigned>(std::min(n - got, kReadChunkBytes));
    int r = gzread(f, dst + got, want);
    if (r < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      if (errnum == Z_ERRNO) msg = std::strerror(errno);
      return absl::DataLossError(absl::StrCat("error reading IDX file '", path, "': ", msg));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

// Whether a short read came from a gzip stream cut off in the middle (zlib
// reports Z_BUF_ERROR then), to make the truncation message more specific.
std::string TruncationNote(gzFile f) {
  int errnum = Z_OK;
  gzerror(f, &errnum);
  return errnum == Z_BUF_ERROR ? " (the gzip stream ends early)" : "";
}

absl::StatusOr<IdxBytes> ReadIdxBytes(const std::string& path, int expected_rank,
                                      const char* what) {
  errno = 0;
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (f == nullptr) {
    // gzopen sets errno when open() fails; 0 means zlib ran out of memory.
    int err = errno != 0 ? errno : ENOMEM;
    return absl::ErrnoToStatus(err, absl::StrCat("cannot open IDX file '", path, "'"));
  }
  gzbuffer(f.get(), kGzBufferBytes);

  // Header: 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims.
  uint8_t magic[4];
  GF_ASSIGN_OR_RETURN(size_t got, ReadUpTo(f.get(), path, magic, sizeof(magic)));
  if (got < sizeof(magic)) {
    return absl::DataLossError(absl::StrCat("IDX file '", path, "' is truncated: it has ", got,
                                            " bytes, fewer than the 4-byte magic number",
                                            TruncationNote(f.get())));
  }
  const uint32_t expected_magic = (uint32_t{kIdxTypeUnsignedByte} << 8) | uint32_t(expected_rank);
  const uint32_t magic_value = BigEndian32(magic);
  if (magic_value != expected_magic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "IDX file '%s' has bad magic number 0x%08x: expected 0x%08x (unsigned bytes, %d dims: %s)",
        path, magic_value, expected_magic, expected_rank, what));
  }

  std::vector<uint8_t> header(4 * size_t(expected_rank));
  GF_ASSIGN_OR_RETURN(got, ReadUpTo(f.get(), path, header.data(), header.size()));
  if (got < header.size()) {
    return absl::DataLossError(absl::StrCat("IDX file '", path, "' is truncated inside its header: ",
                                            got, " of ", header.size(), " dimension bytes",
                                            TruncationNote(f.get())));
  }
  IdxBytes idx;
  uint64_t total = 1;
  for (int i = 0; i < expected_rank; ++i) {
    uint32_t d = BigEndian32(&header[4 * i]);
    idx.dims.push_back(d);
    // total <= 2^31 and d < 2^32 before the product, so it cannot overflow.
    total *= d;
    if (total > kMaxIdxElements) {
      // Report every dim the header claims, not only those read so far.
      for (int j = i + 1; j < expected_rank; ++j) idx.dims.push_back(BigEndian32(&header[4 * j]));
      return absl::InvalidArgumentError(absl::StrCat(
          "IDX file '", path, "' claims dims ", DimsString(idx.dims), ", more than the ",
          kMaxIdxElements, " elements this reader accepts; the header is likely corrupt"));
    }
  }

  // Grow the buffer as data arrives (capacity capped at `total`), so a header
  // that lies about the size cannot make us allocate what the file lacks.
  size_t claimed = static_cast<size_t>(total);
  while (idx.data.size() < claimed) {
    size_t chunk = std::min(kReadChunkBytes, claimed - idx.data.size());
    size_t old_size = idx.data.size();
    if (idx.data.capacity() < old_size + chunk) {
      idx.data.reserve(std::min(claimed, std::max(2 * idx.data.capacity(), old_size + chunk)));
    }
    idx.data.resize(old_size + chunk);
    GF_ASSIGN_OR_RETURN(got, ReadUpTo(f.get(), path, idx.data.data() + old_size, chunk));
    if (got < chunk) {
      return absl::DataLossError(absl::StrCat(
          "IDX file '", path, "' is truncated: its header claims dims ", DimsString(idx.dims),
          " = ", claimed, " data bytes, but it holds only ", old_size + got,
          TruncationNote(f.get())));
    }
  }
  // The dims must account for the whole file. Reading past the end also makes
  // zlib verify the gzip trailer (CRC-32 and length).
  uint8_t extra;
  GF_ASSIGN_OR_RETURN(got, ReadUpTo(f.get(), path, &extra, 1));
  if (got != 0) {
    return absl::DataLossError(absl::StrCat(
        "IDX file '", path, "' disagrees with its header: dims ", DimsString(idx.dims), " = ",
        claimed, " data bytes, but the file has more data after them"));
  }
  return idx;
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

absl::StatusOr<Tensor> ReadIdxImages(const std::string& path) {
  GF_ASSIGN_OR_RETURN(IdxBytes idx, ReadIdxBytes(path, kIdxImagesRank, "images [N, rows, cols]"));
  Tensor images(DType::kF32, Shape(idx.dims));
  float* dst = images.data<float>();
  for (size_t i = 0; i < idx.data.size(); ++i) {
    dst[i] = static_cast<float>(idx.data[i] / kPixelScale);
  }
  return images;
}

absl::StatusOr<Tensor> ReadIdxLabels(const std::string& path) {
  GF_ASSIGN_OR_RETURN(IdxBytes idx, ReadIdxBytes(path, kIdxLabelsRank, "labels [N]"));
  Tensor labels(DType::kI32, Shape(idx.dims));
  std::copy(idx.data.begin(), idx.data.end(), labels.data<int32_t>());
  return labels;
}

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& split, std::string dir) {
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

  Dataset ds;
  GF_ASSIGN_OR_RETURN(ds.images, ReadIdxImages(images_path));
  GF_ASSIGN_OR_RETURN(ds.labels, ReadIdxLabels(labels_path));

  const Shape& s = ds.images.shape();
  if (s[1] != kFashionMnistImageSize || s[2] != kFashionMnistImageSize) {
    return absl::InvalidArgumentError(absl::StrCat("Fashion-MNIST images file '", images_path,
                                                   "' has images of ", s[1], "x", s[2], ", not ",
                                                   kFashionMnistImageSize, "x",
                                                   kFashionMnistImageSize));
  }
  if (s[0] != ds.labels.shape()[0]) {
    return absl::InvalidArgumentError(absl::StrCat("Fashion-MNIST count mismatch: '", images_path,
                                                   "' has ", s[0], " images but '", labels_path,
                                                   "' has ", ds.labels.shape()[0], " labels"));
  }
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
