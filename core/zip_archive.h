#ifndef GRADFLOW_CORE_ZIP_ARCHIVE_H_
#define GRADFLOW_CORE_ZIP_ARCHIVE_H_

// Zip archives (Keras 3's `.keras` files) through Debian's libzip, for
// untrusted files: entry names are checked (no absolute paths, no `..`, no
// backslashes or control characters, no duplicates) before anything is
// read, and an entry is read only up to a bound the caller gives, so a zip
// bomb (a small entry that inflates to gigabytes, or one whose header lies
// about its size) is an error, not an allocation. Nothing is ever
// extracted to the disk.
//
//   absl::StatusOr<ZipReader> zip = ZipReader::Open("model.keras");
//   absl::StatusOr<std::string> config = zip->Read("config.json", 16 << 20);
//
// Writing builds the archive in memory (entries stored, as Keras writes
// them) and returns its bytes for an atomic write (core/atomic_file.h).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct zip;

namespace gradflow {

// At most this many entries are listed.
inline constexpr size_t kMaxZipEntries = 10000;

struct ZipEntryInfo {
  std::string name;
  uint64_t size = 0;             // uncompressed, as the archive declares it
  uint64_t compressed_size = 0;
  bool stored = false;           // not compressed
};

class ZipReader {
 public:
  // Opens and checks the archive's structure and every entry name.
  static absl::StatusOr<ZipReader> Open(const std::string& path);
  ZipReader(ZipReader&&) noexcept;
  ZipReader& operator=(ZipReader&&) noexcept;
  ~ZipReader();

  const std::vector<ZipEntryInfo>& entries() const { return entries_; }
  const ZipEntryInfo* Find(const std::string& name) const;
  // The entry's bytes: NotFound if absent; InvalidArgument if it declares or
  // inflates to more than `max_bytes`, or does not hold what it declares.
  absl::StatusOr<std::string> Read(const std::string& name, uint64_t max_bytes) const;

 private:
  ZipReader(std::string path, zip* archive, std::vector<ZipEntryInfo> entries);
  std::string path_;
  zip* archive_;
  std::vector<ZipEntryInfo> entries_;
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

struct ZipEntry {
  std::string name;
  std::string data;
};

// An archive of `entries`, in order, each stored uncompressed.
absl::StatusOr<std::string> ZipBytes(const std::vector<ZipEntry>& entries);

// Whether `name` is a safe relative entry name (see above); the reason if not.
absl::Status CheckZipEntryName(const std::string& name);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_ZIP_ARCHIVE_H_
