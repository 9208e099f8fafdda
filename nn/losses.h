#ifndef GRADFLOW_NN_LOSSES_H_
#define GRADFLOW_NN_LOSSES_H_

// The losses Model::Compile accepts by Keras name: each is one
// registration in nn/losses.cc (its loss class, short aliases and accuracy
// metric; its canonical name and targets derive from the class). Compile's
// look-ups, LossNames() and every "unknown loss" message read these
// registrations; nothing else lists them. Metrics: nn/metrics.h.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "ops/losses.h"

namespace gradflow::nn {

struct LossInfo {
  // Keras 3 names: the snake_case alias of the loss class (KerasAlias of
  // config's kName: "mean_squared_error"), the class name
  // ("MeanSquaredError"), then Keras's short aliases ("mse", "MSE"). The
  // first is the canonical one.
  std::vector<std::string> names;
  // The loss object the names mean: that class with Keras 3's defaults
  // (ops/losses.h).
  losses::Loss config;
  // true: the targets are i32 class indices [batch]; false: f32 of the
  // model output's shape (derived from config).
  bool class_index_targets = false;
  // The metric Keras means by "accuracy" with this loss.
  std::string accuracy;
};

// The loss node of `output` against `targets` for `config`. `softmax_logits`
// is valid when output = softmax(softmax_logits) (Layer::softmax_logits()):
// the sparse and categorical cross-entropies from probabilities then compute
// from the logits (Keras does; more stable, same value). Binary cross-entropy
// keeps the probabilities, as Keras's does.
Output BuildLoss(const Scope& scope, const losses::Loss& config, Output targets, Output output,
                 Output softmax_logits);
// The registration of the loss class `config` holds.
const LossInfo& LossInfoOf(const losses::Loss& config);

// The loss with that Keras name; an InvalidArgument error listing every
// valid name otherwise.
absl::StatusOr<const LossInfo*> FindLoss(std::string_view name);
// Every registered loss, in registration order.
const std::vector<LossInfo>& Losses();
// Every accepted name (aliases included), for messages and tests.
std::vector<std::string> LossNames();

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_LOSSES_H_
