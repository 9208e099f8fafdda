// Issue 13 item 14: metadata JSON read from a model file is bounded (size,
// depth, list length) before and while parsing, and duplicate keys are
// rejected in every metadata value, as the safetensors header already did.

#include <string>

#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "nn/saving.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using testing_util::TempDir;

// The configuration JSON of a small compiled model.
std::string SavedModel(const std::string& path) {
  nn::Sequential model({nn::Dense(3, {.activation = "relu", .input_shape = Shape{4}}),
                        nn::Dense(2, {.activation = "softmax"})});
  EXPECT_TRUE(model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.1}, .metrics = {"accuracy"}}).ok());
  EXPECT_TRUE(model.Save(path).ok());
  auto file = LoadCheckpoint(path);
  EXPECT_TRUE(file.ok());
  return file->metadata.at("gradflow.model");
}

TEST(MetadataLimitsTest, DuplicateKeysInTheModelConfigAreRejected) {
  const std::string config = SavedModel(TempDir("dup") + "/m.safetensors");
  ASSERT_TRUE(nn::ParseModelConfig(config).ok());
  // The same key twice: nlohmann keeps the last silently.
  const std::string duplicated = "{\"class_name\":\"Sequential\"," + config.substr(1);
  absl::StatusOr<nn::ModelConfig> parsed = nn::ParseModelConfig(duplicated);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("has the key 'class_name' twice"));
}

TEST(MetadataLimitsTest, AHugeListOfMetricsIsRefused) {
  nlohmann::json config = nlohmann::json::parse(SavedModel(TempDir("metrics") + "/m.safetensors"));
  config["compile"]["metrics"] = std::vector<std::string>(100000, "accuracy");
  absl::StatusOr<nn::ModelConfig> parsed = nn::ParseModelConfig(config.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("100000 metrics, more than the 64"));
}

TEST(MetadataLimitsTest, FitStateIsBoundedAndHasNoDuplicateKeys) {
  const std::string dir = TempDir("fit_state");
  SavedModel(dir + "/m.safetensors");
  auto file = LoadCheckpoint(dir + "/m.safetensors");
  ASSERT_TRUE(file.ok());
  const std::string padded = "{\"epochs_shuffled\": 1" + std::string(1 << 20, ' ') + "}";
  for (const std::string& bad : {std::string("{\"epochs_shuffled\": 1, \"epochs_shuffled\": 2}"), padded}) {
    file->metadata[nn::kFitStateMetadataKey] = bad;
    ASSERT_TRUE(SaveCheckpoint(dir + "/bad.safetensors", file->tensors, file->metadata).ok());
    auto loaded = nn::LoadModel(dir + "/bad.safetensors");
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << bad.substr(0, 60);
    EXPECT_THAT(loaded.status().message(), HasSubstr("metadata 'gradflow.fit'"));
    EXPECT_LT(loaded.status().message().size(), 1000u) << "the message quotes a bounded part of the value";
  }
}

TEST(MetadataLimitsTest, ACheckpointHeaderOfTooManyTensorsIsRefused) {
  const std::string path = TempDir("many_tensors") + "/many.safetensors";
  std::string header = "{";
  for (size_t i = 0; i <= kMaxCheckpointTensors; ++i) {
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},";
  }
  header.back() = '}';
  std::string bytes(8, '\0');
  const uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(length >> (8 * i));
  testing_util::WriteBytes(path, bytes + header);
  absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("more than 100000 tensors"));
}

}  // namespace
}  // namespace gradflow
