// libFuzzer target for the safetensors reader (core/checkpoint.h).
//
// Each input is a whole checkpoint file. LoadCheckpoint must return a status
// (never crash, hang or allocate what the file does not hold), and whatever it
// accepts must survive a round trip: SaveCheckpoint of the loaded tensors and
// metadata, loaded again, gives the same dtypes, shapes, bytes and metadata.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// A private folder for the round trip's file (SaveCheckpoint renames a
// temporary file into place, so it needs a real directory).
const std::string& RoundTripPath() {
  static const std::string path = [] {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/checkpoint_fuzzer.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return pattern + "/round_trip.safetensors";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gradflow::Checkpoint;
  using gradflow::Tensor;
  static gradflow::fuzz::MemoryFile* input = new gradflow::fuzz::MemoryFile;
  absl::StatusOr<Checkpoint> loaded = gradflow::LoadCheckpoint(input->Write(data, size));
  if (!loaded.ok()) {
    GF_FUZZ_CHECK(!loaded.status().message().empty(), "an error without a message");
    return 0;
  }
  // Memory follows the file: the tensors' bytes all come from the input.
  uint64_t total_bytes = 0;
  for (const auto& [name, tensor] : loaded->tensors) {
    GF_FUZZ_CHECK(tensor.shape().IsFullyKnown(), "tensor '%s' has unknown dims", name.c_str());
    GF_FUZZ_CHECK(tensor.shape().NumElements() == tensor.num_elements(),
                  "tensor '%s': shape and element count disagree", name.c_str());
    total_bytes += tensor.num_bytes();
  }
  GF_FUZZ_CHECK(total_bytes + 8 <= size, "%llu tensor bytes from a %zu-byte file",
                static_cast<unsigned long long>(total_bytes), size);

  absl::Status saved = gradflow::SaveCheckpoint(RoundTripPath(), loaded->tensors, loaded->metadata);
  GF_FUZZ_CHECK(saved.ok(), "the writer refuses what the reader accepted: %s",
                std::string(saved.message()).c_str());
  absl::StatusOr<Checkpoint> again = gradflow::LoadCheckpoint(RoundTripPath());
  GF_FUZZ_CHECK(again.ok(), "gradflow cannot read its own file: %s",
                std::string(again.status().message()).c_str());
  GF_FUZZ_CHECK(again->metadata == loaded->metadata, "metadata changed in the round trip");
  GF_FUZZ_CHECK(again->tensors.size() == loaded->tensors.size(), "tensor count changed");
  for (const auto& [name, tensor] : loaded->tensors) {
    auto it = again->tensors.find(name);
    GF_FUZZ_CHECK(it != again->tensors.end(), "tensor '%s' lost in the round trip", name.c_str());
    const Tensor& back = it->second;
    GF_FUZZ_CHECK(back.dtype() == tensor.dtype() && back.shape() == tensor.shape(),
                  "tensor '%s' changed type", name.c_str());
    GF_FUZZ_CHECK(tensor.num_bytes() == 0 || std::memcmp(back.raw(), tensor.raw(), tensor.num_bytes()) == 0,
                  "tensor '%s' changed bytes", name.c_str());
  }
  return 0;
}
