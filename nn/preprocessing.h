#ifndef GRADFLOW_NN_PREPROCESSING_H_
#define GRADFLOW_NN_PREPROCESSING_H_

// Keras 3's Normalization preprocessing layer
// (keras/src/layers/preprocessing/normalization.py): standardizes each
// feature (the last axis) with a mean and variance given up front or
// computed from data by Adapt.
//
//   auto norm = nn::Normalization();
//   absl::Status s = norm->Adapt(x_train);        // per-feature mean and variance, input_shape
//   nn::Sequential model({norm, nn::Dense(30, {.activation = "relu"}), nn::Dense(1)});
//
// Output: (x - mean) / max(sqrt(variance), kKerasEpsilon), Keras's formula
// (a constant feature becomes 0, not NaN); with `invert`,
// mean + x * max(sqrt(variance), kKerasEpsilon), which undoes it.
//
// Weights, as Keras 3: without a given mean and variance the layer has three
// non-trainable weights, "mean" and "variance" ([features], f32, initialized
// to 0 and 1 as Keras's build does, so a layer that was never adapted is the
// identity) and "count" (an i64 scalar Keras 3 keeps only for older files;
// Adapt sets it to the number of values per feature, as tf.keras 2.x did).
// With a given mean and variance it has no weights (they are constants
// written in the config), as in Keras.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "nn/layer_registry.h"
#include "nn/layers.h"

namespace gradflow::nn {

struct NormalizationOptions {
  // The feature axis: gradflow keeps one mean and variance per index of the
  // last axis (-1, or its index). Keras's axis=None and several axes are
  // not supported.
  int axis = -1;
  // Given up front (Keras's mean= and variance=, both or neither): one value
  // for every feature or one per feature. Variances must be >= 0.
  std::optional<std::vector<double>> mean;
  std::optional<std::vector<double>> variance;
  bool invert = false;
  std::string name;  // "" = normalization, normalization_1, ...
  std::optional<Shape> input_shape;
};

class NormalizationLayer : public BuiltinLayer<NormalizationLayer> {
 public:
  static constexpr char kClassName[] = "Normalization";
  static constexpr char kExampleConfig[] = R"({"mean": 0.5, "variance": 4.0})";
  explicit NormalizationLayer(NormalizationOptions options);
  nlohmann::json Config() const override;
  static LayerPtr FromConfig(ConfigReader& r);

  // Keras's adapt(x): the mean and population variance (ddof 0) of each
  // feature over every other axis of x ([samples, ..., features]), stored as
  // the layer's weights (Layer::SetWeights): before Compile they are kept
  // for it, after Compile every model holding the layer sees them at once.
  // A layer without an input_shape takes x's (without dim 0), as Keras's
  // adapt builds the layer, so it can start a model. Errors: a mean and variance given up front, x without samples or
  // features, a feature count other than the layer's input, NaN or infinity
  // in x.
  absl::Status Adapt(const Tensor& x);

  const NormalizationOptions& options() const { return options_; }

 protected:
  Output Build(const Scope& scope, Output x) override;

 private:
  std::string AdaptWho() const;  // "Adapt: Normalization layer 'name'"
  absl::Status CheckAdaptable(const Tensor& x) const;
  // The statistics as graph values: constants or the layer's variables.
  std::pair<Output, Output> Statistics(const Scope& scope, int64_t features);

  NormalizationOptions options_;
};

std::shared_ptr<NormalizationLayer> Normalization(NormalizationOptions options = {});

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_PREPROCESSING_H_
