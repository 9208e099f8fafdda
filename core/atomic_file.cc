#include "core/atomic_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/file_descriptor.h"
#include "core/status.h"

namespace gradflow {
namespace {

namespace fs = std::filesystem;

// Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS).
constexpr int kMaxSymlinkHops = 40;
constexpr int kMaxTemporaryNameAttempts = 100;
constexpr mode_t kPermissionBits = 07777;

// A path in a message: whole (paths are the caller's own), control
// characters masked.
std::string QuotedPath(const fs::path& p) { return QuoteUserText(p.string(), PATH_MAX); }

// What a non-regular file is, for the refusal message.
const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

// The file a write to `path` should replace: `path` itself, or the end of its
// chain of symlinks (which need not exist yet).
absl::StatusOr<fs::path> ResolveSymlinks(const fs::path& path) {
  fs::path p = path;
  for (int hop = 0; hop < kMaxSymlinkHops; ++hop) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) return p;
      return OsError(errno, absl::StrCat("cannot stat ", QuotedPath(p)));
    }
    if (!S_ISLNK(st.st_mode)) return p;
    std::error_code ec;
    fs::path link = fs::read_symlink(p, ec);
    if (ec) return OsError(ec.value(), absl::StrCat("cannot read symlink ", QuotedPath(p)));
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
  return OsError(ELOOP, "too many levels of symbolic links");
}

// The existing target's status, nullopt if there is none yet, or the refusal
// of a target that is not a regular file.
absl::StatusOr<std::optional<struct stat>> ExistingRegularFile(const fs::path& target,
                                                               const std::string& shown) {
  struct stat st;
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return OsError(errno, absl::StrCat("cannot stat ", shown));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(shown, " is ", FileKind(st.st_mode),
                                                      ", not a regular file; refusing to replace it "
                                                      "(nothing was changed)"));
  }
  return st;
}

// A temporary name beside the target, unique per process and call, so
// concurrent savers never write into each other's temporary files.
std::string TemporaryName(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  uint64_t ticks = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return (target.parent_path() / absl::StrCat(".", target.filename().string(), ".tmp-", ::getpid(), "-",
                                              counter.fetch_add(1), "-", ticks % 1000000))
      .string();
}

// Writes all of `n` bytes, retrying short writes and EINTR.
bool WriteFully(int fd, const void* src, size_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Gives the temporary file the replaced file's owner and mode. Owner first:
// chown may clear set-id bits that chmod then restores. Changing the owner
// is allowed only to root (and the group to its members): otherwise the new
// file keeps ours, as `cp` does.
bool CopyOwnerAndMode(int fd, const struct stat& old) {
  struct stat now;
  if (::fstat(fd, &now) != 0) return false;
  if (now.st_uid != old.st_uid || now.st_gid != old.st_gid) {
    if (::fchown(fd, old.st_uid, old.st_gid) != 0 && ::fchown(fd, -1, old.st_gid) != 0) {
      // Neither owner nor group could be copied: the file keeps ours.
    }
  }
  return ::fchmod(fd, old.st_mode & kPermissionBits) == 0;
}

// Creates a fresh temporary file beside `target` (0666 minus the umask).
absl::StatusOr<int> CreateTemporary(const fs::path& target, std::string* temp) {
  for (int attempt = 0; attempt < kMaxTemporaryNameAttempts; ++attempt) {
    *temp = TemporaryName(target);
    int fd = ::open(temp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) {
      return OsError(errno, absl::StrCat("cannot create the temporary file '", *temp, "'"));
    }
  }
  return absl::AlreadyExistsError(absl::StrCat("no free temporary file name like '", *temp, "'"));
}

absl::Status SyncDirectory(const fs::path& target) {
  const std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return OsError(errno, absl::StrCat("saved, but cannot open directory '", dir, "' to flush it"));
  FileDescriptor dir_guard(dir_fd);
  // EINVAL: the file system cannot sync directories; nothing more to do.
  if (::fsync(dir_fd) != 0 && errno != EINVAL) {
    return OsError(errno, absl::StrCat("saved, but cannot flush directory '", dir, "' (fsync)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::span<const FilePiece> pieces) {
  if (fs::path(path).filename().empty()) return absl::InvalidArgumentError("the path names a directory, not a file");
  GF_ASSIGN_OR_RETURN(const fs::path target, ResolveSymlinks(path));
  const std::string shown = target == fs::path(path) ? "it" : absl::StrCat("its symlink target ", QuotedPath(target));
  GF_ASSIGN_OR_RETURN(const std::optional<struct stat> existing, ExistingRegularFile(target, shown));

  std::string temp;
  GF_ASSIGN_OR_RETURN(int raw_fd, CreateTemporary(target, &temp));
  FileDescriptor fd(raw_fd);
  // From here on, any failure removes the temporary file.
  auto fail = [&](int errnum, const std::string& what) {
    absl::Status status = OsError(errnum, absl::StrCat(what, " (temporary file '", temp, "')"));
    if (fd.get() >= 0) fd.Close();
    ::unlink(temp.c_str());
    return status;
  };
  if (existing && !CopyOwnerAndMode(fd.get(), *existing)) return fail(errno, "cannot copy the old file's mode");
  for (const FilePiece& piece : pieces) {
    if (!WriteFully(fd.get(), piece.data, piece.size)) return fail(errno, "cannot write data");
  }
  if (::fsync(fd.get()) != 0) return fail(errno, "cannot flush to disk (fsync)");
  if (fd.Close() != 0) return fail(errno, "cannot close");
  if (::rename(temp.c_str(), target.c_str()) != 0) return fail(errno, "cannot rename the temporary file over it");
  // The rename is durable only once the directory entry is on disk.
  return SyncDirectory(target);
}

}  // namespace gradflow
