// Tests of optimizers/data_parallel.cc, ops/all_reduce.cc and
// Session::BroadcastVariables in one process: the rewrite on one rank
// changes nothing, buckets follow the backward order and the size limits,
// reductions start as soon as their bucket is ready, and the errors (no
// communicator, bad options, ranks that disagree). The multi-process tests
// are tests/mpi/ (mpirun, --config=mpi).

#include "optimizers/data_parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/batch_norm.h"
#include "tests/optimizers/data_parallel_testing.h"

namespace gradflow {
namespace {

using testing::TrainClassifier;
using testing::TrainSetup;
using testing::Weights;

TEST(DataParallelTest, OneRankTrainsBitIdenticallyToNoRewrite) {
  SoloCommunicator solo;
  for (optimizers::Optimizer optimizer :
       {optimizers::Optimizer(optimizers::SGD{.learning_rate = 0.05, .momentum = 0.9}),
        optimizers::Optimizer(optimizers::Adam{.learning_rate = 0.01})}) {
    for (bool clip : {false, true}) {
      TrainSetup plain{.optimizer = optimizer, .steps = 10};
      if (clip) plain.clip = optimizers::ClipByGlobalNorm(0.5);
      TrainSetup parallel = plain;
      parallel.data_parallel = optimizers::DataParallelOptions{.first_bucket_bytes = 256};
      parallel.communicator = &solo;
      absl::StatusOr<Weights> a = TrainClassifier(plain);
      absl::StatusOr<Weights> b = TrainClassifier(parallel);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(b.ok()) << b.status();
      EXPECT_EQ(*a, *b) << optimizers::OptimizerName(optimizer) << " clip " << clip;
    }
  }
}

// Gradients of four variables of 100, 10, 30 and 1000 floats, made in that order.
std::vector<Output> FourGradients(Graph& g) {
  std::vector<Output> grads;
  for (int64_t n : {100, 10, 30, 1000}) grads.push_back(ops::ZerosLike(g, ops::Variable(g, "v" + std::to_string(n), {n}, Zeros())));
  return grads;
}

TEST(DataParallelTest, BucketsFollowTheBackwardOrderAndTheSizeLimits) {
  Graph g;
  std::vector<Output> grads = FourGradients(g);
  std::swap(grads[0], grads[3]);  // the list's order is not the order they are made in
  // 400 + 40 + 120 + 4000 bytes; first bucket 500 bytes, then 4000.
  auto buckets = optimizers::GradientBuckets(grads, {.bucket_bytes = 4000, .first_bucket_bytes = 500});
  EXPECT_EQ(buckets, (std::vector<std::vector<int>>{{3, 1}, {2}, {0}}));
  // One bucket takes everything when it fits.
  buckets = optimizers::GradientBuckets(grads, {.first_bucket_bytes = 1 << 20});
  EXPECT_EQ(buckets, (std::vector<std::vector<int>>{{3, 1, 2, 0}}));
  // A gradient bigger than any bucket is a bucket of its own.
  buckets = optimizers::GradientBuckets(grads, {.bucket_bytes = 8, .first_bucket_bytes = 8});
  EXPECT_EQ(buckets.size(), 4u);
}

TEST(DataParallelTest, ReductionsStartAsSoonAsTheirBucketIsReady) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  Output h = x;
  for (int l = 0; l < 3; ++l) {
    Scope s = g.Scope("dense_" + std::to_string(l));
    h = ops::Dense(s, h, ops::Variable(s, "kernel", {h.shape()[1], 4}, GlorotUniform()),
                   ops::Variable(s, "bias", {4}, Zeros()));
  }
  Output loss = ops::SparseCategoricalCrossentropy(g, labels, h, true);
  // 16 bytes per first bucket: the last layer's bias alone, then one variable per bucket.
  Output train = optimizers::Minimize(g, loss, optimizers::SGD{},
                                      {.data_parallel = optimizers::DataParallelOptions{
                                           .bucket_bytes = 16, .first_bucket_bytes = 16}});
  ASSERT_TRUE(g.ok()) << g.status();
  SoloCommunicator solo;
  Session session(g, {.communicator = &solo});
  auto plan = session.Compile({loss}, {train}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::vector<std::string> names = plan->NodeNames();
  auto position = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) - names.begin();
  };
  const auto first_start = position("data_parallel/bucket_0/AllReduceStart");
  const auto first_input_gradient = std::find_if(names.begin(), names.end(), [](const std::string& n) {
    return n.find("gradients/dense_0") == 0;
  }) - names.begin();
  ASSERT_LT(first_start, static_cast<long>(names.size()));
  // The last layer's first bucket is on its way before the first layer's gradients exist.
  EXPECT_LT(first_start, first_input_gradient);
  // Every wait comes after every start it could overlap with: waits go last.
  EXPECT_LT(position("data_parallel/bucket_0/AllReduceStart"), position("data_parallel/bucket_0/AllReduceWait"));
}

TEST(DataParallelTest, APlanWithoutACommunicatorSaysWhatToSet) {
  Graph g;
  std::vector<Output> grads = FourGradients(g);
  std::vector<Output> means = optimizers::AllReduceGradients(g, grads);
  ASSERT_TRUE(g.ok()) << g.status();
  Session session(g);
  auto plan = session.Compile({means[0]}, {}, Phase::kTrain);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::Status status = plan->Run({}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("SessionOptions::communicator"), std::string::npos) << status;
  EXPECT_NE(status.message().find("data_parallel/bucket_0/AllReduceStart"), std::string::npos) << status;
}

TEST(DataParallelTest, BucketSizesMustBePositive) {
  Graph g;
  std::vector<Output> grads = FourGradients(g);
  optimizers::AllReduceGradients(g, grads, {.bucket_bytes = 0});
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("bucket_bytes (0)"), std::string::npos) << g.status();
}

// Rank 1 of 2 whose peer, rank 0, is scripted: Broadcast hands out rank 0's
// buffers in order and AllReduceSum adds rank 0's values.
class ScriptedRank1 final : public Communicator {
 public:
  std::deque<std::string> rank0_broadcasts;
  std::deque<std::vector<double>> rank0_sums;
  int rank() const override { return 1; }
  int size() const override { return 2; }
  absl::StatusOr<int64_t> StartAllReduceSum(float*, size_t) override { return 0; }
  absl::Status Wait(int64_t) override { return absl::OkStatus(); }
  absl::Status AllReduceSum(double* data, size_t count) override {
    std::vector<double> peer = rank0_sums.front();
    rank0_sums.pop_front();
    for (size_t i = 0; i < count; ++i) data[i] += peer[i];
    return absl::OkStatus();
  }
  absl::Status Broadcast(void* data, size_t bytes, int) override {
    std::string peer = rank0_broadcasts.front();
    rank0_broadcasts.pop_front();
    if (peer.size() != bytes) return absl::InternalError("script: wrong broadcast size");
    std::memcpy(data, peer.data(), bytes);
    return absl::OkStatus();
  }
};

std::string Bytes(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), sizeof(n)); }

TEST(DataParallelTest, RanksThatDisagreeOnTheVariablesAreNamedWithTheFirstDifference) {
  Graph g;
  ops::Variable(g, "dense/kernel", {4, 3}, Zeros());
  Session session(g);
  const std::string rank0 = "dense/kernel f32[4, 5]\n";
  ScriptedRank1 comm;
  comm.rank0_broadcasts = {Bytes(rank0.size()), rank0};
  comm.rank0_sums = {{0.0, 0.0}};  // rank 0 agrees with itself
  absl::Status status = session.BroadcastVariables(comm);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("rank 1 differs from rank 0"), std::string::npos) << status;
  EXPECT_NE(status.message().find("line 1: rank 0 has 'dense/kernel f32[4, 5]', rank 1 has "
                                  "'dense/kernel f32[4, 3]'"),
            std::string::npos)
      << status;
}

TEST(DataParallelTest, BroadcastVariablesCopiesRankZerosValues) {
  Graph g;
  ops::Variable(g, "w", {2}, Zeros());
  Session session(g);
  float rank0_values[2] = {1.5f, -2.0f};
  ScriptedRank1 comm;
  comm.rank0_broadcasts = {Bytes(std::string("w f32[2]\n").size()), "w f32[2]\n",
                           std::string(reinterpret_cast<const char*>(rank0_values), sizeof(rank0_values))};
  comm.rank0_sums = {{0.0, 0.0}};
  ASSERT_TRUE(session.BroadcastVariables(comm).ok());
  EXPECT_EQ(session.variables().Get("w")->ToVector<float>(), (std::vector<float>{1.5f, -2.0f}));
}

// Rank 0 of 2 whose peer holds exactly its data: every sum is twice its own.
// Two identical replicas at batch B train as one process at batch B, so the
// paths that only run with more than one rank (synchronized batch norm, the
// means over the ranks) are checked here against a plain run.
class MirroredPair final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  absl::StatusOr<int64_t> StartAllReduceSum(float* data, size_t count) override {
    for (size_t i = 0; i < count; ++i) data[i] *= 2;
    return 0;
  }
  absl::Status Wait(int64_t) override { return absl::OkStatus(); }
  absl::Status AllReduceSum(double* data, size_t count) override {
    for (size_t i = 0; i < count; ++i) data[i] *= 2;
    return absl::OkStatus();
  }
  absl::Status Broadcast(void*, size_t, int) override { return absl::OkStatus(); }
};

// x -> Dense -> synchronized BatchNorm -> relu -> Dense -> loss, 5 Adam steps
// at batch 8; every variable afterwards (with the moving statistics).
absl::StatusOr<Weights> TrainBatchNormGraph(Communicator* communicator) {
  Graph g(11);
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, testing::kFeatures});
  Output labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  Scope s = g.Scope("bn");
  Output h = ops::Dense(s, x, ops::Variable(s, "kernel", {testing::kFeatures, 6}, GlorotUniform()));
  Output moving_mean = ops::Variable(s, "moving_mean", {6}, Zeros(), false);
  Output moving_variance = ops::Variable(s, "moving_variance", {6}, Ones(), false);
  ops::BatchNormOutputs bn = ops::BatchNorm(s, h,
                                            {.gamma = ops::Variable(s, "gamma", {6}, Ones()),
                                             .beta = ops::Variable(s, "beta", {6}, Zeros()),
                                             .moving_mean = moving_mean,
                                             .moving_variance = moving_variance,
                                             .synchronized = true});
  Scope o = g.Scope("out");
  Output logits = ops::Dense(o, ops::Relu(o, bn.y), ops::Variable(o, "kernel", {6, 3}, GlorotUniform()));
  Output loss = ops::SparseCategoricalCrossentropy(g, labels, logits, true);
  optimizers::MinimizeOptions options{.extra_updates = {ops::AssignMovingAverage(s, moving_mean, bn.mean, 0.9),
                                                        ops::AssignMovingAverage(s, moving_variance, bn.variance, 0.9)}};
  if (communicator) options.data_parallel = optimizers::DataParallelOptions{};
  Output train = optimizers::Minimize(g, loss, optimizers::Adam{.learning_rate = 0.01}, options);
  GF_RETURN_IF_ERROR(g.status());
  Session session(g, {.communicator = communicator});
  GF_ASSIGN_OR_RETURN(Plan step, session.Compile({loss}, {train}, Phase::kTrain));
  Tensor xs(DType::kF32, {8, testing::kFeatures}), ys(DType::kI32, {8});
  for (int i = 0; i < 5; ++i) {
    testing::FillRows(8 * i, 8, xs.data<float>(), ys.data<int32_t>());
    GF_RETURN_IF_ERROR(step.Run({{x, xs}, {labels, ys}}).status());
  }
  return testing::VariablesOf(session);
}

TEST(DataParallelTest, SynchronizedBatchNormOnMirroredRanksTrainsAsOneProcess) {
  MirroredPair mirror;
  absl::StatusOr<Weights> plain = TrainBatchNormGraph(nullptr);
  absl::StatusOr<Weights> mirrored = TrainBatchNormGraph(&mirror);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(mirrored.ok()) << mirrored.status();
  ASSERT_EQ(plain->size(), mirrored->size());
  for (const auto& [name, values] : *plain) {
    const std::vector<float>& other = mirrored->at(name);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_NEAR(values[i], other[i], 1e-5 * (1 + std::abs(values[i]))) << name << " " << i;
    }
  }
}

}  // namespace
}  // namespace gradflow
