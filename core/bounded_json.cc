#include "core/bounded_json.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace gradflow {
namespace {

using Json = nlohmann::json;

// Thrown from the parser callback to stop parsing at the first violation
// (returning false from the callback would only drop the value).
struct LimitExceeded {
  std::string message;
};

// Nesting depth of `text` outside strings, before any parsing, so neither
// the parser nor the json destructor recurses on input beyond the limit.
bool DepthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// Per open array/object: how many elements so far, and an object's keys.
struct Container {
  bool is_object = false;
  size_t length = 0;
  std::set<std::string> keys;
};

}  // namespace

absl::StatusOr<Json> ParseBoundedJson(std::string_view text, std::string_view what_view, const JsonLimits& limits) {
  const std::string what(what_view);  // absl::StrCat takes absl::string_view, not std::
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", text.size(), " bytes, more than the limit of ",
                                                   limits.max_bytes));
  }
  if (!DepthWithin(text, limits.max_depth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is JSON nested deeper than ", limits.max_depth, " levels"));
  }
  std::vector<Container> open;
  // Counts one more element of the innermost container: an object counts
  // its keys, an array its values (including nested containers).
  auto count = [&](bool is_key) {
    if (open.empty() || open.back().is_object != is_key) return;
    if (++open.back().length > limits.max_list_length) {
      throw LimitExceeded{absl::StrCat(what, " has an array or object of more than ", limits.max_list_length,
                                       " elements")};
    }
  };
  Json::parser_callback_t callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        count(false);
        open.push_back({.is_object = event == Json::parse_event_t::object_start});
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open.back().keys.insert(key).second) {
          throw LimitExceeded{absl::StrCat(what, " has the key ", QuoteUserText(key), " twice in one object")};
        }
        count(true);
        break;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        open.pop_back();
        break;
      case Json::parse_event_t::value:
        count(false);
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const LimitExceeded& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", e.what()));
  }
}

}  // namespace gradflow
