#include "core/hdf5.h"

#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace gradflow::h5 {
namespace {

// Debian's libhdf5 is built without thread safety: one call at a time.
std::recursive_mutex& Hdf5Mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

// Holds the lock; the first one also silences libhdf5's own error printing
// (its messages go to stderr; ours come back as a Status).
std::unique_lock<std::recursive_mutex> Lock() {
  std::unique_lock lock(Hdf5Mutex());
  static const bool silenced = [] { return H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0; }();
  static_cast<void>(silenced);
  return lock;
}

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// libhdf5 tells open files apart by name, also in memory: each in-memory
// file gets its own.
std::string UniqueMemoryName(const std::string& name) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(name, "#memory-", counter++);
}

std::string ChildPath(const std::string& parent, const std::string& name) {
  return parent == "/" ? absl::StrCat("/", name) : absl::StrCat(parent, "/", name);
}

DatasetInfo::Class ClassOf(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_FLOAT: return DatasetInfo::Class::kFloat;
    case H5T_INTEGER: return DatasetInfo::Class::kInteger;
    case H5T_STRING: return DatasetInfo::Class::kString;
    default: return DatasetInfo::Class::kOther;
  }
}

// The dimensions of a simple (or scalar) dataspace, at most kMaxRank; each
// element count fits int64 (HDF5 allows 2^64 - 1).
absl::StatusOr<std::vector<int64_t>> Dims(hid_t space, const std::string& where) {
  const H5S_class_t kind = H5Sget_simple_extent_type(space);
  if (kind == H5S_SCALAR) return std::vector<int64_t>{};
  if (kind == H5S_NULL) return std::vector<int64_t>{0};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (kind != H5S_SIMPLE || rank < 0 || rank > kMaxRank) {
    return Invalid(absl::StrCat(where, " has a dataspace of rank ", rank, "; at most ", kMaxRank, " is read"));
  }
  hsize_t dims[kMaxRank];
  if (H5Sget_simple_extent_dims(space, dims, nullptr) != rank) return Invalid(absl::StrCat(where, ": unreadable dataspace"));
  std::vector<int64_t> out;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > (hsize_t{1} << 40)) {
      return Invalid(absl::StrCat(where, " declares dimension ", i, " of ", dims[i], " elements, more than any model has"));
    }
    out.push_back(static_cast<int64_t>(dims[i]));
  }
  return out;
}

absl::StatusOr<DatasetInfo> InfoOf(hid_t type, hid_t space, const std::string& where) {
  DatasetInfo info;
  info.type_class = ClassOf(type);
  info.element_size = H5Tget_size(type);
  GF_ASSIGN_OR_RETURN(info.dims, Dims(space, where));
  return info;
}

// Reads a string-typed attribute's elements (fixed- or variable-length).
absl::StatusOr<std::vector<std::string>> ReadStrings(hid_t attr, hid_t type, size_t count,
                                                     const std::string& where) {
  Id memtype(H5Tcopy(type));
  if (H5Tis_variable_str(type) > 0) {
    std::vector<char*> pointers(count, nullptr);
    if (H5Aread(attr, memtype.get(), pointers.data()) < 0) return Invalid(absl::StrCat(where, ": unreadable strings"));
    std::vector<std::string> out;
    size_t total = 0;
    for (char* p : pointers) {
      const size_t n = p == nullptr ? 0 : strnlen(p, kMaxAttributeBytes);
      total += n;
      if (total <= kMaxAttributeBytes) out.emplace_back(p == nullptr ? "" : std::string(p, n));
    }
    Id space(H5Aget_space(attr));
    H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, pointers.data());
    if (total > kMaxAttributeBytes) {
      return Invalid(absl::StrCat(where, " holds more than ", kMaxAttributeBytes, " bytes of text"));
    }
    return out;
  }
  const size_t size = H5Tget_size(type);
  if (size == 0 || count > kMaxAttributeBytes / size) {
    return Invalid(absl::StrCat(where, " holds ", count, " strings of ", size, " bytes, more than ",
                                kMaxAttributeBytes, " bytes"));
  }
  std::string buffer(count * size, '\0');
  if (H5Aread(attr, memtype.get(), buffer.data()) < 0) return Invalid(absl::StrCat(where, ": unreadable strings"));
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    const char* begin = buffer.data() + i * size;
    out.emplace_back(begin, strnlen(begin, size));  // null-padded or null-terminated
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadStringElements(hid_t loc, const std::string& name, const std::string& where,
                                                            bool want_scalar) {
  Id attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) return Invalid(absl::StrCat(where, ": no attribute '", name, "'"));
  Id type(H5Aget_type(attr.get()));
  Id space(H5Aget_space(attr.get()));
  GF_ASSIGN_OR_RETURN(DatasetInfo info, InfoOf(type.get(), space.get(), where));
  int64_t count = 1;
  for (int64_t d : info.dims) count *= d;
  if (want_scalar ? !info.dims.empty() && count != 1 : info.dims.size() > 1) {
    return Invalid(absl::StrCat(where, " is ", info.ToString(), "; expected a ", want_scalar ? "string" : "list of strings"));
  }
  if (count == 0) return std::vector<std::string>{};
  if (info.type_class != DatasetInfo::Class::kString) {
    return Invalid(absl::StrCat(where, " is ", info.ToString(), ", not text"));
  }
  return ReadStrings(attr.get(), type.get(), static_cast<size_t>(count), where);
}

herr_t CollectName(hid_t, const char* name, const H5L_info_t*, void* out) {
  auto* names = static_cast<std::vector<std::string>*>(out);
  if (names->size() >= kMaxChildren) return 1;  // stops the iteration
  names->emplace_back(name);
  return 0;
}

absl::Status WriteAttribute(hid_t loc, const std::string& name, hid_t type, hid_t space, const void* data,
                            const std::string& where) {
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  Id attr(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), type, data) < 0) {
    return absl::InternalError(absl::StrCat(where, ": could not write attribute '", name, "'"));
  }
  return absl::OkStatus();
}

absl::Status WriteDataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                          const std::vector<hsize_t>& dims, const void* data, const std::string& where) {
  Id space(dims.empty() ? H5Screate(H5S_SCALAR)
                        : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  // Intermediate groups of a path ("sequential/dense/kernel") are created too.
  Id links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  Id dataset(H5Dcreate2(loc, name.c_str(), file_type, space.get(), links.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid() || H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    return absl::InternalError(absl::StrCat(where, ": could not write the dataset"));
  }
  return absl::OkStatus();
}

}  // namespace

Id& Id::operator=(Id&& other) noexcept {
  if (this != &other) {
    this->~Id();
    id_ = other.id_;
    other.id_ = -1;
  }
  return *this;
}

Id::~Id() {
  if (id_ < 0) return;
  auto lock = Lock();
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = -1;
}

std::string DatasetInfo::ToString() const {
  std::string type;
  switch (type_class) {
    case Class::kFloat: type = absl::StrCat("float", element_size * 8); break;
    case Class::kInteger: type = absl::StrCat("int", element_size * 8); break;
    case Class::kString: type = "string"; break;
    case Class::kOther: type = "a non-numeric type"; break;
  }
  return absl::StrCat(type, " [", absl::StrJoin(dims, ", "), "]");
}

std::string Group::Where(const std::string& name) const { return ChildPath(path_, name); }

bool Group::Has(const std::string& name) const {
  auto lock = Lock();
  // H5Lexists fails (instead of answering no) when an intermediate link of
  // a path is missing: check each step.
  std::string prefix;
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(name, '/'))) {
    prefix = prefix.empty() ? part : absl::StrCat(prefix, "/", part);
    if (part.empty() || H5Lexists(id_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

absl::StatusOr<Group> Group::OpenGroup(const std::string& name) const {
  auto lock = Lock();
  if (!Has(name)) return Invalid(absl::StrCat(Where(name), " is missing"));
  Id object(H5Oopen(id_.get(), name.c_str(), H5P_DEFAULT));
  if (!object.valid() || H5Iget_type(object.get()) != H5I_GROUP) {
    return Invalid(absl::StrCat(Where(name), " is not a group"));
  }
  return Group(std::move(object), Where(name));
}

absl::StatusOr<Group> Group::CreateGroup(const std::string& name) {
  auto lock = Lock();
  Id group(H5Gcreate2(id_.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!group.valid()) return absl::InternalError(absl::StrCat(Where(name), ": could not create the group"));
  return Group(std::move(group), Where(name));
}

absl::StatusOr<std::vector<std::string>> Group::ChildNames() const {
  auto lock = Lock();
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Literate(id_.get(), H5_INDEX_NAME, H5_ITER_INC, &index, CollectName, &names) < 0) {
    return Invalid(absl::StrCat(path_, ": its members could not be listed"));
  }
  if (names.size() >= kMaxChildren) {
    return Invalid(absl::StrCat(path_, " has more than ", kMaxChildren, " members"));
  }
  return names;
}

bool Group::HasAttribute(const std::string& name) const {
  auto lock = Lock();
  return H5Aexists(id_.get(), name.c_str()) > 0;
}

absl::StatusOr<std::string> Group::ReadStringAttribute(const std::string& name) const {
  auto lock = Lock();
  const std::string where = absl::StrCat(path_, " attribute '", name, "'");
  GF_ASSIGN_OR_RETURN(std::vector<std::string> values, ReadStringElements(id_.get(), name, where, true));
  if (values.size() != 1) return Invalid(absl::StrCat(where, " is empty"));
  return values[0];
}

absl::StatusOr<std::vector<std::string>> Group::ReadStringListAttribute(const std::string& name) const {
  auto lock = Lock();
  return ReadStringElements(id_.get(), name, absl::StrCat(path_, " attribute '", name, "'"), false);
}

absl::Status Group::WriteStringAttribute(const std::string& name, const std::string& value) {
  auto lock = Lock();
  Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Id space(H5Screate(H5S_SCALAR));
  const char* data = value.c_str();
  return WriteAttribute(id_.get(), name, type.get(), space.get(), &data, path_);
}

absl::Status Group::WriteStringListAttribute(const std::string& name, const std::vector<std::string>& values) {
  auto lock = Lock();
  size_t width = 1;
  for (const std::string& v : values) width = std::max(width, v.size());
  std::string buffer(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buffer.data() + i * width, values[i].data(), values[i].size());
  Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), width);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);  // numpy's S<n>
  const hsize_t count = values.size();
  Id space(H5Screate_simple(1, &count, nullptr));
  return WriteAttribute(id_.get(), name, type.get(), space.get(), buffer.data(), path_);
}

absl::StatusOr<Id> Group::OpenDataset(const std::string& name) const {
  if (!Has(name)) return Invalid(absl::StrCat(Where(name), " is missing"));
  Id object(H5Oopen(id_.get(), name.c_str(), H5P_DEFAULT));
  if (!object.valid() || H5Iget_type(object.get()) != H5I_DATASET) {
    return Invalid(absl::StrCat(Where(name), " is not a dataset"));
  }
  return object;
}

absl::StatusOr<DatasetInfo> Group::Info(const std::string& name) const {
  auto lock = Lock();
  GF_ASSIGN_OR_RETURN(Id dataset, OpenDataset(name));
  Id type(H5Dget_type(dataset.get()));
  Id space(H5Dget_space(dataset.get()));
  return InfoOf(type.get(), space.get(), Where(name));
}

absl::StatusOr<Tensor> Group::ReadFloat(const std::string& name, const Shape& expected) const {
  auto lock = Lock();
  GF_ASSIGN_OR_RETURN(DatasetInfo info, Info(name));
  const std::string expected_text = absl::StrCat("float32 [", absl::StrJoin(expected.dims(), ", "), "]");
  if (info.type_class != DatasetInfo::Class::kFloat || info.element_size != 4 || info.dims != expected.dims()) {
    return Invalid(absl::StrCat(Where(name), " is ", info.ToString(), ", expected ", expected_text));
  }
  GF_ASSIGN_OR_RETURN(Id dataset, OpenDataset(name));
  // A chunked dataset whose chunks were never written reads as its fill
  // value: refuse it before allocating what it declares.
  H5D_space_status_t stored = H5D_SPACE_STATUS_ERROR;
  if (expected.NumElements() > 0 &&
      (H5Dget_space_status(dataset.get(), &stored) < 0 || stored != H5D_SPACE_STATUS_ALLOCATED)) {
    return Invalid(absl::StrCat(Where(name), " declares ", info.ToString(), " but its data is ",
                                stored == H5D_SPACE_STATUS_PART_ALLOCATED ? "only partly" : "not",
                                " stored in the file; re-save the model"));
  }
  // Unfiltered data occupies exactly its size in the file; less means a
  // truncated or forged file, caught before allocating what it declares.
  Id dcpl(H5Dget_create_plist(dataset.get()));
  const uint64_t bytes = static_cast<uint64_t>(expected.NumElements()) * sizeof(float);
  if (H5Pget_nfilters(dcpl.get()) == 0 && H5Dget_storage_size(dataset.get()) < bytes) {
    return Invalid(absl::StrCat(Where(name), " declares ", bytes, " bytes of data but stores ",
                                H5Dget_storage_size(dataset.get()), "; the file is truncated or damaged"));
  }
  GF_ASSIGN_OR_RETURN(Tensor out, Tensor::Create(DType::kF32, expected));
  if (out.num_elements() > 0 &&
      H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data<float>()) < 0) {
    return Invalid(absl::StrCat(Where(name), ": its data could not be read (truncated or damaged file)"));
  }
  return out;
}

absl::StatusOr<int64_t> Group::ReadIntegerScalar(const std::string& name) const {
  auto lock = Lock();
  GF_ASSIGN_OR_RETURN(DatasetInfo info, Info(name));
  const bool one = info.dims.empty() || (info.dims.size() == 1 && info.dims[0] == 1);
  if (!one || (info.type_class != DatasetInfo::Class::kInteger && info.type_class != DatasetInfo::Class::kFloat)) {
    return Invalid(absl::StrCat(Where(name), " is ", info.ToString(), ", expected an integer scalar"));
  }
  GF_ASSIGN_OR_RETURN(Id dataset, OpenDataset(name));
  double value = 0;  // a count may be saved as a float (tf.keras 1.x); checked below
  if (H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) {
    return Invalid(absl::StrCat(Where(name), ": its data could not be read"));
  }
  if (!(value >= 0 && value < 9.0e15) || value != static_cast<double>(static_cast<int64_t>(value))) {
    return Invalid(absl::StrCat(Where(name), " holds ", value, ", not a count"));
  }
  return static_cast<int64_t>(value);
}

absl::Status Group::WriteFloat(const std::string& name, const Tensor& value) {
  auto lock = Lock();
  if (value.dtype() != DType::kF32) return absl::InternalError(absl::StrCat(Where(name), ": only float32 is written"));
  std::vector<hsize_t> dims(value.shape().dims().begin(), value.shape().dims().end());
  return WriteDataset(id_.get(), name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, value.data<float>(), Where(name));
}

absl::Status Group::WriteIntegerScalar(const std::string& name, int64_t value) {
  auto lock = Lock();
  return WriteDataset(id_.get(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value, Where(name));
}

absl::StatusOr<File> File::Open(const std::string& path) {
  auto lock = Lock();
  if (H5Fis_hdf5(path.c_str()) <= 0) return Invalid(absl::StrCat("'", path, "' is not an HDF5 file"));
  Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) return Invalid(absl::StrCat("'", path, "': libhdf5 could not open it (damaged file?)"));
  return File(std::move(file), path);
}

absl::StatusOr<File> File::OpenImage(std::string_view bytes, const std::string& name) {
  auto lock = Lock();
  constexpr char kSignature[] = "\x89HDF\r\n\x1a\n";
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) {
    return Invalid(absl::StrCat(name, " is not an HDF5 file (no HDF5 signature at its start)"));
  }
  Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fapl_core(fapl.get(), 1 << 20, /*backing_store=*/0);
  // libhdf5 copies the image (no H5LT flags here), so `bytes` may go.
  if (H5Pset_file_image(fapl.get(), const_cast<char*>(bytes.data()), bytes.size()) < 0) {
    return Invalid(absl::StrCat(name, ": libhdf5 refused the image"));
  }
  Id file(H5Fopen(UniqueMemoryName(name).c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!file.valid()) return Invalid(absl::StrCat(name, ": libhdf5 could not open it (damaged file?)"));
  return File(std::move(file), name);
}

absl::StatusOr<File> File::CreateInMemory(const std::string& name) {
  auto lock = Lock();
  Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fapl_core(fapl.get(), 1 << 20, /*backing_store=*/0);
  Id file(H5Fcreate(UniqueMemoryName(name).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!file.valid()) return absl::InternalError(absl::StrCat(name, ": libhdf5 could not create an in-memory file"));
  return File(std::move(file), name);
}

Group File::Root() const {
  auto lock = Lock();
  return Group(Id(H5Gopen2(id_.get(), "/", H5P_DEFAULT)), "/");
}

absl::StatusOr<std::string> File::Image() const {
  auto lock = Lock();
  if (H5Fflush(id_.get(), H5F_SCOPE_GLOBAL) < 0) return absl::InternalError(absl::StrCat(name_, ": flush failed"));
  const ssize_t size = H5Fget_file_image(id_.get(), nullptr, 0);
  if (size <= 0) return absl::InternalError(absl::StrCat(name_, ": no file image"));
  std::string bytes(static_cast<size_t>(size), '\0');
  if (H5Fget_file_image(id_.get(), bytes.data(), bytes.size()) != size) {
    return absl::InternalError(absl::StrCat(name_, ": the file image could not be copied"));
  }
  return bytes;
}

}  // namespace gradflow::h5
