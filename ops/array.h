#ifndef GRADFLOW_OPS_ARRAY_H_
#define GRADFLOW_OPS_ARRAY_H_

// Sources (placeholders, constants, variables) and ops that move or fill data
// without arithmetic.

#include <string_view>
#include <vector>

#include "core/initializers.h"
#include "graph/graph.h"

namespace gradflow::ops {

// A value fed at run time. Dim 0 may be -1 (any batch size).
Output Placeholder(const Scope& scope, std::string_view name, DType dtype, Shape shape);
Output Constant(const Scope& scope, Tensor value, std::string_view name = "Const");
Output Scalar(const Scope& scope, float value);
// A variable named scope/name, initialized once by `init` when first compiled.
Output Variable(const Scope& scope, std::string_view name, Shape shape, Initializer init,
                bool trainable = true, DType dtype = DType::kF32);
Output OnesLike(const Scope& scope, Output x);
Output ZerosLike(const Scope& scope, Output x);
Output AddN(const Scope& scope, std::vector<Output> xs);
Output Identity(const Scope& scope, Output x);
Output StopGradient(const Scope& scope, Output x);
// Reshape to `shape`; one dimension may be -1 (inferred from the element count).
Output Reshape(const Scope& scope, Output x, Shape shape);
// Reshape x to the shape of `like` (used by gradients: shapes known at compile time).
Output ReshapeLike(const Scope& scope, Output x, Output like);
// [batch, d1, d2, ...] -> [batch, d1*d2*...].
Output Flatten(const Scope& scope, Output x);
Output Cast(const Scope& scope, Output x, DType to);
// A node that does nothing but run `deps` first: the handle of a train step.
Output Group(const Scope& scope, std::vector<Node*> deps, std::string_view name = "group");

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_ARRAY_H_
