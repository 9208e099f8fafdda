#include "nn/dtype_policy.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::nn {

const std::vector<DTypePolicyInfo>& DTypePolicies() {
  static const std::vector<DTypePolicyInfo> policies = {{"float32", DType::kF32}, {"mixed_bfloat16", DType::kBF16}};
  return policies;
}

std::vector<std::string> DTypePolicyNames() {
  std::vector<std::string> names;
  for (const DTypePolicyInfo& p : DTypePolicies()) names.push_back(p.name);
  return names;
}

absl::StatusOr<DTypePolicyInfo> FindDTypePolicy(std::string_view name, std::string_view where) {
  for (const DTypePolicyInfo& p : DTypePolicies()) {
    if (p.name == name) return p;
  }
  std::string why;
  if (name == "bfloat16" || name == "float16" || name == "float64") {
    why = "; gradflow keeps variables in float32 (use a mixed policy)";
  } else if (name == "mixed_float16") {
    why = "; gradflow's CPU kernels have no float16 (use mixed_bfloat16)";
  }
  return absl::InvalidArgumentError(absl::StrCat(std::string(where), ": unknown dtype policy '", std::string(name),
                                                 "'; use one of ", absl::StrJoin(DTypePolicyNames(), ", "), why));
}

}  // namespace gradflow::nn
