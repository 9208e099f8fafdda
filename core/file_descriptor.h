#ifndef GRADFLOW_CORE_FILE_DESCRIPTOR_H_
#define GRADFLOW_CORE_FILE_DESCRIPTOR_H_

// POSIX file helpers shared by the readers and writers of core/.

#include <unistd.h>

#include <string>

#include "absl/status/status.h"

namespace gradflow {

// An OS error as a status: "<what>: <strerror>", code from errno.
inline absl::Status OsError(int errnum, const std::string& what) { return absl::ErrnoToStatus(errnum, what); }

// Closes a file descriptor on every path out of a function.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports close(2)'s error: on some file systems a failed
  // write only shows up here.
  int Close() {
    int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_FILE_DESCRIPTOR_H_
