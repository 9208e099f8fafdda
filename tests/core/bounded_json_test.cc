// Tests of core/bounded_json.cc (issue 13 item 14).

#include "core/bounded_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::StatusOr<nlohmann::json>& r) { return std::string(r.status().message()); }

TEST(BoundedJsonTest, ParsesWithinTheLimits) {
  absl::StatusOr<nlohmann::json> j = ParseBoundedJson(R"({"a": [1, 2, {"b": []}], "c": "x"})", "test");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["a"][2]["b"].size(), 0u);
}

TEST(BoundedJsonTest, DuplicateKeysAreRejectedAtAnyDepth) {
  EXPECT_THAT(Message(ParseBoundedJson(R"({"a": 1, "a": 2})", "model config")),
              HasSubstr("model config has the key 'a' twice in one object"));
  EXPECT_FALSE(ParseBoundedJson(R"({"x": [{"k": 1, "j": 2, "k": 3}]})", "t").ok());
  // The same key in two different objects is fine.
  EXPECT_TRUE(ParseBoundedJson(R"({"x": {"k": 1}, "y": {"k": 2}})", "t").ok());
}

TEST(BoundedJsonTest, SizeDepthAndListLengthAreBounded) {
  EXPECT_THAT(Message(ParseBoundedJson(std::string(100, ' ') + "1", "v", {.max_bytes = 50})),
              HasSubstr("101 bytes, more than the limit of 50"));
  EXPECT_THAT(Message(ParseBoundedJson("[[[[1]]]]", "v", {.max_depth = 3})), HasSubstr("deeper than 3"));
  EXPECT_TRUE(ParseBoundedJson("[[[1]]]", "v", {.max_depth = 3}).ok());
  EXPECT_THAT(Message(ParseBoundedJson("[1, 2, 3, 4]", "v", {.max_list_length = 3})), HasSubstr("more than 3"));
  EXPECT_FALSE(ParseBoundedJson(R"({"a":1,"b":2,"c":3,"d":4})", "v", {.max_list_length = 3}).ok());
  EXPECT_FALSE(ParseBoundedJson("[[], [], [], []]", "v", {.max_list_length = 3}).ok());
  EXPECT_TRUE(ParseBoundedJson(R"({"a":[1,2,3],"b":[1,2,3],"c":[1,2,3]})", "v", {.max_list_length = 3}).ok());
  // Brackets inside strings are not nesting.
  EXPECT_TRUE(ParseBoundedJson(R"(["[[[[[["])", "v", {.max_depth = 1}).ok());
}

TEST(BoundedJsonTest, InvalidJsonNamesWhat) {
  EXPECT_THAT(Message(ParseBoundedJson("{", "metadata 'x'")), HasSubstr("metadata 'x' is not valid JSON"));
}

}  // namespace
}  // namespace gradflow
