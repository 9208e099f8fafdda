// Replays a fuzz target's committed inputs in the ordinary test suite (and
// under --config=asan): the seed corpus tests/fuzz/corpus/<target>/ and the
// crash regressions tests/fuzz/regressions/<target>/ (inputs that once
// crashed a target or broke one of its invariants). Linked with one target's
// LLVMFuzzerTestOneInput; GF_FUZZ_TARGET names it (set in the BUILD file).

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

#define GF_STRINGIFY_INNER(x) #x
#define GF_STRINGIFY(x) GF_STRINGIFY_INNER(x)
constexpr char kTarget[] = GF_STRINGIFY(GF_FUZZ_TARGET);

// tests/fuzz/<kind>/<target> in the test's runfiles.
fs::path RunfilesDir(const std::string& kind) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  fs::path root = srcdir != nullptr ? fs::path(srcdir) / (workspace ? workspace : "gradflow") : ".";
  return root / "tests/fuzz" / kind / kTarget;
}

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void Replay(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A crash aborts the test binary; this line says which input did it.
  fs::path shown = file.parent_path().parent_path().filename() / file.parent_path().filename() /
                   file.filename();  // corpus/<target>/<input>
  std::fprintf(stderr, "replaying %s (%zu bytes)\n", shown.string().c_str(), bytes.size());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
}

TEST(CorpusReplayTest, EveryCommittedInputReturns) {
  std::vector<fs::path> seeds = FilesIn(RunfilesDir("corpus"));
  ASSERT_FALSE(seeds.empty()) << "no seed inputs in " << RunfilesDir("corpus");
  for (const fs::path& file : seeds) Replay(file);
  for (const fs::path& file : FilesIn(RunfilesDir("regressions"))) Replay(file);
}

}  // namespace
