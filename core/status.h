#ifndef GRADFLOW_CORE_STATUS_H_
#define GRADFLOW_CORE_STATUS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Propagates a non-OK absl::Status from `expr` to the caller.
#define GF_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::absl::Status gf_status_ = (expr);            \
    if (!gf_status_.ok()) return gf_status_;       \
  } while (0)

#define GF_CONCAT_INNER(a, b) a##b
#define GF_CONCAT(a, b) GF_CONCAT_INNER(a, b)

// `GF_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an absl::StatusOr or
// returns its error.
#define GF_ASSIGN_OR_RETURN(lhs, expr) \
  GF_ASSIGN_OR_RETURN_IMPL(GF_CONCAT(gf_statusor_, __LINE__), lhs, expr)
#define GF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

namespace gradflow {

// User text quoted in error messages is cut to this many bytes: a 100,000
// character name must not make a 100,000 character message.
inline constexpr size_t kMaxQuotedBytes = 120;

// `text` for an error message: cut to `max_bytes` (then "... (N bytes)"
// with its full length), control characters shown as '?' so a hostile name
// cannot forge lines of output.
inline std::string TruncateUserText(std::string_view text, size_t max_bytes = kMaxQuotedBytes) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : text[i];
  }
  if (text.size() > max_bytes) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

// The same in single quotes: 'name', or 'nam'... (100000 bytes).
inline std::string QuoteUserText(std::string_view text, size_t max_bytes = kMaxQuotedBytes) {
  std::string out = "'" + TruncateUserText(text.substr(0, max_bytes), max_bytes) + "'";
  if (text.size() > max_bytes) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace gradflow

#endif  // GRADFLOW_CORE_STATUS_H_
