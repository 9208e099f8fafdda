// libFuzzer target for the IDX reader (core/fashion_mnist.h).
//
// The first input byte picks how the rest becomes a file:
//   even: the bytes as they are (a plain IDX file, or a gzip stream when they
//         start with 1f 8b: corrupt deflate data, CRCs, lengths);
//   odd:  the bytes gzip-compressed by this harness, so mutations reach the
//         IDX parser through zlib's decompression path too.
// ReadIdxImages and ReadIdxLabels must return a status, never crash or
// allocate more than the (decompressed) file holds, and what they accept must
// be consistent: rank 3 / rank 1, pixels in [0, 1], labels in [0, 255].

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/fashion_mnist.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// The gzip format (deflate with a gzip header and CRC-32 trailer: windowBits 15 + 16).
std::vector<uint8_t> Gzip(const uint8_t* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<uint8_t> out(deflateBound(&z, size) + 32);
  z.next_in = const_cast<uint8_t*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A reader returns no more values than the file holds after its header.
void CheckFitsInTheFile(int64_t values, uint64_t header_bytes, uint64_t plain_bytes, const char* what) {
  GF_FUZZ_CHECK(uint64_t(values) + header_bytes <= plain_bytes, "%lld %s from a %llu-byte file",
                static_cast<long long>(values), what, static_cast<unsigned long long>(plain_bytes));
}

// A reader's error for a file it rejects names the file.
void CheckTheErrorNamesTheFile(const absl::Status& status, const std::string& path) {
  GF_FUZZ_CHECK(status.message().find(path) != std::string::npos, "the error does not name the file: %s",
                std::string(status.message()).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static gradflow::fuzz::MemoryFile* input = new gradflow::fuzz::MemoryFile;
  const bool compress = (data[0] & 1) != 0;
  const uint8_t* body = data + 1;
  const size_t body_size = size - 1;
  std::string path;
  // What the decompressed file holds, when the harness knows it.
  uint64_t plain_bytes = body_size;
  if (compress) {
    std::vector<uint8_t> gz = Gzip(body, body_size);
    path = input->Write(gz.data(), gz.size());
  } else {
    path = input->Write(body, body_size);
    // A gzip stream decompresses to an unknown size (at most ~1032x).
    if (body_size >= 2 && body[0] == 0x1f && body[1] == 0x8b) plain_bytes = UINT64_MAX;
  }

  absl::StatusOr<gradflow::Tensor> images = gradflow::ReadIdxImages(path);
  if (images.ok()) {
    GF_FUZZ_CHECK(images->shape().rank() == 3, "images of rank %d", images->shape().rank());
    GF_FUZZ_CHECK(images->num_elements() == images->shape().NumElements(), "element count");
    CheckFitsInTheFile(images->num_elements(), 16, plain_bytes, "pixels");
    for (float v : images->flat<float>()) GF_FUZZ_CHECK(v >= 0 && v <= 1, "pixel %g", v);
  } else {
    CheckTheErrorNamesTheFile(images.status(), path);
  }

  absl::StatusOr<gradflow::Tensor> labels = gradflow::ReadIdxLabels(path);
  if (labels.ok()) {
    GF_FUZZ_CHECK(labels->shape().rank() == 1, "labels of rank %d", labels->shape().rank());
    CheckFitsInTheFile(labels->num_elements(), 8, plain_bytes, "labels");
    for (int32_t v : labels->flat<int32_t>()) GF_FUZZ_CHECK(v >= 0 && v <= 255, "label %d", v);
  } else {
    CheckTheErrorNamesTheFile(labels.status(), path);
  }
  return 0;
}
