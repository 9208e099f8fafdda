#ifndef GRADFLOW_NN_ACTIVATION_LAYERS_H_
#define GRADFLOW_NN_ACTIVATION_LAYERS_H_

// Keras-style standalone activation layers with parameters: LeakyReLU, ELU,
// PReLU (a learned slope), and RReLU (randomized slope; not in Keras, after
// Xu et al. 2015 / PyTorch). Parameterless activations are
// nn::Activation("relu"), nn::Activation("hard_sigmoid"), ...

#include <optional>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "ops/rrelu.h"

namespace gradflow::nn {

// Keras's layers.LeakyReLU default, 0.3 in Keras 3 too (the ops::LeakyRelu
// builder and the "leaky_relu" activation name use Keras 3's
// activations.leaky_relu default 0.2; see ops/activations.h).
inline constexpr double kLeakyReLULayerDefaultAlpha = 0.3;

// y = x (x > 0), alpha x (x <= 0). Keras: LeakyReLU(alpha=0.3).
LayerPtr LeakyReLU(double alpha = kLeakyReLULayerDefaultAlpha);

// Keras's ReLU layer (max_value None, threshold 0): max(x, 0), or
// negative_slope * x below 0.
LayerPtr ReLU(double negative_slope = 0);
// Keras's Softmax layer (axis -1).
LayerPtr Softmax();

// Keras's layers.ELU default.
inline constexpr double kELULayerDefaultAlpha = 1.0;

// y = x (x > 0), alpha (exp(x) - 1) (x <= 0). Keras: ELU(alpha=1.0).
LayerPtr ELU(double alpha = kELULayerDefaultAlpha);

struct PReLUOptions {
  InitializerOption alpha_initializer = Zeros();  // Keras default: starts as a ReLU
  // Axes (1-based over the input with its batch dim, as Keras) along which
  // one slope is shared: {1, 2} for [N, H, W, C] gives one slope per channel.
  std::vector<int> shared_axes;
  std::string name;
  std::optional<Shape> input_shape;
};

// y = x (x > 0), alpha x (x <= 0) with a learned alpha of the input's shape
// without the batch dim (1 along shared axes): variable "<layer>/alpha".
LayerPtr PReLU(PReLUOptions options = {});

// Randomized leaky ReLU: a slope drawn per element from U[lower, upper] in
// training plans, (lower + upper) / 2 in inference plans (ops/rrelu.h).
LayerPtr RReLU(double lower = ops::kRReluDefaultLower, double upper = ops::kRReluDefaultUpper);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_ACTIVATION_LAYERS_H_
