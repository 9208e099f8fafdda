#ifndef GRADFLOW_NN_DTYPE_POLICY_H_
#define GRADFLOW_NN_DTYPE_POLICY_H_

// Keras's dtype policies (keras.DTypePolicy): the dtype a layer computes in.
// Variables are f32 under every policy gradflow runs.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace gradflow::nn {

struct DTypePolicyInfo {
  std::string name;  // Keras's: "float32", "mixed_bfloat16"
  DType compute;     // what layers that can (Layer::ComputesInBFloat16) multiply in
};

// Every policy gradflow runs, the default ("float32") first.
const std::vector<DTypePolicyInfo>& DTypePolicies();
std::vector<std::string> DTypePolicyNames();

// The policy called `name`, or an InvalidArgument for `where` that lists the
// names (and says why Keras's other policies are not run).
absl::StatusOr<DTypePolicyInfo> FindDTypePolicy(std::string_view name, std::string_view where);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_DTYPE_POLICY_H_
