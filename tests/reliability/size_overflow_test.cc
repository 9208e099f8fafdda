// Issue 13 item 6: shape arithmetic is overflow-checked from the builder to
// the allocation, and a size the machine cannot hold is ResourceExhausted,
// never an uncaught std::bad_alloc or a wrapped size that crashes at Run.

#include <cstdint>
#include <string>

#include "core/initializers.h"
#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "ops/array.h"
#include "ops/math.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

// {4, 2^62} f32 wrapped in NumElements (UBSan: signed overflow); MatMul then
// compiled and segfaulted at Run.
TEST(SizeOverflowTest, AVariableWhoseSizeOverflowsIsAGraphError) {
  Graph g;
  Output w = ops::Variable(g.Scope("dense"), "w", {4, int64_t{1} << 62}, Zeros());
  EXPECT_FALSE(w.valid());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("more than 2^63 - 1"));
}

// nn::Dense(2^40) aborted with an uncaught std::bad_alloc.
TEST(SizeOverflowTest, AWeightLargerThanMemoryIsResourceExhausted) {
  nn::Sequential model({nn::Flatten(Shape{28, 28}), nn::Dense(int64_t{1} << 40)});
  absl::Status status = model.Compile({.loss = "mse"});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(status.message(), HasSubstr("kernel"));
}

// Flatten of [2^32, 2^32] multiplied the dims unchecked (UB) and compiled.
TEST(SizeOverflowTest, FlattenOfOverflowingDimsIsAnError) {
  nn::Sequential model({nn::Flatten(Shape{int64_t{1} << 32, int64_t{1} << 32}), nn::Dense(2)});
  absl::Status status = model.Compile({.loss = "mse"});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("2^63"));
}

}  // namespace
}  // namespace gradflow
