#ifndef GRADFLOW_NN_VALIDATION_H_
#define GRADFLOW_NN_VALIDATION_H_

// Checks of user-given names and of values the model stores, shared by
// Compile, SetLearningRate, Save and LoadModel so that what one accepts the
// others accept too ("a model that could not be loaded back is never saved").

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "graph/graph.h"
#include "nn/layers.h"

namespace gradflow::nn {

// The longest model or layer name, in bytes (the model config's limit).
inline constexpr size_t kMaxNameBytes = 256;

// A model or layer name must be valid UTF-8 of printable characters (no
// C0/C1 controls, no DEL: a newline would forge Summary lines) and at most
// kMaxNameBytes. Layer names prefix variable names, so they may not contain
// '/' or ':' either. `what` names the thing in the error ("model name").
absl::Status ValidateModelName(std::string_view name);
absl::Status ValidateLayerName(std::string_view name);

// A learning rate is validated as the f32 it is stored in: finite, > 0, and
// not so small or so large that the f32 becomes 0, a subnormal or inf.
absl::Status CheckLearningRate(double rate);

// An optimizer variable read from a file (LoadModel): the learning rate as
// above, the step counter a non-negative i64 scalar below kMaxGlobalStep,
// every f32 slot finite. The error names the tensor.
inline constexpr int64_t kMaxGlobalStep = int64_t{1} << 53;  // exact in a double
absl::Status CheckOptimizerState(std::string_view name, const Tensor& value);

// LoadModel's rule for a file tensor: "<layer>/<weight>" with no further '/'
// is that layer's weight; everything else is optimizer state. Returns the
// layer name, or "" for optimizer state.
std::string_view LayerOfTensor(std::string_view tensor, const std::vector<std::string>& layer_names);

// Refuses a model whose variables LoadModel would misfile: an optimizer
// variable that the rule above hands to a layer (a layer named "optimizer"
// takes "optimizer/learning_rate"). `layers` are built into `graph`.
absl::Status CheckVariablesLoadable(const Graph& graph, const std::vector<LayerPtr>& layers);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_VALIDATION_H_
