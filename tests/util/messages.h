#ifndef GRADFLOW_TESTS_UTIL_MESSAGES_H_
#define GRADFLOW_TESTS_UTIL_MESSAGES_H_

// Checks of error messages shared by the tests: an error must say where it
// comes from (the node's name, its op) and what was wrong (the inputs' names
// and shapes), so the tests look for each of those parts in the message.

#include <initializer_list>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace gradflow::testing_util {

// Expects every one of `parts` somewhere in `message`.
inline void ExpectMentions(absl::string_view message, std::initializer_list<absl::string_view> parts) {
  for (absl::string_view part : parts) {
    EXPECT_NE(message.find(part), absl::string_view::npos) << "'" << part << "' is missing from: " << message;
  }
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_MESSAGES_H_
