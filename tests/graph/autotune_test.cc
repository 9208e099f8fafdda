// ChooseKernel (graph/autotune.h): SessionOptions::autotune's choices, the
// timing, the per-process cache and the errors; and, through real plans,
// that Dense's two implementations agree and print which one ran.

#include "graph/autotune.h"

#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/dense.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// A kernel that takes `delay` per run.
class SlowKernel : public Kernel {
 public:
  explicit SlowKernel(std::chrono::microseconds delay) : delay_(delay) {}
  absl::Status Run(const RunContext&) override {
    std::this_thread::sleep_for(delay_);
    return absl::OkStatus();
  }

 private:
  std::chrono::microseconds delay_;
};

struct Candidates {
  int made_slow = 0, made_quick = 0;
  std::vector<KernelCandidate> list() {
    return {{"slow", [this]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
               ++made_slow;
               return std::make_unique<SlowKernel>(std::chrono::microseconds(3000));
             }},
            {"quick", [this]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
               ++made_quick;
               return std::make_unique<SlowKernel>(std::chrono::microseconds(0));
             }}};
  }
};

// A node for the contexts: a placeholder of `width` columns (part of the key).
struct Fixture {
  explicit Fixture(int64_t width) : x(ops::Placeholder(g, "x", DType::kF32, {-1, width})) {}
  KernelContext Context(std::string autotune) const {
    return KernelContext{*x.node, Phase::kTrain, {x.type()}, {x.type()}, {}, {}, std::move(autotune)};
  }
  Graph g;
  Output x;
};

TEST(AutotuneTest, FirstAndANameFixTheChoice) {
  Fixture f(3);
  Candidates c;
  auto first = ChooseKernel(f.Context("first"), c.list());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->implementation(), "slow");
  auto named = ChooseKernel(f.Context("quick"), c.list());
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*named)->implementation(), "quick");
  EXPECT_EQ(c.made_slow, 1);
  EXPECT_EQ(c.made_quick, 1);
}

TEST(AutotuneTest, FastestTimesEachOnceAndRemembersTheChoiceForTheShape) {
  Fixture f(1234567);  // a key no other test uses
  Candidates c;
  auto chosen = ChooseKernel(f.Context("fastest"), c.list());
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->implementation(), "quick");
  EXPECT_EQ(c.made_slow, 1);
  auto again = ChooseKernel(f.Context("fastest"), c.list());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->implementation(), "quick");
  EXPECT_EQ(c.made_slow, 1);  // not made (nor timed) again
  EXPECT_EQ(c.made_quick, 2);
  bool remembered = false;
  for (const auto& [key, name] : AutotuneChoices()) remembered |= key.find("1234567") != std::string::npos && name == "quick";
  EXPECT_TRUE(remembered);
}

TEST(AutotuneTest, ACandidateThatCannotBeMadeLosesAndAnUnknownNameIsAnError) {
  Fixture f(7654321);
  std::vector<KernelCandidate> candidates = {
      {"broken", []() -> absl::StatusOr<std::unique_ptr<Kernel>> { return absl::InternalError("unsupported"); }},
      {"works", []() -> absl::StatusOr<std::unique_ptr<Kernel>> {
         return std::make_unique<SlowKernel>(std::chrono::microseconds(0));
       }}};
  auto chosen = ChooseKernel(f.Context("fastest"), candidates);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->implementation(), "works");
  auto unknown = ChooseKernel(f.Context("gemm"), candidates);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("SessionOptions::autotune is 'gemm'; use \"fastest\", \"first\" or one of this op's "
                        "implementations: broken, works"));
}

std::vector<KernelCandidate> TakingMicroseconds(int64_t first, int64_t second) {
  auto taking = [](int64_t us) {
    return [us]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
      return std::make_unique<SlowKernel>(std::chrono::microseconds(us));
    };
  };
  return {{"default", taking(first)}, {"other", taking(second)}};
}

// 2% is within what noise can flip: the default stays. 40% is not.
TEST(AutotuneTest, OnlyAClearlyFasterCandidateReplacesTheDefault) {
  Fixture near_tie(2345671), clear(2345672);
  auto kept = ChooseKernel(near_tie.Context("fastest"), TakingMicroseconds(4000, 3920));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ((*kept)->implementation(), "default");
  auto replaced = ChooseKernel(clear.Context("fastest"), TakingMicroseconds(4000, 2400));
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ((*replaced)->implementation(), "other");
  EXPECT_GT(AutotuneSeconds(), 8 * (0.004 + 0.0024));  // a warm-up and 7 timed rounds of each
}

// A kernel that fails when it runs loses, even if it fails fast.
TEST(AutotuneTest, ACandidateThatFailsToRunLoses) {
  class Failing : public Kernel {
    absl::Status Run(const RunContext&) override { return absl::InternalError("no"); }
  };
  Fixture f(3456781);
  std::vector<KernelCandidate> candidates = {
      {"failing", []() -> absl::StatusOr<std::unique_ptr<Kernel>> { return std::make_unique<Failing>(); }},
      {"slow", []() -> absl::StatusOr<std::unique_ptr<Kernel>> {
         return std::make_unique<SlowKernel>(std::chrono::microseconds(500));
       }}};
  auto chosen = ChooseKernel(f.Context("fastest"), candidates);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->implementation(), "slow");
}

// The same Dense step under each implementation: equal to f32 rounding (the
// sums run in different orders), and bit-identical between runs of one choice.
TEST(AutotuneTest, DenseImplementationsAgreeAndEachIsReproducible) {
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 64});
  auto w = ops::Placeholder(g, "w", DType::kF32, {64, 32});
  auto b = ops::Placeholder(g, "b", DType::kF32, {32});
  auto y = ops::Dense(g.Scope("dense"), x, w, b, {.name = "elu"});
  ASSERT_TRUE(g.ok()) << g.status();
  Tensor xv(DType::kF32, {128, 64}), wv(DType::kF32, {64, 32}), bv(DType::kF32, {32});
  for (int64_t i = 0; i < xv.num_elements(); ++i) xv.data<float>()[i] = static_cast<float>(std::sin(0.37 * i));
  for (int64_t i = 0; i < wv.num_elements(); ++i) wv.data<float>()[i] = static_cast<float>(std::cos(0.11 * i)) / 8;
  for (int64_t i = 0; i < bv.num_elements(); ++i) bv.data<float>()[i] = 0.01f * static_cast<float>(i);
  std::map<std::string, std::vector<float>> results;
  for (const char* implementation : {"inner_product", "matmul", "matmul"}) {
    Session s(g, {.autotune = implementation});
    auto plan = s.Compile({y});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto out = plan->Run({{x, xv}, {w, wv}, {b, bv}});
    ASSERT_TRUE(out.ok()) << out.status();
    const std::vector<float> values = (*out)[0].ToVector<float>();
    if (results.count(implementation)) EXPECT_EQ(results[implementation], values) << implementation;
    results[implementation] = values;
  }
  const std::vector<float>& a = results["inner_product"];
  const std::vector<float>& m = results["matmul"];
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], m[i], 1e-5f * std::max(1.0f, std::abs(a[i]))) << i;
}

}  // namespace
}  // namespace gradflow
