#ifndef GRADFLOW_CORE_NPY_H_
#define GRADFLOW_CORE_NPY_H_

// NumPy's .npy files (format versions 1.0, 2.0 and 3.0): one array, C order,
// little-endian, as np.save writes it.
//
//   absl::StatusOr<Tensor> x = ReadNpy("x.npy");      // np.save("x.npy", x)
//   absl::Status s = WriteNpy("y.npy", *y);           // np.load("y.npy")
//
// The file: "\x93NUMPY", major and minor version bytes, the header length
// (uint16 in 1.0, uint32 in 2.0 / 3.0), the header, then the raw data. The
// header is the Python literal of a dict NumPy writes,
// "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4, 4), }", padded
// with spaces to a multiple of 64 bytes and ended by '\n'. ReadNpy parses
// exactly that dict (the three keys, once each, in any order) with a small
// strict parser: nothing is evaluated.
//
// Element types read, and the tensor dtype they become:
//   '<f4' float32 -> kF32            '<i4' int32 -> kI32
//   '<f8' float64 -> kF32 (rounded to the nearest float32; beyond the
//                  float32 range gives +-inf)
//   '<i8' int64   -> kI64            '|u1' uint8 -> kF32 (0..255, unscaled)
// Everything else is an InvalidArgument error naming the file, the value
// and the fix: big-endian data ('>f4'), fortran_order True, object arrays
// ('|O': pickles are never loaded), structured or complex dtypes, other
// integer widths. The header is at most kMaxNpyHeaderBytes, the rank at most
// kMaxNpyRank, and the element count times the element size must equal the
// bytes after the header (checked for overflow, before anything is
// allocated): a truncated file is DataLoss, trailing bytes InvalidArgument.
//
// WriteNpy writes the tensor's own dtype ('<f4', '<i4', '<i8') in format
// 1.0 (2.0 if the header needs more than 65535 bytes), byte for byte what
// np.save writes for the same array, atomically (core/atomic_file.h).

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace gradflow {

inline constexpr size_t kMaxNpyHeaderBytes = size_t{64} << 10;
inline constexpr int kMaxNpyRank = 32;  // NumPy 1.x's limit

absl::StatusOr<Tensor> ReadNpy(const std::string& path);

absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_NPY_H_
