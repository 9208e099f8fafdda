#ifndef GRADFLOW_OPS_DENSE_H_
#define GRADFLOW_OPS_DENSE_H_

// Matrix products and the fully connected (Dense) op, on oneDNN's matmul and
// inner_product primitives.

#include <optional>
#include <string>

#include "graph/graph.h"

namespace gradflow::ops {

// y = op(a) · op(b) for rank-2 f32 a and b, op(m) = mᵀ when its transpose flag
// is set. a [M, K] (or [K, M] transposed), b [K, N] (or [N, K]) -> y [M, N].
Output MatMul(const Scope& scope, Output a, Output b, bool transpose_a = false,
              bool transpose_b = false);

// y = x + b, with b [M] added to every row of x [N, M] (x of rank >= 2: b runs
// along the last axis).
Output BiasAdd(const Scope& scope, Output x, Output bias);

// An activation fused into the Dense primitive as a oneDNN eltwise post-op.
// `name` is a Keras name for which ops::IsFusableActivation holds (today
// "relu" (alpha = negative slope, >= 0), "elu" (alpha, >= 0), "tanh",
// "sigmoid"); empty = none. Only activations whose derivative
// can be computed from their output are offered, so the gradient reuses y
// instead of recomputing the pre-activation. An unset alpha takes Keras's
// default (ops::FusedActivationOf): 1.0 for elu, 0 otherwise.
struct FusedActivation {
  std::string name;
  std::optional<double> alpha;
  double beta = 0;
};

// The fully connected op: y = act(x · kernel + bias) for x [N, in], kernel
// [in, out] (Keras's layout) and bias [out]; pass an invalid Output as `bias`
// for none. Creates no variables: nn::Dense owns those. x must be rank 2
// (flatten first).
//
// compute_dtype kBF16 (Keras's mixed_bfloat16) casts x and kernel to bf16
// (ops::Cast; a bf16 input is used as it is) and multiplies them in bf16
// with f32 accumulation: y stays f32, and so do the gradients of x and
// kernel. Pass a kernel already cast once (ops::Cast) when several Dense
// nodes share it, so the step makes one bf16 copy. Needs a CPU with bf16
// (the plan's error names the ISA).
Output Dense(const Scope& scope, Output x, Output kernel, Output bias = Output{},
             const FusedActivation& activation = {}, DType compute_dtype = DType::kF32);

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_DENSE_H_
