#ifndef GRADFLOW_CORE_BOUNDED_JSON_H_
#define GRADFLOW_CORE_BOUNDED_JSON_H_

// Parsing JSON that comes from files (checkpoint metadata, model configs)
// with limits checked before and while parsing, so a hostile value costs at
// most a bounded multiple of its limit, and with duplicate keys rejected
// (nlohmann keeps the last one silently).

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace gradflow {

struct JsonLimits {
  size_t max_bytes = size_t{16} << 20;  // the text, checked before parsing
  int max_depth = 64;                   // nesting of arrays and objects
  size_t max_list_length = 10000;       // elements of any one array or object
};

// Parses `text` (`what` names it in errors: "metadata 'gradflow.fit'").
// InvalidArgument for invalid JSON, a limit exceeded, or an object with the
// same key twice; each message names the limit or the key.
absl::StatusOr<nlohmann::json> ParseBoundedJson(std::string_view text, std::string_view what,
                                                const JsonLimits& limits = {});

}  // namespace gradflow

#endif  // GRADFLOW_CORE_BOUNDED_JSON_H_
