// No data lost: a training process killed (SIGKILL) while its ModelCheckpoint
// writes a large model leaves the previous checkpoint complete and loadable,
// and training resumed from it reaches the same weights, bit for bit, as a
// run that was never interrupted.
//
// Its own test binary: the parent forks the training children before it runs
// any OpenMP region itself (libgomp's thread pool does not survive fork).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/checkpoint.h"
#include "core/random.h"
#include "gtest/gtest.h"
#include "nn/checkpoint_callbacks.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow {
namespace {

namespace fs = std::filesystem;

// 1024 -> 2048 -> 10 with SGD momentum: 2.1M weights plus as many velocity
// slots, a 16 MiB checkpoint, so most of a child's time is spent saving.
constexpr int64_t kInputs = 1024;
constexpr int64_t kHidden = 2048;
constexpr int64_t kClasses = 10;
constexpr int64_t kSamples = 64;
constexpr int64_t kBatch = 32;
constexpr int64_t kStepsPerEpoch = kSamples / kBatch;
// At least kMinKills, and more (up to kMaxKills) until one lands mid-save.
constexpr int kMinKills = 6;
constexpr int kMaxKills = 24;
constexpr int kMaxExtraDelayMs = 300;  // after the first checkpoint appears
constexpr int kFirstCheckpointTimeoutMs = 60000;
constexpr int kResumeEpochs = 2;

struct Data {
  Tensor x, y;
};

Data MakeData() {
  Data d{Tensor(DType::kF32, {kSamples, kInputs}), Tensor(DType::kI32, {kSamples})};
  Rng rng(5);
  for (int64_t i = 0; i < kSamples; ++i) {
    d.y.data<int32_t>()[i] = static_cast<int32_t>(i % kClasses);
    for (int64_t k = 0; k < kInputs; ++k) d.x.data<float>()[i * kInputs + k] = static_cast<float>(rng.Normal());
  }
  return d;
}

nn::Sequential CompiledModel() {
  nn::Sequential model({nn::Dense(kHidden, {.activation = "relu", .input_shape = Shape{kInputs}}),
                        nn::Dense(kClasses, {.activation = "softmax"})});
  absl::Status s = model.Compile({.optimizer = optimizers::SGD{.learning_rate = 0.01, .momentum = 0.9}});
  if (!s.ok()) {
    std::fprintf(stderr, "Compile: %s\n", std::string(s.message()).c_str());
    std::abort();
  }
  return model;
}

const nn::FitOptions kFit{.batch_size = kBatch, .shuffle = false, .verbose = 0};

// Keeps the weights at the end of the epochs in `wanted` (1-based).
class Snapshots : public nn::Callback {
 public:
  explicit Snapshots(std::set<int> wanted) : wanted_(std::move(wanted)) {}
  absl::Status OnEpochEnd(nn::Model& model, int epoch, nn::Logs&) override {
    if (wanted_.count(epoch + 1)) {
      auto weights = model.GetWeights();
      if (!weights.ok()) return weights.status();
      at_[epoch + 1] = std::move(*weights);
    }
    return absl::OkStatus();
  }
  const std::map<std::string, Tensor>& at(int epoch) const { return at_.at(epoch); }

 private:
  std::set<int> wanted_;
  std::map<int, std::map<std::string, Tensor>> at_;
};

[[noreturn]] void TrainForeverWithCheckpoints(const std::string& path) {
  Data data = MakeData();
  nn::Sequential model = CompiledModel();
  auto checkpoint = nn::ModelCheckpoint::Create(path);  // every epoch, optimizer included
  if (!checkpoint.ok()) _exit(2);
  nn::FitOptions fit = kFit;
  fit.epochs = 1000000;
  fit.callbacks = {*checkpoint};
  auto history = model.Fit(data.x, data.y, fit);
  std::fprintf(stderr, "child: Fit returned: %s\n", std::string(history.status().message()).c_str());
  _exit(3);
}

TEST(KilledTrainingTest, CheckpointSurvivesSigkillAndResumingMatchesUninterruptedTraining) {
  const char* base = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(base != nullptr ? base : "/tmp") / "killed_training_test";
  fs::remove_all(dir);
  std::mt19937 rng(20240613);
  std::uniform_int_distribution<int> extra_delay_ms(0, kMaxExtraDelayMs);

  // Phase 1: kill training children at random moments (no OpenMP here).
  std::vector<std::string> survivors;
  int mid_save = 0;
  int kills = 0;
  for (int i = 0; i < kMaxKills && (i < kMinKills || mid_save == 0); ++i) {
    ++kills;
    const fs::path run = dir / ("run" + std::to_string(i));
    fs::create_directories(run);
    const std::string path = (run / "model.safetensors").string();
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) TrainForeverWithCheckpoints(path);
    // Wait for the first complete checkpoint, then a little more.
    for (int waited = 0; !fs::exists(path) && waited < kFirstCheckpointTimeoutMs; waited += 5) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(extra_delay_ms(rng)));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the training child stopped on its own (status " << status << ")";
    ASSERT_TRUE(fs::exists(path)) << "no checkpoint within " << kFirstCheckpointTimeoutMs << " ms";
    for (const auto& entry : fs::directory_iterator(run)) {
      if (entry.path().filename().string().rfind(".model.safetensors.tmp-", 0) == 0) ++mid_save;
    }
    survivors.push_back(path);
  }

  // Phase 2: every survivor loads; resume each for kResumeEpochs.
  std::vector<int> epochs_done;
  std::set<int> wanted;
  for (const std::string& path : survivors) {
    auto file = LoadCheckpoint(path);
    ASSERT_TRUE(file.ok()) << file.status();
    const int64_t step = file->tensors.at("global_step").data<int64_t>()[0];
    ASSERT_EQ(step % kStepsPerEpoch, 0) << "a checkpoint from the middle of an epoch";
    epochs_done.push_back(static_cast<int>(step / kStepsPerEpoch));
    wanted.insert(epochs_done.back() + kResumeEpochs);
  }
  Data data = MakeData();
  nn::Sequential uninterrupted = CompiledModel();
  auto snapshots = std::make_shared<Snapshots>(wanted);
  nn::FitOptions fit = kFit;
  fit.epochs = *wanted.rbegin();
  fit.callbacks = {snapshots};
  ASSERT_TRUE(uninterrupted.Fit(data.x, data.y, fit).ok());

  for (size_t i = 0; i < survivors.size(); ++i) {
    SCOPED_TRACE("kill " + std::to_string(i) + ", checkpoint of epoch " + std::to_string(epochs_done[i]));
    auto resumed = nn::LoadModel(survivors[i]);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    nn::FitOptions more = kFit;
    more.epochs = kResumeEpochs;
    ASSERT_TRUE(resumed->Fit(data.x, data.y, more).ok());
    auto weights = resumed->GetWeights();
    ASSERT_TRUE(weights.ok());
    const auto& expected = snapshots->at(epochs_done[i] + kResumeEpochs);
    ASSERT_EQ(weights->size(), expected.size());
    for (const auto& [name, value] : expected) {
      const Tensor& got = weights->at(name);
      ASSERT_EQ(got.num_bytes(), value.num_bytes()) << name;
      EXPECT_EQ(std::memcmp(got.raw(), value.raw(), value.num_bytes()), 0) << name << " differs";
    }
  }
  std::string epochs;
  for (int e : epochs_done) epochs += " " + std::to_string(e);
  std::printf("killed training: %d kills, %d mid-save, checkpoints of epochs%s all loaded and resumed "
              "bit-identically\n", kills, mid_save, epochs.c_str());
  // Without kills landing mid-save the atomicity would be untested.
  EXPECT_GT(mid_save, 0);
}

}  // namespace
}  // namespace gradflow
