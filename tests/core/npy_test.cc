// core/npy.h: round trips, files np.save wrote (every supported dtype; 0-d,
// 1-d, 3-d and empty shapes), our files read back by numpy and equal to
// np.save's bytes, and hostile files (bad magic, bad headers, truncated data,
// absurd shapes), each an error naming the file.

#include "core/npy.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"
#include "tests/util/numpy_reader.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using testing_util::ReadBytes;
using testing_util::TempDir;
using testing_util::WriteBytes;

Tensor Iota(DType dtype, Shape shape) {
  Tensor t(dtype, std::move(shape));
  VisitDType(dtype, [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<T>()[i] = static_cast<T>(i * 3 - 7);
  });
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::string(static_cast<const char*>(a.raw()), a.num_bytes()) ==
             std::string(static_cast<const char*>(b.raw()), b.num_bytes());
}

TEST(NpyTest, RoundTripsEveryDtypeAndRank) {
  const std::string dir = TempDir("round_trip");
  for (DType dtype : {DType::kF32, DType::kI32, DType::kI64}) {
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3, 4}, Shape{0, 3}, Shape{1, 1, 1, 1}}) {
      const Tensor t = Iota(dtype, shape);
      const std::string path = dir + "/t.npy";
      ASSERT_TRUE(WriteNpy(path, t).ok());
      absl::StatusOr<Tensor> back = ReadNpy(path);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_TRUE(SameBytes(*back, t)) << DTypeName(dtype) << " " << shape.ToString();
      EXPECT_EQ(ReadBytes(path).size() % 64, t.num_bytes() % 64);  // the data starts 64-aligned
    }
  }
}

// np.save of arrays whose values are i * 3 - 7 (as Iota), for each dtype and shape.
constexpr char kWriteWithNumpyPy[] = R"(
import sys
import numpy as np
out = sys.argv[1]
for dtype in ("float32", "float64", "int32", "int64", "uint8"):
    for name, shape in (("0d", ()), ("1d", (5,)), ("3d", (2, 3, 4)), ("empty", (0, 3))):
        n = int(np.prod(shape))
        values = np.arange(n) * 3 - 7
        if dtype == "uint8":
            values = np.arange(n) * 9 % 256
        np.save("%s/%s_%s.npy" % (out, dtype, name), values.reshape(shape).astype(dtype))
np.save(out + "/fortran.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
np.save(out + "/big_endian.npy", np.ones(3, ">f4"))
np.save(out + "/object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
np.save(out + "/complex.npy", np.ones(2, np.complex64))
np.save(out + "/int16.npy", np.ones(2, np.int16))
np.save(out + "/record.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
with open(out + "/v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(6, dtype=np.float32).reshape(2, 3), version=(2, 0))
with open(out + "/v3.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(4, dtype=np.int64), version=(3, 0))
print("ok")
)";

class NumpyFilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("numpy_files"));
    std::string output;
    ASSERT_NO_FATAL_FAILURE(testing_util::RunPythonOn(*dir_, kWriteWithNumpyPy, *dir_, &output));
  }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name + ".npy"; }
  static std::string* dir_;
};
std::string* NumpyFilesTest::dir_ = nullptr;

TEST_F(NumpyFilesTest, ReadsEveryDtypeAndShapeNumpyWrites) {
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"0d", Shape{}}, {"1d", Shape{5}}, {"3d", Shape{2, 3, 4}}, {"empty", Shape{0, 3}}};
  for (const auto& [name, shape] : shapes) {
    for (const char* dtype : {"float32", "float64", "int32", "int64"}) {
      absl::StatusOr<Tensor> t = ReadNpy(Path(absl::StrCat(dtype, "_", name)));
      ASSERT_TRUE(t.ok()) << t.status();
      const std::string kind = dtype;
      const DType expected = kind == "int32" ? DType::kI32 : kind == "int64" ? DType::kI64 : DType::kF32;
      // float64 becomes float32: the same small integers.
      EXPECT_TRUE(SameBytes(*t, Iota(expected, shape))) << dtype << " " << name;
    }
    absl::StatusOr<Tensor> bytes = ReadNpy(Path("uint8_" + name));
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(bytes->dtype(), DType::kF32);
    EXPECT_EQ(bytes->shape(), shape);
    for (int64_t i = 0; i < bytes->num_elements(); ++i) EXPECT_EQ(bytes->data<float>()[i], float(i * 9 % 256));
  }
}

TEST_F(NumpyFilesTest, ReadsFormatVersions2And3) {
  absl::StatusOr<Tensor> v2 = ReadNpy(Path("v2"));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->shape(), Shape({2, 3}));
  EXPECT_EQ(v2->data<float>()[5], 5.0f);
  absl::StatusOr<Tensor> v3 = ReadNpy(Path("v3"));
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->dtype(), DType::kI64);
  EXPECT_EQ(v3->data<int64_t>()[3], 3);
}

TEST_F(NumpyFilesTest, RefusesWhatItDoesNotReadWithTheFix) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"fortran", "fortran_order is True (column-major data); save it in C order: np.save(path, np.ascontiguousarray(a))"},
      {"big_endian", "dtype '>f4' is big-endian"},
      {"object", "is an object array (pickled Python objects), which is never loaded"},
      {"complex", "dtype '<c8' is not supported; use float32"},
      {"int16", "dtype '<i2' is not supported"},
      {"record", "structured (record) dtypes are not supported"},
  };
  for (const auto& [name, message] : cases) {
    absl::StatusOr<Tensor> t = ReadNpy(Path(name));
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(t.status().message(), HasSubstr(message)) << name;
    EXPECT_THAT(t.status().message(), HasSubstr("cannot read .npy file '" + Path(name) + "': ")) << name;
  }
}

// Our files read back in numpy, and are byte for byte what np.save writes.
constexpr char kCompareWithNumpyPy[] = R"(
import io, sys
import numpy as np
d = sys.argv[1]
for name, dtype, shape in (("f32_3d", "float32", (2, 3, 4)), ("i32_0d", "int32", ()), ("i64_1d", "int64", (5,)),
                           ("f32_empty", "float32", (0, 3)), ("f32_long", "float32", (12345678901,) * 0 + (1000,))):
    n = int(np.prod(shape))
    expected = (np.arange(n) * 3 - 7).reshape(shape).astype(dtype)
    ours = open("%s/%s.npy" % (d, name), "rb").read()
    buffer = io.BytesIO()
    np.save(buffer, expected)
    loaded = np.load("%s/%s.npy" % (d, name))
    print(name, loaded.dtype == expected.dtype and loaded.shape == expected.shape and (loaded == expected).all(),
          ours == buffer.getvalue())
)";

TEST(NpyTest, NumpyReadsOurFilesAndTheyAreWhatNpSaveWrites) {
  const std::string dir = TempDir("compare");
  ASSERT_TRUE(WriteNpy(dir + "/f32_3d.npy", Iota(DType::kF32, {2, 3, 4})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/i32_0d.npy", Iota(DType::kI32, {})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/i64_1d.npy", Iota(DType::kI64, {5})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/f32_empty.npy", Iota(DType::kF32, {0, 3})).ok());
  ASSERT_TRUE(WriteNpy(dir + "/f32_long.npy", Iota(DType::kF32, {1000})).ok());
  std::string output;
  ASSERT_NO_FATAL_FAILURE(testing_util::RunPythonOn(dir, kCompareWithNumpyPy, dir, &output));
  for (const char* name : {"f32_3d", "i32_0d", "i64_1d", "f32_empty", "f32_long"}) {
    EXPECT_THAT(output, HasSubstr(absl::StrCat(name, " True True"))) << output;
  }
}

// A .npy file from its header dict text (padded as np.save pads it) and data.
std::string NpyBytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  header.append(64 - (prefix + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += char((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

absl::Status ReadBytesAsNpy(const std::string& bytes) {
  const std::string path = TempDir("hostile") + "/hostile.npy";
  WriteBytes(path, bytes);
  return ReadNpy(path).status();
}

TEST(NpyTest, HostileHeadersAreErrorsNamingTheValue) {
  const std::string twelve(12, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False, }", "must have all of 'descr', 'fortran_order' and 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1, }", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "unexpected key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': 3, }", "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "write (n,) for one dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", "must be a non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }", "'fortran_order' must be True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "does not fit in int64"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } __import__('os')", "unexpected text after"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::string(40, '1').insert(1, ", ") + "), }",
       "does not fit in int64"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (" + [] {
         std::string dims;
         for (int i = 0; i < 33; ++i) dims += "1, ";
         return dims;
       }() + "), }",
       "more than 32 dimensions"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (3,), }", "expected ','"},
  };
  for (const auto& [dict, message] : cases) {
    const absl::Status status = ReadBytesAsNpy(NpyBytes(dict, twelve));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << dict << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr(message)) << dict;
    EXPECT_THAT(status.message(), HasSubstr("hostile.npy")) << dict;
  }
}

TEST(NpyTest, TruncatedDataIsDataLossBeforeAnyAllocation) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  absl::Status status = ReadBytesAsNpy(NpyBytes(dict, std::string(20, '\0')));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("shape (2, 3) of '<f4' needs 24 bytes of data but the file has 20"));
  status = ReadBytesAsNpy(NpyBytes(dict, std::string(28, '\0')));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("4 bytes follow the data"));
}

TEST(NpyTest, HugeShapesAreRefusedByTheFileSize) {
  // 2^62 float32 elements: a product beyond int64 bytes; 2^40: fits int64
  // but not the 12 bytes the file has. Neither allocates.
  absl::Status status = ReadBytesAsNpy(
      NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", "abc"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("more elements than any file can hold"));
  status = ReadBytesAsNpy(NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1048576, 1048576), }", "abc"));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("needs 8796093022208 bytes of data but the file has 3"));
  status = ReadBytesAsNpy(
      NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0), }", ""));
  EXPECT_TRUE(status.ok()) << status;  // zero elements: an empty tensor, whatever the other dims
}

TEST(NpyTest, BadPreamblesAreErrors) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  const std::string good = NpyBytes(dict, std::string(4, '\0'));
  EXPECT_TRUE(ReadBytesAsNpy(good).ok());
  EXPECT_THAT(ReadBytesAsNpy("PK\x03\x04 not npy at all").message(), HasSubstr("does not start with"));
  EXPECT_THAT(ReadBytesAsNpy(good.substr(0, 5)).message(), HasSubstr("too few for a .npy header"));
  std::string v4 = good;
  v4[6] = 4;
  EXPECT_THAT(ReadBytesAsNpy(v4).message(), HasSubstr("format version 4.0 is not supported"));
  std::string long_header = good;
  long_header[8] = '\xff';
  long_header[9] = '\xff';
  EXPECT_THAT(ReadBytesAsNpy(long_header).message(), HasSubstr("runs past the end of the file"));
  std::string v2 = NpyBytes(dict, std::string(4, '\0'), 2);
  EXPECT_TRUE(ReadBytesAsNpy(v2).ok());
  v2[8] = 0, v2[9] = 0, v2[10] = 0x10, v2[11] = 0;  // 1 MiB header
  EXPECT_THAT(ReadBytesAsNpy(v2).message(), HasSubstr("above the limit of 65536"));
}

TEST(NpyTest, MissingFilesAndDirectoriesAreErrorsNamingThePath) {
  const std::string dir = TempDir("missing");
  absl::StatusOr<Tensor> missing = ReadNpy(dir + "/nope.npy");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.npy': cannot open it"));
  EXPECT_THAT(ReadNpy(dir).status().message(), HasSubstr("not a regular file"));
  const absl::Status write = WriteNpy(dir + "/no/such/dir/y.npy", Iota(DType::kF32, {2}));
  EXPECT_FALSE(write.ok());
  EXPECT_THAT(write.message(), HasSubstr("cannot write .npy file '" + dir + "/no/such/dir/y.npy'"));
}

TEST(NpyTest, FloatingPointValuesSurviveExactly) {
  const std::string path = TempDir("floats") + "/f.npy";
  absl::StatusOr<Tensor> t = Tensor::FromVector<float>({4}, {-0.0f, 1e-45f, INFINITY, NAN});
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(WriteNpy(path, *t).ok());
  absl::StatusOr<Tensor> back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(SameBytes(*back, *t));
}

}  // namespace
}  // namespace gradflow
