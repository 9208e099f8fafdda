// libFuzzer target for the parts of Keras file loading that gradflow itself
// parses: the zip archive reader (core/zip_archive.h, over libzip) and the
// Keras model and compile config readers (nn/keras_config.h). The HDF5
// structures inside are libhdf5's parsing, which is not fuzzed here (nn/README.md
// says libhdf5 is not hardened against hostile files).
//
// Input: a first byte that is even makes the rest a `.keras` archive: every
// entry name is checked and every entry read under a 1 MiB bound, and its
// config.json goes to the config readers. An odd first byte makes the rest
// a config JSON text. Every input must give a status, never a crash; an
// entry Read returns is never longer than the bound.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/bounded_json.h"
#include "core/zip_archive.h"
#include "nn/keras_config.h"
#include "nn/model_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr uint64_t kMaxEntryBytes = 1 << 20;

void ReadConfig(const std::string& text) {
  absl::StatusOr<nlohmann::json> json = gradflow::ParseBoundedJson(
      text, "config", {.max_bytes = gradflow::nn::kMaxModelConfigBytes, .max_depth = gradflow::nn::kMaxModelConfigDepth,
                       .max_list_length = gradflow::nn::kMaxConfigListLength});
  if (!json.ok()) return;
  namespace keras_config = gradflow::nn::keras_config;
  absl::StatusOr<gradflow::nn::ModelConfig> model = keras_config::ReadModel(*json, "config", nullptr);
  if (json->is_object() && json->contains("compile_config")) {
    // The per-output forms are checked against the model's outputs (two, when the model is refused).
    const std::vector<std::string> outputs =
        model.ok() ? keras_config::OutputLayerNames(*model) : std::vector<std::string>{"main", "aux"};
    for (const char* version : {"3.10.0", "2.12.0"}) {
      static_cast<void>(keras_config::ReadCompile((*json)["compile_config"], version, outputs, "compile", nullptr));
    }
  }
}

void ReadArchive(const std::string& path) {
  absl::StatusOr<gradflow::ZipReader> zip = gradflow::ZipReader::Open(path);
  if (!zip.ok()) return;
  for (const gradflow::ZipEntryInfo& entry : zip->entries()) {
    GF_FUZZ_CHECK(gradflow::CheckZipEntryName(entry.name).ok(), "an unsafe entry name was listed");
    absl::StatusOr<std::string> data = zip->Read(entry.name, kMaxEntryBytes);
    if (!data.ok()) continue;
    GF_FUZZ_CHECK(data->size() <= kMaxEntryBytes, "Read returned %zu bytes", data->size());
    if (entry.name == "config.json") ReadConfig(*data);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 1) {
    ReadConfig(rest);
    return 0;
  }
  static gradflow::fuzz::MemoryFile file;
  ReadArchive(file.Write(rest.data(), rest.size()));
  return 0;
}
