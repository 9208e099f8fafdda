#ifndef GRADFLOW_CORE_STATUS_H_
#define GRADFLOW_CORE_STATUS_H_

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

#endif  // GRADFLOW_CORE_STATUS_H_
