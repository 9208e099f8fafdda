#ifndef GRADFLOW_OPS_ACTIVATIONS_H_
#define GRADFLOW_OPS_ACTIVATIONS_H_

// Elementwise activation functions (Keras semantics), one table-driven family
// on oneDNN's eltwise_forward / eltwise_backward. Each activation is its own
// op ("Sigmoid", "Relu", ...); every gradient is one generic "EltwiseGrad" op
// whose attr "activation" names the forward op it differentiates.
//
// Softmax / LogSoftmax live in ops/softmax.h; Activation(scope, x, "softmax")
// maps to them.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/graph.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace gradflow::ops {

// SELU constants of Klambauer, Unterthiner, Mayr & Hochreiter, "Self-Normalizing
// Neural Networks" (NeurIPS 2017), eq. 14 — the same literals as Keras's
// activations.selu and TensorFlow's tf.nn.selu. With them, a standard normal
// input keeps mean 0 and variance 1 through selu (a fixed point).
inline constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
inline constexpr double kSeluScale = 1.0507009873554804934193349852946;

// Leaky ReLU slope for x < 0: Keras 3's activations.leaky_relu
// negative_slope (also tf.nn.leaky_relu's), used by the "leaky_relu" name and
// the builder. Keras's layers.LeakyReLU keeps 0.3 (nn::LeakyReLU); the
// chapter's "small leak" of Maas et al. (2013) is 0.01, which gradflow used
// before Keras 3's default: pass it explicitly.
inline constexpr double kLeakyReluDefaultAlpha = 0.2;
// Keras's activations.elu / layers.ELU default alpha.
inline constexpr double kEluDefaultAlpha = 1.0;

// sigmoid(x) = 1 / (1 + exp(-x)).
Output Sigmoid(const Scope& scope, Output x);
Output Tanh(const Scope& scope, Output x);
// max(x, 0).
Output Relu(const Scope& scope, Output x);
// x if x > 0 else alpha * x.
Output LeakyRelu(const Scope& scope, Output x, double alpha = kLeakyReluDefaultAlpha);
// x if x > 0 else alpha * (exp(x) - 1).
Output Elu(const Scope& scope, Output x, double alpha = kEluDefaultAlpha);
// kSeluScale * elu(x, kSeluAlpha).
Output Selu(const Scope& scope, Output x);
// x * Phi(x) (Phi: the standard normal CDF, via erf): Keras's default
// approximate=False. approximate=true uses the tanh form
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Output Gelu(const Scope& scope, Output x, bool approximate = false);
// x * sigmoid(x): Keras 3's silu ("swish" is its alias, serialized as "silu").
Output Silu(const Scope& scope, Output x);
Output Swish(const Scope& scope, Output x);  // = Silu
// log(1 + exp(x)).
Output Softplus(const Scope& scope, Output x);

// Every activation is one row of the table in activations.cc (its Keras
// name, op, oneDNN mapping, attrs, gradient checks and Dense fusion); the
// functions below are all read from it. Every activation keeps NaN.

// The activation called `name` in Keras ("relu", "elu", "selu", "softmax",
// ...; "linear" and "" are the identity and return x itself), with Keras's
// default arguments. An unknown name records an InvalidArgument error listing
// the valid names in scope.graph() and returns an invalid Output.
Output Activation(const Scope& scope, Output x, std::string_view name);
// The names Activation accepts, aliases included, in a stable order ("" excluded).
std::vector<std::string> ActivationNames();
// The Keras 3 name of the activation `name` means ("silu" for "swish");
// `name` itself if it is not an activation name.
std::string CanonicalActivationName(std::string_view name);
// The op Activation(name) builds ("Relu"); "" for "linear" and unknown names.
std::string ActivationOpName(std::string_view name);

// Activations ops::Dense can fuse as a oneDNN post-op (their derivative comes
// from the output y, and the post-op keeps NaN): "relu", "elu", "tanh", "sigmoid".
bool IsFusableActivation(std::string_view name);
std::vector<std::string> FusableActivationNames();
// How Dense computes a fused activation: the post-op algorithm with `alpha`
// (Keras's default for the activation when unset) and the algorithm of its
// derivative from y. nullopt if `name` is not fusable.
struct FusedEltwise {
  dnnl::algorithm forward;
  dnnl::algorithm backward_from_dst;
  double alpha;
};
std::optional<FusedEltwise> FusedActivationOf(std::string_view name, std::optional<double> alpha = std::nullopt);

// For a fusion pass: the single oneDNN eltwise algorithm (with alpha, beta)
// that computes `node`, an activation node built by this file (forward
// algorithms only, e.g. eltwise_logistic for "Sigmoid"). nullopt for any other
// node and for "Selu", which takes two algorithms (elu, then linear).
std::optional<std::pair<dnnl::algorithm, std::pair<float, float>>> EltwiseAlgorithmOf(
    const Node& node);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_ACTIVATIONS_H_
