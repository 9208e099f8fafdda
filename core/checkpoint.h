#ifndef GRADFLOW_CORE_CHECKPOINT_H_
#define GRADFLOW_CORE_CHECKPOINT_H_

// Checkpoint files in the published safetensors layout
// (https://github.com/huggingface/safetensors#format):
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  UTF-8 JSON object: tensor name -> {"dtype": "F32"|"I32"|"I64",
//              "shape": [d0, d1, ...], "data_offsets": [begin, end]}, plus an
//              optional "__metadata__": {string: string}; padded with spaces
//   [rest]     the tensors' raw little-endian bytes; data_offsets are relative
//              to the start of this buffer and tile it exactly
//
// Other tools (the Python `safetensors` package, or numpy with 10 lines of
// code, see README) read these files, and gradflow reads theirs as long as the
// dtypes are ones gradflow has.

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace gradflow {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  // The header's "__metadata__" (string -> string, as safetensors requires).
  std::map<std::string, std::string> metadata;
};

// Headers longer than this are rejected before anything is allocated for
// them: the reference implementation's cap (MAX_HEADER_SIZE in the safetensors
// crate). A real header holds about 100 bytes per tensor.
inline constexpr uint64_t kMaxCheckpointHeaderBytes = 100'000'000;
// A header may describe at most this many tensors (a large language model
// has a few thousand): a 90 MB header of empty tensors otherwise costs about
// ten times its size in parsed entries. Checked while parsing.
inline constexpr size_t kMaxCheckpointTensors = 100'000;

// Writes `tensors` (and `metadata`, omitted from the header when empty) to
// `path` atomically and durably with WriteFileAtomically (core/atomic_file.h):
// `path` never holds a half-written file; a symlink's target is replaced; a
// path that exists and is not a regular file (device, FIFO, socket,
// directory) is refused with FailedPrecondition and left alone; an existing
// file keeps its mode (and owner where permitted), a new one follows the
// umask. A process killed mid-save leaves `path` intact but may leave its
// temporary file (".<name>.tmp-*" beside it) behind.
//
// Output is deterministic: the header lists tensors by name; the data is laid
// out by decreasing element size, then by name (as the reference writer
// does), so every tensor starts at a multiple of its element size.
absl::Status SaveCheckpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                            const std::map<std::string, std::string>& metadata = {});

// Reads a checkpoint written by SaveCheckpoint or any safetensors writer.
// Every structural problem (truncation, bad JSON, unknown dtype, negative or
// overflowing shapes, offsets that are out of range, overlapping, misaligned,
// leave gaps or trailing bytes, duplicate names, non-string metadata) is an
// error naming the file and the problem; memory use is bounded by the file's
// real size, never by sizes the file claims.
//
// Errors: NotFound (no such file), DataLoss (the file is shorter than its
// header says), InvalidArgument (malformed content), Unimplemented (a valid
// safetensors dtype gradflow does not have, e.g. F16), or the OS error.
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_CHECKPOINT_H_
