// Run with ONEDNN_MAX_CPU_ISA=AVX512_CORE (tests/ops/BUILD): oneDNN then
// behaves as on a CPU without bf16 instructions, and a plan computing in
// bf16 must fail naming the ISA, not fall back to slow code or crash.

#include <cstdlib>
#include <string>

#include "core/dnnl_context.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

TEST(BFloat16WithoutIsaTest, PlanFailsNamingTheMissingIsa) {
  ASSERT_STREQ(std::getenv("ONEDNN_MAX_CPU_ISA"), "AVX512_CORE");
  const std::string isa = EffectiveCpuIsaName();
  if (isa != "avx512_core") GTEST_SKIP() << "this CPU runs oneDNN at " << isa << ", below avx512_core";
  Graph g;
  auto x = ops::Placeholder(g, "x", DType::kF32, {-1, 8});
  auto w = ops::Placeholder(g, "w", DType::kF32, {8, 4});
  auto y = ops::Dense(g.Scope("dense"), x, w, Output{}, {}, DType::kBF16);
  ASSERT_TRUE(g.ok()) << g.status();
  Session s(g);
  auto plan = s.Compile({y});
  absl::Status status = plan.ok() ? plan->Run({{x, Tensor(DType::kF32, {2, 8})}, {w, Tensor(DType::kF32, {8, 4})}}).status()
                                  : plan.status();
  ASSERT_FALSE(status.ok());
  testing_util::ExpectMentions(status.message(), {"dense", "bf16", "avx512_core_bf16", "runs avx512_core", "float32"});
  EXPECT_FALSE(CheckBFloat16Support("the model").ok());
}

}  // namespace
}  // namespace gradflow
