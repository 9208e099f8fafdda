#ifndef GRADFLOW_TESTS_FUZZ_FUZZ_UTIL_H_
#define GRADFLOW_TESTS_FUZZ_FUZZ_UTIL_H_

// Helpers shared by the fuzz targets: an in-memory file the file-based
// readers can open by path, and a check that fails loudly (libFuzzer records
// the input that tripped it).

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace gradflow::fuzz {

// A memfd (RAM only, a regular file to fstat) reachable as "/proc/self/fd/N":
// the readers under test take a path and open it themselves, so each fuzz
// input is written here instead of to disk.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("gradflow_fuzz_input", MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  ~MemoryFile() { ::close(fd_); }

  // Replaces the file's content with `size` bytes; returns its path.
  const std::string& Write(const void* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) Die("ftruncate");
    const auto* p = static_cast<const uint8_t*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t w = ::pwrite(fd_, p + done, size - done, static_cast<off_t>(done));
      if (w <= 0) Die("pwrite");
      done += static_cast<size_t>(w);
    }
    return path_;
  }

 private:
  static void Die(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_;
  std::string path_;
};

// An invariant of the code under test failed: print why and abort, which
// libFuzzer (and the corpus replay test) report as a crash with this input.
#define GF_FUZZ_CHECK(cond, ...)                                   \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::fprintf(stderr, "fuzz invariant failed: %s: ", #cond);  \
      std::fprintf(stderr, __VA_ARGS__);                           \
      std::fprintf(stderr, "\n");                                  \
      std::abort();                                                \
    }                                                              \
  } while (0)

}  // namespace gradflow::fuzz

#endif  // GRADFLOW_TESTS_FUZZ_FUZZ_UTIL_H_
