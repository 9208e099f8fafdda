#include "core/fashion_mnist.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using testing_util::TempDir;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Known facts of the Fashion-MNIST test split (t10k): 10,000 images, 1,000
// per class, and the first one is an ankle boot (label 9).
constexpr int64_t kTestExamples = 10000;
constexpr int64_t kTrainExamples = 60000;
constexpr int32_t kFirstTestLabel = 9;

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

void AppendBigEndian(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(uint8_t(v >> shift));
}

// An IDX file's bytes: magic, dims, data.
std::vector<uint8_t> Idx(uint32_t magic, const std::vector<uint32_t>& dims,
                         const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  AppendBigEndian(out, magic);
  for (uint32_t d : dims) AppendBigEndian(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    if (!bytes.empty()) {
      ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    }
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }
}

// Flips a bit of a gzip file's CRC-32, the first half of its trailer
// (CRC-32 then ISIZE, RFC 1952): the data stay readable, the check fails.
void FlipGzipCrcBit(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-8, std::ios::end);
  char c;
  f.get(c);
  f.seekp(-8, std::ios::end);
  f.put(char(c ^ 1));
}

// ---- The real dataset (installed by tools/install_deps.sh). ----

TEST(FashionMnistTest, LoadsTestSplit) {
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->images.dtype(), DType::kF32);
  EXPECT_EQ(ds->images.shape(), (Shape{kTestExamples, 28, 28}));
  EXPECT_EQ(ds->labels.dtype(), DType::kI32);
  EXPECT_EQ(ds->labels.shape(), (Shape{kTestExamples}));

  std::vector<int> per_class(kFashionMnistNumClasses, 0);
  for (int32_t y : ds->labels.flat<int32_t>()) {
    ASSERT_GE(y, 0);
    ASSERT_LT(y, kFashionMnistNumClasses);
    ++per_class[y];
  }
  for (int c = 0; c < kFashionMnistNumClasses; ++c) EXPECT_EQ(per_class[c], 1000) << c;
  EXPECT_EQ(ds->labels.data<int32_t>()[0], kFirstTestLabel);
  EXPECT_STREQ(kFashionMnistClassNames[kFirstTestLabel], "Ankle boot");

  float lo = 1, hi = 0;
  for (float x : ds->images.flat<float>()) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);  // some pixel is 255
}

TEST(FashionMnistTest, LoadsTrainSplit) {
  absl::StatusOr<Dataset> ds = LoadFashionMnist("train");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->images.shape(), (Shape{kTrainExamples, 28, 28}));
  EXPECT_EQ(ds->labels.shape(), (Shape{kTrainExamples}));
}

TEST(FashionMnistTest, ClassNames) {
  EXPECT_STREQ(kFashionMnistClassNames[0], "T-shirt/top");
  EXPECT_STREQ(kFashionMnistClassNames[1], "Trouser");
  EXPECT_STREQ(kFashionMnistClassNames[5], "Sandal");
  EXPECT_STREQ(kFashionMnistClassNames[8], "Bag");
}

// ---- Small files written here, gzip'd and plain. ----

class IdxReaderTest : public ::testing::TestWithParam<bool> {
 protected:
  bool gzip() const { return GetParam(); }
  std::string Path(const std::string& name) {
    if (dir_.empty()) {
      // "ReadsLabels/Gzip": one folder per test and parameter.
      std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::replace(test.begin(), test.end(), '/', '_');
      dir_ = TempDir(test);
    }
    return dir_ + "/" + name + (gzip() ? ".gz" : "");
  }
  std::string dir_;
};

TEST_P(IdxReaderTest, ReadsAndScalesPixels) {
  std::string path = Path("images");
  WriteFile(path, Idx(kImagesMagic, {2, 1, 3}, {0, 255, 51, 1, 2, 3}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{2, 1, 3}));
  std::vector<float> v = t->ToVector<float>();
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_FLOAT_EQ(v[2], 0.2f);
}

TEST_P(IdxReaderTest, ReadsLabels) {
  std::string path = Path("labels");
  WriteFile(path, Idx(kLabelsMagic, {4}, {3, 0, 9, 200}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxLabels(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ToVector<int32_t>(), (std::vector<int32_t>{3, 0, 9, 200}));  // no class check here
}

TEST_P(IdxReaderTest, MissingFileIsNotFound) {
  std::string path = Path("nope");
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
}

TEST_P(IdxReaderTest, BadMagic) {
  std::string path = Path("labels_as_images");
  WriteFile(path, Idx(kLabelsMagic, {4}, {1, 2, 3, 4}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
  EXPECT_THAT(Msg(t.status()), HasSubstr("magic number 0x00000801"));

  WriteFile(path, {'h', 'e', 'l', 'l', 'o', '!', '!', '!'}, gzip());
  EXPECT_EQ(ReadIdxLabels(path).status().code(), absl::StatusCode::kInvalidArgument);
  // Type byte 0x0D (float) is IDX but not what Fashion-MNIST holds.
  WriteFile(path, Idx(0x00000D01, {1}, {0, 0, 0, 0}), gzip());
  EXPECT_EQ(ReadIdxLabels(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(IdxReaderTest, TruncatedData) {
  std::string path = Path("short");
  WriteFile(path, Idx(kImagesMagic, {3, 2, 2}, {1, 2, 3, 4, 5}), gzip());  // 12 claimed
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
  EXPECT_THAT(Msg(t.status()), HasSubstr("truncated"));
  EXPECT_THAT(Msg(t.status()), HasSubstr("12 data bytes, but it holds only 5"));
}

TEST_P(IdxReaderTest, TruncatedHeader) {
  std::string path = Path("header");
  WriteFile(path, {0, 0, 8}, gzip());
  EXPECT_EQ(ReadIdxLabels(path).status().code(), absl::StatusCode::kDataLoss);
  WriteFile(path, {0, 0, 8, 3, 0, 0, 0, 5, 0, 0}, gzip());
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(t.status()), HasSubstr("header"));
  WriteFile(path, {}, gzip());
  EXPECT_EQ(ReadIdxImages(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(IdxReaderTest, ExtraDataDisagreesWithDims) {
  std::string path = Path("long");
  WriteFile(path, Idx(kLabelsMagic, {2}, {1, 2, 3}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxLabels(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
  EXPECT_THAT(Msg(t.status()), HasSubstr("more data"));
}

TEST_P(IdxReaderTest, OverflowingDimsAreRejectedBeforeAllocating) {
  std::string path = Path("huge");
  // 2^16 * 2^16 * 2^16 = 2^48 elements: far over kMaxIdxElements.
  WriteFile(path, Idx(kImagesMagic, {65536, 65536, 65536}, {1, 2, 3}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
  EXPECT_THAT(Msg(t.status()), HasSubstr("[65536, 65536, 65536]"));
  // 0xFFFFFFFF^3 would wrap a 64-bit product; it must still be caught.
  WriteFile(path, Idx(kImagesMagic, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}), gzip());
  EXPECT_EQ(ReadIdxImages(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(IdxReaderTest, LargeClaimOnSmallFileIsTruncationNotAnAllocation) {
  std::string path = Path("liar");
  // 2^31 elements is allowed by the cap (8 GiB as f32); the file holds 3
  // bytes, so the reader must fail after reading them, without allocating.
  WriteFile(path, Idx(kImagesMagic, {1u << 21, 32, 32}, {1, 2, 3}), gzip());
  absl::StatusOr<Tensor> t = ReadIdxImages(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(t.status()), HasSubstr("holds only 3"));
}

TEST_P(IdxReaderTest, DirectoryIsAnErrorNotACrash) {
  std::string path = Path("x");
  fs::create_directories(path);
  EXPECT_FALSE(ReadIdxImages(path).ok());
}

INSTANTIATE_TEST_SUITE_P(GzipAndPlain, IdxReaderTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Gzip" : "Plain";
                         });

TEST(IdxGzipTest, CutGzipStreamIsTruncated) {
  std::string dir = TempDir("cut_gzip");
  std::string path = dir + "/labels.gz";
  std::vector<uint8_t> data(5000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t((i * 2654435761u) >> 13);
  WriteFile(path, Idx(kLabelsMagic, {5000}, data), /*gzip=*/true);
  fs::resize_file(path, fs::file_size(path) / 2);
  absl::StatusOr<Tensor> t = ReadIdxLabels(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(t.status()), HasSubstr(path));
}

TEST(IdxGzipTest, CorruptGzipTrailerIsDataLoss) {
  std::string dir = TempDir("bad_crc");
  std::string path = dir + "/labels.gz";
  WriteFile(path, Idx(kLabelsMagic, {3}, {1, 2, 3}), /*gzip=*/true);
  FlipGzipCrcBit(path);
  EXPECT_EQ(ReadIdxLabels(path).status().code(), absl::StatusCode::kDataLoss);
}

// Issue 13 item 12: a gzip file cut inside its trailer (CRC-32, ISIZE) or
// followed by junk was accepted.
TEST(IdxGzipTest, CutTrailerAndJunkSuffixAreDataLoss) {
  std::string dir = TempDir("trailer");
  std::string path = dir + "/labels.gz";
  std::vector<uint8_t> labels(300);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = uint8_t(i * 31);
  WriteFile(path, Idx(kLabelsMagic, {300}, labels), /*gzip=*/true);
  ASSERT_TRUE(ReadIdxLabels(path).ok());
  const std::string whole = testing_util::ReadBytes(path);
  for (size_t cut : {1, 4, 7}) {
    testing_util::WriteBytes(path, whole.substr(0, whole.size() - cut));
    absl::StatusOr<Tensor> t = ReadIdxLabels(path);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << "cut " << cut << ": " << t.status();
  }
  testing_util::WriteBytes(path, whole + "junk after the stream");
  absl::StatusOr<Tensor> junk = ReadIdxLabels(path);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss) << junk.status();
  EXPECT_THAT(Msg(junk.status()), HasSubstr("not another gzip member"));
  testing_util::WriteBytes(path, whole + whole);  // two members: valid gzip, but more data than the header
  EXPECT_THAT(Msg(ReadIdxLabels(path).status()), HasSubstr("more data"));
}

// ---- LoadFashionMnist over a folder of small files. ----

class LoadFashionMnistTest : public ::testing::Test {
 protected:
  void WriteSplit(const std::string& dir, const std::string& prefix, int64_t images,
                  std::vector<uint8_t> labels, uint32_t rows = 28, bool gzip = true) {
    const std::string ext = gzip ? ".gz" : "";
    std::vector<uint8_t> pixels(size_t(images) * rows * 28, 17);
    WriteFile(dir + "/" + prefix + "-images-idx3-ubyte" + ext,
              Idx(kImagesMagic, {uint32_t(images), rows, 28}, pixels), gzip);
    WriteFile(dir + "/" + prefix + "-labels-idx1-ubyte" + ext,
              Idx(kLabelsMagic, {uint32_t(labels.size())}, labels), gzip);
  }
  void TearDown() override { unsetenv(kFashionMnistDirEnvVar); }
};

TEST_F(LoadFashionMnistTest, MissingFilesSayHowToInstall) {
  std::string dir = TempDir("empty");
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(ds.status()), HasSubstr(dir + "/t10k-images-idx3-ubyte.gz"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr("apt-get install dataset-fashion-mnist"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr("GRADFLOW_FASHION_MNIST_DIR"));
}

TEST_F(LoadFashionMnistTest, EnvVarOverridesTheDefaultDir) {
  std::string dir = TempDir("env");
  WriteSplit(dir, "t10k", 3, {9, 0, 4});
  setenv(kFashionMnistDirEnvVar, dir.c_str(), 1);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->images.shape(), (Shape{3, 28, 28}));
  EXPECT_EQ(ds->labels.ToVector<int32_t>(), (std::vector<int32_t>{9, 0, 4}));
  EXPECT_FLOAT_EQ(ds->images.data<float>()[0], 17 / 255.0f);
  // The env var names the folder in the NotFound message too.
  EXPECT_THAT(Msg(LoadFashionMnist("train").status()), HasSubstr(dir + "/train-images"));
}

TEST_F(LoadFashionMnistTest, ReadsUncompressedFilesToo) {
  std::string dir = TempDir("plain");
  WriteSplit(dir, "train", 2, {1, 2}, 28, /*gzip=*/false);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("train", dir);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->labels.ToVector<int32_t>(), (std::vector<int32_t>{1, 2}));
}

TEST_F(LoadFashionMnistTest, CountMismatch) {
  std::string dir = TempDir("mismatch");
  WriteSplit(dir, "t10k", 3, {1, 2});
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ds.status()), HasSubstr("3 images"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr("2 labels"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr(dir + "/t10k-labels-idx1-ubyte.gz"));
}

TEST_F(LoadFashionMnistTest, LabelOutOfRange) {
  std::string dir = TempDir("label10");
  WriteSplit(dir, "t10k", 3, {1, 10, 2});
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ds.status()), HasSubstr("label 10 at index 1"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr(dir + "/t10k-labels-idx1-ubyte.gz"));
}

TEST_F(LoadFashionMnistTest, WrongImageSize) {
  std::string dir = TempDir("27x28");
  WriteSplit(dir, "t10k", 1, {1}, /*rows=*/27);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ds.status()), HasSubstr("27x28"));
}

// Issue 13 item 12: the data was expanded before the two files' counts were
// compared. The images' data here is corrupt (a flipped CRC): reading it
// first would report DataLoss; comparing the headers first reports the
// mismatch without touching it.
TEST_F(LoadFashionMnistTest, HeadersAreComparedBeforeAnyDataIsExpanded) {
  std::string dir = TempDir("headers_first");
  WriteSplit(dir, "t10k", 3, {1, 2});
  const std::string images = dir + "/t10k-images-idx3-ubyte.gz";
  FlipGzipCrcBit(images);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument) << ds.status();
  EXPECT_THAT(Msg(ds.status()), HasSubstr("3 images"));
}

// Issue 13 item 12: a header claiming a million images (a gzip bomb) was
// expanded up to the reader's 2^31 cap; LoadFashionMnist's cap is the
// caller's max_examples (60,000 by default), checked before decompressing.
TEST_F(LoadFashionMnistTest, ClaimsAboveMaxExamplesAreRefusedUnread) {
  std::string dir = TempDir("bomb");
  WriteFile(dir + "/t10k-images-idx3-ubyte.gz", Idx(kImagesMagic, {1000000, 28, 28}, {}), true);
  WriteFile(dir + "/t10k-labels-idx1-ubyte.gz", Idx(kLabelsMagic, {1000000}, {}), true);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument) << ds.status();
  EXPECT_THAT(Msg(ds.status()), HasSubstr("more than the 47040000 elements"));
  WriteSplit(dir, "t10k", 3, {1, 2, 3});
  EXPECT_EQ(LoadFashionMnist("test", dir, /*max_examples=*/2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(LoadFashionMnist("test", dir, /*max_examples=*/3).ok());
}

// Issue 13 item 13: a FIFO named like an IDX file made LoadFashionMnist wait
// for a writer forever. (On the old code this test hangs until its timeout.)
TEST_F(LoadFashionMnistTest, FifoIsRefusedWithoutBlocking) {
  std::string dir = TempDir("fifo");
  WriteSplit(dir, "t10k", 1, {1});
  const std::string labels = dir + "/t10k-labels-idx1-ubyte.gz";
  fs::remove(labels);
  ASSERT_EQ(mkfifo(labels.c_str(), 0644), 0);
  absl::StatusOr<Dataset> ds = LoadFashionMnist("test", dir);
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument) << ds.status();
  EXPECT_THAT(Msg(ds.status()), HasSubstr("is not a regular file"));
  EXPECT_THAT(Msg(ds.status()), HasSubstr(labels));
}

TEST_F(LoadFashionMnistTest, UnknownSplit) {
  absl::StatusOr<Dataset> ds = LoadFashionMnist("validation");
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ds.status()), HasSubstr("'validation'"));
}

}  // namespace
}  // namespace gradflow
