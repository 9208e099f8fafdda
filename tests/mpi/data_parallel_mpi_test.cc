// Data parallel over Open MPI: run as `mpirun -np 2 data_parallel_mpi_test`
// (tests/mpi/run.sh; built with --config=mpi). Two ranks at batch B train
// like one process at batch 2B, runs are bit-identical, ranks with different
// graphs are told so, and a rank that does not arrive is named after the
// timeout instead of hanging the others.

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/mpi_communicator.h"
#include "nn/checkpoint_callbacks.h"
#include "nn/activation_layers.h"
#include "nn/layers.h"
#include "nn/normalization.h"
#include "nn/saving.h"
#include "nn/model.h"
#include "gtest/gtest.h"
#include "tests/optimizers/data_parallel_testing.h"

namespace gradflow {
namespace {

MpiCommunicator* world = nullptr;  // main() creates it

using testing::TrainClassifier;
using testing::TrainSetup;
using testing::Weights;

// The largest |a - b| over every weight, relative to the largest |a|.
double RelativeDifference(const Weights& a, const Weights& b) {
  double diff = 0, scale = 1e-30;
  for (const auto& [name, values] : a) {
    const std::vector<float>& other = b.at(name);
    for (size_t i = 0; i < values.size(); ++i) {
      diff = std::max(diff, std::abs(double(values[i]) - other[i]));
      scale = std::max(scale, std::abs(double(values[i])));
    }
  }
  return diff / scale;
}

TEST(DataParallelMpiTest, TwoRanksAtBatchBTrainLikeOneProcessAtBatch2B) {
  ASSERT_EQ(world->size(), 2);
  for (optimizers::Optimizer optimizer :
       {optimizers::Optimizer(optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9}),
        optimizers::Optimizer(optimizers::Adam{.learning_rate = 0.01})}) {
    for (bool clip : {false, true}) {
      TrainSetup one{.optimizer = optimizer, .global_batch = 32, .steps = 50};
      if (clip) one.clip = optimizers::ClipByGlobalNorm(0.5);
      TrainSetup two = one;
      two.data_parallel = optimizers::DataParallelOptions{.first_bucket_bytes = 256};
      two.communicator = world;
      absl::StatusOr<Weights> a = TrainClassifier(one);
      absl::StatusOr<Weights> b = TrainClassifier(two);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_EQ(a->size(), b->size());
      // f32 rounding of sums taken in another order (tests/mpi/README.md has the measured values).
      const double difference = RelativeDifference(*a, *b);
      EXPECT_LT(difference, 1e-5) << optimizers::OptimizerName(optimizer) << " clip " << clip;
      if (world->rank() == 0) {
        std::printf("%s%s: largest weight difference %.2g of the largest weight\n",
                    optimizers::OptimizerName(optimizer).c_str(), clip ? " + ClipByGlobalNorm" : "", difference);
      }
    }
  }
}

std::string Hex(const Weights& w) {
  std::string out;
  for (const auto& [name, values] : w) {
    absl::StrAppend(&out, name, ":");
    for (float v : values) absl::StrAppend(&out, absl::Hex(*reinterpret_cast<const uint32_t*>(&v)), " ");
    out += "\n";
  }
  return out;
}

TEST(DataParallelMpiTest, RunsAreBitIdenticalAndEveryRankHoldsTheSameWeights) {
  TrainSetup setup{.optimizer = optimizers::Adam{.learning_rate = 0.01},
                   .data_parallel = optimizers::DataParallelOptions{.first_bucket_bytes = 256},
                   .communicator = world};
  absl::StatusOr<Weights> first = TrainClassifier(setup);
  absl::StatusOr<Weights> second = TrainClassifier(setup);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_TRUE(world->CheckSame("the trained weights", Hex(*first)).ok());
}

TEST(DataParallelMpiTest, RanksWithDifferentGraphsAreToldAtStartUp) {
  TrainSetup setup{.data_parallel = optimizers::DataParallelOptions{}, .communicator = world,
                   .hidden = world->rank() == 1 ? 20 : 16};
  absl::StatusOr<Weights> trained = TrainClassifier(setup);
  ASSERT_FALSE(trained.ok());
  EXPECT_EQ(trained.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(trained.status().message().find("rank 1 differs from rank 0"), std::string::npos)
      << trained.status();
  if (world->rank() == 1) {
    EXPECT_NE(trained.status().message().find("rank 0 has 'dense_0/bias f32[16]', rank 1 has "
                                              "'dense_0/bias f32[20]'"),
              std::string::npos)
        << trained.status();
  }
}

TEST(DataParallelMpiTest, ARankThatDoesNotArriveIsNamedAfterTheTimeout) {
  world->set_timeout(absl::Seconds(1));
  float value = 1.0f + world->rank();
  if (world->rank() == 1) sleep(3);  // late: rank 0 gives up first
  auto begin = std::chrono::steady_clock::now();
  absl::StatusOr<int64_t> handle = world->StartAllReduceSum(&value, 1);
  ASSERT_TRUE(handle.ok()) << handle.status();
  absl::Status waited = world->Wait(*handle);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (world->rank() == 0) {
    EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded) << waited;
    EXPECT_NE(waited.message().find("rank 1 never reached it"), std::string::npos) << waited;
    EXPECT_LT(seconds, 2.5);
    // The late rank arrives after all: waiting again completes the sum.
    world->set_timeout(absl::Seconds(60));
    waited = world->Wait(*handle);
  }
  world->set_timeout(absl::Seconds(60));
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(value, 3.0f);
}

// A Sequential classifier (12 -> 16 relu [-> batch norm] -> 3 softmax),
// compiled with or without data parallelism.
struct ClassifierSetup {
  optimizers::Optimizer optimizer = optimizers::Adam{.learning_rate = 0.01};
  std::optional<optimizers::GradientClipping> clip;
  bool batch_norm = false;  // synchronized over the ranks
  bool regularized = false;  // an L2 kernel penalty and an exponentially decaying rate
};

absl::StatusOr<nn::Sequential> Classifier(std::optional<nn::DataParallel> data_parallel,
                                          const ClassifierSetup& setup = {}) {
  // No bias before batch norm (it cancels it): Adam would turn its rounding-noise gradient into steps.
  nn::DenseOptions first{.use_bias = !setup.batch_norm, .input_shape = Shape{testing::kFeatures}};
  if (setup.regularized) first.kernel_regularizer = optimizers::L2(0.01);
  nn::Sequential model({nn::Dense(16, first)});
  if (setup.batch_norm) model.Add(nn::BatchNormalization({.momentum = 0.9, .synchronized = true}));
  model.Add(nn::Activation("relu"));
  model.Add(nn::Dense(3, {.activation = "softmax"}));
  GF_RETURN_IF_ERROR(model.Compile({.optimizer = setup.optimizer,
                                    .metrics = {"accuracy"},
                                    .seed = 3,
                                    .clip = setup.clip,
                                    .learning_rate_schedule = setup.regularized
                                        ? std::optional<optimizers::Schedule>(optimizers::ExponentialDecay{
                                              .initial_learning_rate = 0.02, .decay_steps = 10, .decay_rate = 0.5})
                                        : std::nullopt,
                                    .data_parallel = data_parallel}));
  return model;
}

Weights WeightsOf(const nn::Model& model) {
  Weights w;
  const auto weights = model.GetWeights();
  if (weights.ok()) {
    for (const auto& [name, t] : *weights) w[name] = t.ToVector<float>();
  }
  return w;
}

// 96 rows, 9 shuffled epochs of 6 steps (54 steps); one process at batch 16
// against two ranks at 8.
void ExpectFitOnTwoRanksMatchesOneProcess(const ClassifierSetup& setup, const std::string& what) {
  constexpr int64_t kRows = 96;
  Tensor x(DType::kF32, {kRows, testing::kFeatures}), y(DType::kI32, {kRows});
  testing::FillRows(0, kRows, x.data<float>(), y.data<int32_t>());
  auto one = Classifier(std::nullopt, setup);
  auto two = Classifier(nn::DataParallel{.communicator = world}, setup);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  constexpr int kEpochs = 9;
  auto h1 = one->Fit(x, y, {.epochs = kEpochs, .batch_size = 16, .verbose = 0});
  auto h2 = two->Fit(x, y, {.epochs = kEpochs, .batch_size = 8, .verbose = 0});
  ASSERT_TRUE(h1.ok()) << h1.status();
  ASSERT_TRUE(h2.ok()) << h2.status();
  // Every weight, and batch norm's moving statistics.
  const double difference = RelativeDifference(WeightsOf(*one), WeightsOf(*two));
  EXPECT_LT(difference, 1e-5) << what;
  if (world->rank() == 0) std::printf("Fit, %s: largest weight difference %.2g\n", what.c_str(), difference);
  // The reported loss and accuracy are over both ranks' samples: as one process's.
  for (const char* name : {"loss", "accuracy"}) {
    for (int e = 0; e < kEpochs; ++e) {
      EXPECT_NEAR(h1->history[name][e], h2->history[name][e], 1e-5) << what << " " << name << " epoch " << e;
    }
  }
  // Evaluate splits the rows over the ranks and sums what each saw.
  auto e1 = one->Evaluate(x, y), e2 = two->Evaluate(x, y);
  ASSERT_TRUE(e1.ok() && e2.ok());
  EXPECT_NEAR((*e1)["loss"], (*e2)["loss"], 1e-5) << what;
  EXPECT_EQ((*e1)["accuracy"], (*e2)["accuracy"]) << what;
}

TEST(DataParallelMpiTest, FitOnTwoRanksMatchesOneProcessAtTheGlobalBatch) {
  const optimizers::Optimizer sgd = optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9};
  const optimizers::Optimizer adam = optimizers::Adam{.learning_rate = 0.01};
  for (bool batch_norm : {false, true}) {
    for (bool clip : {false, true}) {
      for (const auto& [name, optimizer] : {std::pair{"SGD-momentum", sgd}, std::pair{"Adam", adam}}) {
        ClassifierSetup setup{.optimizer = optimizer, .batch_norm = batch_norm};
        if (clip) setup.clip = optimizers::ClipByGlobalNorm(0.5);
        ExpectFitOnTwoRanksMatchesOneProcess(
            setup, absl::StrCat(name, clip ? " + ClipByGlobalNorm" : "", batch_norm ? " + synchronized BatchNormalization" : ""));
      }
    }
  }
  // The penalty's gradient is the same on every rank, and the schedule follows the shared step.
  ExpectFitOnTwoRanksMatchesOneProcess({.optimizer = sgd, .regularized = true}, "SGD-momentum + L2 + ExponentialDecay");
  ExpectFitOnTwoRanksMatchesOneProcess({.optimizer = adam, .regularized = true}, "Adam + L2 + ExponentialDecay");
}

TEST(DataParallelMpiTest, EveryRankResumesFromRankZerosCheckpoint) {
  Tensor x(DType::kF32, {64, testing::kFeatures}), y(DType::kI32, {64});
  testing::FillRows(0, 64, x.data<float>(), y.data<int32_t>());
  const nn::DataParallel data_parallel{.communicator = world};
  // One path for both ranks: rank 0's process id names it.
  int64_t id = getpid();
  ASSERT_TRUE(world->Broadcast(&id, sizeof(id), 0).ok());
  const std::string path = absl::StrCat(::testing::TempDir(), "/resume_", id, ".safetensors");
  auto uninterrupted = Classifier(data_parallel);
  ASSERT_TRUE(uninterrupted.ok());
  ASSERT_TRUE(uninterrupted->Fit(x, y, {.epochs = 4, .batch_size = 8, .verbose = 0}).ok());

  auto first = Classifier(data_parallel);
  auto checkpoint = nn::ModelCheckpoint::Create(path);
  ASSERT_TRUE(first.ok() && checkpoint.ok());
  ASSERT_TRUE(first->Fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0, .callbacks = {*checkpoint}}).ok());
  double written = 0;  // a barrier: rank 0 has written the file
  ASSERT_TRUE(world->AllReduceSum(&written, 1).ok());
  auto resumed = nn::LoadModel(path, {.data_parallel = data_parallel});
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(resumed->Fit(x, y, {.epochs = 4, .batch_size = 8, .verbose = 0, .initial_epoch = 2}).ok());
  // The optimizer state, the step and the shuffles resume with the weights.
  EXPECT_EQ(WeightsOf(*resumed), WeightsOf(*uninterrupted));
  ASSERT_TRUE(world->AllReduceSum(&written, 1).ok());  // both have read it
  if (world->rank() == 0) std::filesystem::remove(path);
}

// Sets stop_training at the end of epoch 0 (on the rank that has it).
class StopAfterFirstEpoch : public nn::Callback {
 public:
  absl::Status OnEpochEnd(nn::Model& model, int, nn::Logs&) override {
    model.stop_training = true;
    return absl::OkStatus();
  }
};

TEST(DataParallelMpiTest, ACallbackStoppingOneRankStopsEveryRankAfterTheEpoch) {
  Tensor x(DType::kF32, {32, testing::kFeatures}), y(DType::kI32, {32});
  testing::FillRows(0, 32, x.data<float>(), y.data<int32_t>());
  auto model = Classifier(nn::DataParallel{.communicator = world});
  ASSERT_TRUE(model.ok());
  std::vector<nn::CallbackPtr> callbacks;
  if (world->rank() == 1) callbacks.push_back(std::make_shared<StopAfterFirstEpoch>());
  auto history = model->Fit(x, y, {.epochs = 5, .batch_size = 8, .verbose = 0, .callbacks = callbacks});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->history["loss"].size(), 1u);  // on rank 0 too, which had no such callback
}

TEST(DataParallelMpiTest, OnlyRankZeroWritesCheckpoints) {
  // Each rank its own directory, so a write on rank 1 would show.
  const std::string dir = ::testing::TempDir() + "/checkpoints_rank" + std::to_string(world->rank());
  std::filesystem::create_directories(dir);
  auto checkpoint = nn::ModelCheckpoint::Create(dir + "/model.safetensors");
  ASSERT_TRUE(checkpoint.ok());
  Tensor x(DType::kF32, {32, testing::kFeatures}), y(DType::kI32, {32});
  testing::FillRows(0, 32, x.data<float>(), y.data<int32_t>());
  auto model = Classifier(nn::DataParallel{.communicator = world});
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->Fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0, .callbacks = {*checkpoint}}).ok());
  EXPECT_EQ(std::filesystem::exists(dir + "/model.safetensors"), world->rank() == 0);
}

}  // namespace
}  // namespace gradflow

int main(int argc, char** argv) {
  auto world = gradflow::MpiCommunicator::Create(&argc, &argv, {.timeout = absl::Seconds(60)});
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", std::string(world.status().message()).c_str());
    return 1;
  }
  gradflow::world = world->get();
  // One XML report per rank (tests/mpi/run.sh counts the cases of each),
  // set before InitGoogleTest, which opens it.
  if (const char* prefix = std::getenv("GF_MPI_XML_PREFIX")) {
    ::testing::GTEST_FLAG(output) =
        std::string("xml:") + prefix + ".rank" + std::to_string(gradflow::world->rank()) + ".xml";
  }
  ::testing::InitGoogleTest(&argc, argv);
  int failed = RUN_ALL_TESTS() != 0;
  double any_failed = failed;  // the job fails if any rank does
  if (!(*world)->AllReduceSum(&any_failed, 1).ok()) return 1;
  world->reset();
  return any_failed != 0 ? 1 : 0;
}
