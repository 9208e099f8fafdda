#ifndef GRADFLOW_NN_DIAGNOSTICS_H_
#define GRADFLOW_NN_DIAGNOSTICS_H_

// Per-layer statistics of one batch, to see vanishing or exploding
// gradients: for every layer of a compiled Sequential model, the mean and
// standard deviation of its output (activations) and the L2 norms of the
// loss gradient with respect to its output and to its kernel.
//
//   nn::GradientDiagnostics probe(model);
//   auto stats = probe.Run(x_batch, y_batch);     // StatusOr<BatchDiagnostics>
//   std::cout << stats->ToString();
//
// The probe adds gradient nodes for every layer output and kernel to the
// model's graph once, and fetches them with a Phase::kTrain plan (batch
// norm uses batch statistics, dropout drops, as in a training step) that
// updates nothing. If the model is recompiled, the next Run rebuilds it.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "graph/session.h"
#include "nn/model.h"

namespace gradflow::nn {

struct LayerStatistics {
  std::string name;  // "dense_3"
  std::string type;  // "Dense"
  double activation_mean = 0;
  double activation_std = 0;  // population stddev over every element of the batch output
  // ||dL/d output||; nullopt when the loss does not depend on the output
  // (a softmax output layer: the loss is computed from its logits).
  std::optional<double> output_gradient_norm;
  // ||dL/d kernel||; nullopt for layers without a "kernel" variable.
  std::optional<double> kernel_gradient_norm;
};

struct BatchDiagnostics {
  double loss = 0;
  std::vector<LayerStatistics> layers;  // in model order
  // A table: layer, act mean, act std, |dL/dout|, |dL/dW|.
  std::string ToString() const;
};

class GradientDiagnostics {
 public:
  explicit GradientDiagnostics(Model& model) : model_(model) {}
  // Statistics for one batch (x, y shaped like Fit's). Errors: the model is
  // not compiled, or the batch does not match its placeholders.
  absl::StatusOr<BatchDiagnostics> Run(const Tensor& x, const Tensor& y);

 private:
  absl::Status Build();

  // Whether the plan belongs to the model's current graph: a recompiled
  // model has a new graph, which lacks the probe's gradient nodes.
  bool IsCurrent() const;

  Model& model_;
  const Graph* built_for_ = nullptr;
  const Node* probe_node_ = nullptr;  // a gradient node Build added, and its name
  std::string probe_node_name_;
  std::optional<Plan> plan_;
  // Fetch layout: loss, then per layer its output, then each present gradient.
  struct LayerFetches {
    int output = -1, output_gradient = -1, kernel_gradient = -1;
  };
  std::vector<LayerFetches> fetches_;
  std::vector<Tensor> fetched_;
};

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_DIAGNOSTICS_H_
