#include "core/zip_archive.h"

#include <zip.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace gradflow {
namespace {

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

}  // namespace

absl::Status CheckZipEntryName(const std::string& name) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("entry name ", QuoteUserText(name), " ", why));
  };
  if (name.empty()) return bad("is empty");
  if (name.front() == '/') return bad("is an absolute path");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return bad("has a control character");
    if (c == '\\') return bad("has a backslash (a Windows path separator)");
  }
  if (name.size() >= 2 && name[1] == ':') return bad("starts with a drive letter");
  for (const absl::string_view part : absl::StrSplit(name, '/')) {
    if (part == "..") return bad("climbs out of the archive with '..'");
  }
  return absl::OkStatus();
}

ZipReader::ZipReader(std::string path, zip* archive, std::vector<ZipEntryInfo> entries)
    : path_(std::move(path)), archive_(archive), entries_(std::move(entries)) {}

ZipReader::ZipReader(ZipReader&& other) noexcept
    : path_(std::move(other.path_)), archive_(std::exchange(other.archive_, nullptr)),
      entries_(std::move(other.entries_)), mutex_(std::move(other.mutex_)) {}

ZipReader& ZipReader::operator=(ZipReader&& other) noexcept {
  if (this != &other) {
    if (archive_ != nullptr) zip_discard(archive_);
    path_ = std::move(other.path_);
    archive_ = std::exchange(other.archive_, nullptr);
    entries_ = std::move(other.entries_);
    mutex_ = std::move(other.mutex_);
  }
  return *this;
}

ZipReader::~ZipReader() {
  if (archive_ != nullptr) zip_discard(archive_);
}

absl::StatusOr<ZipReader> ZipReader::Open(const std::string& path) {
  int code = 0;
  zip* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (archive == nullptr && code == ZIP_ER_EXISTS) {  // the consistency check found a name twice
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' holds two entries of the same name; ",
                                                   "which one counts is ambiguous"));
  }
  if (archive == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a readable zip archive: ", ZipErrorText(code)));
  }
  ZipReader reader(path, archive, {});
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  if (count < 0 || static_cast<uint64_t>(count) > kMaxZipEntries) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' has ", count, " entries; at most ",
                                                   kMaxZipEntries, " are read"));
  }
  std::set<std::string> seen;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': entry ", i, " is unreadable"));
    }
    ZipEntryInfo info{.name = st.name, .size = st.size, .compressed_size = st.comp_size,
                      .stored = st.comp_method == ZIP_CM_STORE};
    if (absl::Status ok = CheckZipEntryName(info.name); !ok.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': ", ok.message()));
    }
    if (!seen.insert(info.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "' holds the entry ", QuoteUserText(info.name),
                                                     " twice; which one counts is ambiguous"));
    }
    reader.entries_.push_back(std::move(info));
  }
  return reader;
}

const ZipEntryInfo* ZipReader::Find(const std::string& name) const {
  for (const ZipEntryInfo& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

absl::StatusOr<std::string> ZipReader::Read(const std::string& name, uint64_t max_bytes) const {
  std::lock_guard lock(*mutex_);  // one libzip handle serves one thread at a time
  const std::string where = absl::StrCat("'", path_, "' entry '", name, "'");
  const ZipEntryInfo* info = Find(name);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("'", path_, "' has no entry '", name, "'"));
  if (info->size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, " declares ", info->size, " bytes; at most ",
                                                   max_bytes, " are read for it"));
  }
  const zip_int64_t index = zip_name_locate(archive_, name.c_str(), ZIP_FL_ENC_RAW);
  zip_file_t* file = index < 0 ? nullptr : zip_fopen_index(archive_, static_cast<zip_uint64_t>(index), 0);
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(where, " cannot be opened: ", zip_strerror(archive_)));
  }
  // Read one byte more than declared: an entry that inflates past its
  // declared size is caught without holding more than the bound.
  std::string data(static_cast<size_t>(info->size) + 1, '\0');
  zip_int64_t total = 0;
  while (static_cast<uint64_t>(total) < data.size()) {
    const zip_int64_t n = zip_fread(file, data.data() + total, data.size() - static_cast<uint64_t>(total));
    if (n <= 0) {
      if (n < 0) total = -1;
      break;
    }
    total += n;
  }
  const std::string error = total < 0 ? zip_file_strerror(file) : "";
  zip_fclose(file);
  if (total < 0) return absl::InvalidArgumentError(absl::StrCat(where, " is damaged: ", error));
  if (static_cast<uint64_t>(total) != info->size) {
    return absl::InvalidArgumentError(absl::StrCat(where, " declares ", info->size, " bytes but holds ",
                                                   static_cast<uint64_t>(total) > info->size ? "more" : "fewer"));
  }
  data.resize(static_cast<size_t>(total));
  return data;
}

absl::StatusOr<std::string> ZipBytes(const std::vector<ZipEntry>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) return absl::InternalError("zip: no memory for the archive");
  zip_source_keep(buffer);  // the archive's bytes stay readable after zip_close
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  auto fail = [&](const std::string& what) {
    if (archive != nullptr) zip_discard(archive);
    zip_source_free(buffer);
    zip_error_fini(&error);
    return absl::InternalError(absl::StrCat("zip: ", what));
  };
  if (archive == nullptr) return fail("could not start an archive");
  for (const ZipEntry& e : entries) {
    GF_RETURN_IF_ERROR(CheckZipEntryName(e.name));
    zip_source_t* source = zip_source_buffer(archive, e.data.data(), e.data.size(), 0);
    const zip_int64_t index = source == nullptr ? -1 : zip_file_add(archive, e.name.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      if (source != nullptr) zip_source_free(source);
      return fail(absl::StrCat("could not add '", e.name, "'"));
    }
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  if (zip_close(archive) != 0) {
    const std::string why = zip_strerror(archive);
    return fail(absl::StrCat("could not finish the archive: ", why));
  }
  archive = nullptr;
  std::string bytes;
  if (zip_source_open(buffer) == 0) {
    zip_source_seek(buffer, 0, SEEK_END);
    const zip_int64_t size = zip_source_tell(buffer);
    zip_source_seek(buffer, 0, SEEK_SET);
    bytes.resize(size > 0 ? static_cast<size_t>(size) : 0);
    if (size <= 0 || zip_source_read(buffer, bytes.data(), bytes.size()) != size) bytes.clear();
    zip_source_close(buffer);
  }
  zip_source_free(buffer);
  zip_error_fini(&error);
  if (bytes.empty()) return absl::InternalError("zip: the archive's bytes could not be read back");
  return bytes;
}

}  // namespace gradflow
