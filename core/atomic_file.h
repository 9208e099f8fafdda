#ifndef GRADFLOW_CORE_ATOMIC_FILE_H_
#define GRADFLOW_CORE_ATOMIC_FILE_H_

// Replacing a file atomically and durably, the one way every gradflow writer
// (checkpoints, saved models, CSV logs) does it.

#include <cstddef>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace gradflow {

// A run of bytes to write; the file is the concatenation of its pieces.
struct FilePiece {
  const void* data;
  size_t size;
};

// Writes the pieces to `path` so that it holds either its old contents or all
// of the new ones, never a mix: a temporary file beside the target is
// written, fsync'ed, renamed over it, and the directory is fsync'ed.
//
// - A symlink is followed (through any chain): the file it points to is
//   replaced and the link kept, as editors and rsync do; the temporary file
//   goes beside that file.
// - An existing target that is not a regular file (directory, device, FIFO,
//   socket) is refused with FailedPrecondition naming its kind; nothing is
//   created or changed.
// - Replacing a file keeps its permission bits and, where the process may
//   set them, its owner and group; a new file gets 0666 minus the umask, as
//   fopen(path, "w") would.
//
// On any error the target is untouched and the temporary file removed; a
// process killed mid-write may leave its ".<name>.tmp-*" file behind. The
// messages do not repeat `path` (callers prefix it) but name the resolved
// target when a symlink led elsewhere.
absl::Status WriteFileAtomically(const std::string& path, std::span<const FilePiece> pieces);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_ATOMIC_FILE_H_
