#ifndef GRADFLOW_CORE_HDF5_H_
#define GRADFLOW_CORE_HDF5_H_

// A small, checking layer over Debian's HDF5 C library (libhdf5 1.10) for
// the HDF5 files Keras writes (legacy `.h5` models, `model.weights.h5`
// inside `.keras` archives). It reads and writes groups, string attributes
// and float/integer datasets; every read is checked before anything is
// allocated: the dataset's class, element size, rank and every dimension
// against what the caller expects, and string attributes against a size
// bound. Errors are InvalidArgument messages naming the object's path in
// the file ("/model_weights/dense/dense/kernel:0 is int32 [8, 3], expected
// float32 [16, 8]").
//
// libhdf5 itself is not hardened against hostile files: a file crafted to
// trip the library's own parser is parsed by libhdf5 (the README says so).
// Debian's serial build is not thread-safe, so every call here holds one
// process-wide lock: two threads may load and save at once, one waits.
//
//   absl::StatusOr<h5::File> file = h5::File::Open("model.h5");
//   absl::StatusOr<h5::Group> g = file->Root().OpenGroup("model_weights");
//   absl::StatusOr<Tensor> w = g->ReadFloat("dense/dense/kernel:0", Shape{16, 8});
//
// Files are written in memory (File::CreateInMemory, then Image()) so the
// caller writes the bytes atomically (core/atomic_file.h): nothing half
// written ever reaches the disk.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace gradflow::h5 {

// Bounds on what a read may allocate for metadata (configs are JSON text in
// attributes; name lists are string arrays).
inline constexpr size_t kMaxAttributeBytes = size_t{64} << 20;
inline constexpr size_t kMaxChildren = 100000;
inline constexpr int kMaxRank = 8;

// An HDF5 identifier that closes itself (H5Oclose / H5Fclose / ...).
class Id {
 public:
  Id() = default;
  explicit Id(int64_t id) : id_(id) {}
  Id(Id&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Id& operator=(Id&& other) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id();
  int64_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  int64_t id_ = -1;
};

// What a dataset holds, as read from the file.
struct DatasetInfo {
  enum class Class { kFloat, kInteger, kString, kOther };
  Class type_class = Class::kOther;
  size_t element_size = 0;   // bytes per element
  std::vector<int64_t> dims;  // empty for a scalar
  // "float32 [16, 8]", "int64 []", "string [3]".
  std::string ToString() const;
};

class Group {
 public:
  // Where the group is ("/model_weights/dense"), for messages.
  const std::string& path() const { return path_; }

  // Whether `name` (a child or a relative path) names a link.
  bool Has(const std::string& name) const;
  absl::StatusOr<Group> OpenGroup(const std::string& name) const;
  absl::StatusOr<Group> CreateGroup(const std::string& name);
  // The child links, in name order (as HDF5 indexes them), at most kMaxChildren.
  absl::StatusOr<std::vector<std::string>> ChildNames() const;

  bool HasAttribute(const std::string& name) const;
  // A scalar string attribute (fixed- or variable-length).
  absl::StatusOr<std::string> ReadStringAttribute(const std::string& name) const;
  // A 1-d string array attribute; a zero-length array of any type is an
  // empty list (Keras writes empty weight_names that way).
  absl::StatusOr<std::vector<std::string>> ReadStringListAttribute(const std::string& name) const;
  // A variable-length UTF-8 scalar (what h5py writes for a Python str).
  absl::Status WriteStringAttribute(const std::string& name, const std::string& value);
  // A 1-d fixed-length byte-string array (what h5py writes for a numpy array
  // of bytes, as Keras does for layer_names and weight_names).
  absl::Status WriteStringListAttribute(const std::string& name, const std::vector<std::string>& values);

  absl::StatusOr<DatasetInfo> Info(const std::string& name) const;
  // A float32 dataset of exactly `expected` shape (a scalar for Shape{}).
  absl::StatusOr<Tensor> ReadFloat(const std::string& name, const Shape& expected) const;
  // An integer scalar (an optimizer's iteration count), any width.
  absl::StatusOr<int64_t> ReadIntegerScalar(const std::string& name) const;
  // A float32 dataset (Tensor f32), or an int64 scalar.
  absl::Status WriteFloat(const std::string& name, const Tensor& value);
  absl::Status WriteIntegerScalar(const std::string& name, int64_t value);

 private:
  friend class File;
  Group(Id id, std::string path) : id_(std::move(id)), path_(std::move(path)) {}
  std::string Where(const std::string& name) const;
  absl::StatusOr<Id> OpenDataset(const std::string& name) const;
  Id id_;
  std::string path_;
};

class File {
 public:
  // Opens a file read-only. `name` in messages is the path.
  static absl::StatusOr<File> Open(const std::string& path);
  // Opens an HDF5 file held in memory (an entry of a zip archive); the bytes
  // are copied. `name` is what messages call it.
  static absl::StatusOr<File> OpenImage(std::string_view bytes, const std::string& name);
  // A new, empty file in memory; Image() returns its bytes.
  static absl::StatusOr<File> CreateInMemory(const std::string& name);

  Group Root() const;
  // The file's bytes (after flushing everything written).
  absl::StatusOr<std::string> Image() const;
  const std::string& name() const { return name_; }

 private:
  File(Id id, std::string name) : id_(std::move(id)), name_(std::move(name)) {}
  Id id_;
  std::string name_;
};

}  // namespace gradflow::h5

#endif  // GRADFLOW_CORE_HDF5_H_
