#ifndef GRADFLOW_CORE_FASHION_MNIST_H_
#define GRADFLOW_CORE_FASHION_MNIST_H_

// Reader for the IDX files of Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017), as
// shipped by Debian's `dataset-fashion-mnist` package. The IDX format (from
// LeCun's MNIST page): a big-endian header `0x00 0x00 <type> <ndims>`, then
// ndims big-endian uint32 dimensions, then the row-major data. Only type 0x08
// (unsigned byte) occurs in (Fashion-)MNIST and only that is accepted.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace gradflow {

// Where Debian's dataset-fashion-mnist package installs the four .gz files.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
// Overrides kFashionMnistDir when LoadFashionMnist is called with an empty dir.
inline constexpr char kFashionMnistDirEnvVar[] = "GRADFLOW_FASHION_MNIST_DIR";

// Fashion-MNIST has 10 classes, labels 0..9, of 28x28 grayscale images.
inline constexpr int kFashionMnistNumClasses = 10;
inline constexpr int kFashionMnistImageSize = 28;

// Upper bound on the element count an IDX header may claim: generous for any
// (Fashion-)MNIST-like file (the train images have 47M) while keeping a
// corrupt or hostile header from driving an allocation of many gigabytes.
inline constexpr uint64_t kMaxIdxElements = uint64_t{1} << 31;

struct Dataset {
  Tensor images;  // f32 [N, 28, 28], pixel / 255, in [0, 1]
  Tensor labels;  // i32 [N], in [0, 9]
};

// Fashion-MNIST's larger split has 60,000 examples; LoadFashionMnist refuses
// files claiming more than this many unless told otherwise.
inline constexpr int64_t kMaxFashionMnistExamples = 60000;

// Reads an IDX file of unsigned bytes, gzip'd or plain (by its first two
// bytes). ReadIdxImages expects 3 dims and returns f32 [N, rows, cols] scaled
// by 1/255; ReadIdxLabels expects 1 dim and returns i32 [N] with the raw byte
// values. Every error is an absl::Status whose message names the file:
// - a path that is not a regular file (directory, FIFO, device) is refused
//   without reading (a FIFO never blocks);
// - a header claiming more than `max_elements` (at most kMaxIdxElements) is
//   refused before anything is decompressed;
// - decompression stops at the claimed size; a gzip stream that is cut off,
//   whose CRC-32 or length trailer disagrees, or that is followed by junk is
//   DataLoss.
absl::StatusOr<Tensor> ReadIdxImages(const std::string& path, uint64_t max_elements = kMaxIdxElements);
absl::StatusOr<Tensor> ReadIdxLabels(const std::string& path, uint64_t max_elements = kMaxIdxElements);

// Loads split "train" (60,000 examples) or "test" (10,000). An empty `dir`
// means $GRADFLOW_FASHION_MNIST_DIR if set and non-empty, else kFashionMnistDir.
// Reads `<name>.gz`, or `<name>` if only the uncompressed file exists. Both
// files' headers are checked against each other (28x28 images, one label per
// image, at most `max_examples`) before any data is decompressed.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& split, std::string dir = "",
                                         int64_t max_examples = kMaxFashionMnistExamples);

// Class names by label, as in the dataset's README (and the book's chapter 10).
extern const char* const kFashionMnistClassNames[kFashionMnistNumClasses];

}  // namespace gradflow

#endif  // GRADFLOW_CORE_FASHION_MNIST_H_
