#include "optimizers/constraints.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "graph/op_registry.h"
#include "ops/op_util.h"

namespace gradflow::optimizers {
namespace {

using ops::kParallelMin;
// Columns (norms) one work item handles: their sums stay in L1.
constexpr int64_t kBlock = 256;

// `axis` of a rank-`rank` tensor as a non-negative index, or -1 if out of range.
int NormalizeAxis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < std::max(rank, 1) ? static_cast<int>(axis) : -1;
}

// Rescales `columns` consecutive columns of a [length, stride] row-major slab
// so each column's L2 norm n becomes n * min(n, max_value) / (epsilon + n).
// Sums run row by row (contiguous reads, vectorized over the columns) in
// double, in a fixed order.
void MaxNormColumns(float* __restrict slab, int64_t length, int64_t stride, int64_t columns,
                    double max_value) {
  double square_sum[kBlock] = {};
  for (int64_t i = 0; i < length; ++i) {
    const float* row = slab + i * stride;
#pragma omp simd
    for (int64_t j = 0; j < columns; ++j) square_sum[j] += double(row[j]) * row[j];
  }
  float factor[kBlock];
  for (int64_t j = 0; j < columns; ++j) {
    const double norm = std::sqrt(square_sum[j]);
    factor[j] = static_cast<float>(std::min(norm, max_value) / (kMaxNormEpsilon + norm));
  }
  for (int64_t i = 0; i < length; ++i) {
    float* row = slab + i * stride;
#pragma omp simd
    for (int64_t j = 0; j < columns; ++j) row[j] *= factor[j];
  }
}

}  // namespace

// w <- w * min(n, max_value) / (epsilon + n) with n = ||w||_2 over `axis`
// (Keras MaxNorm.__call__). The tensor is seen as [outer, axis, inner]; each
// (outer, inner) pair has one norm, summed serially in double, so the result
// does not depend on the thread count.
GF_REGISTER_OP(OpDef{
    .name = "ApplyMaxNorm",
    .num_inputs = 1,  // the variable
    .attrs = {RequiredAttr("max_value", AttrType::kFloat).Above(0), RequiredAttr("axis", AttrType::kInt)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      const int64_t axis = ctx.node().attr<int64_t>("axis");
      if (NormalizeAxis(axis, ctx.shape(0).rank()) < 0) {
        return ctx.Error(absl::StrCat("axis ", axis, " is out of range for ", ctx.Describe(0)));
      }
      return absl::OkStatus();  // no outputs: the op rescales its variable in place
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      float* w = k.in<float>(0);
      const Shape& shape = k.in_shape(0);
      const int axis = NormalizeAxis(k.node.attr<int64_t>("axis"), shape.rank());
      int64_t outer = 1, length = 1, inner = 1;
      for (int d = 0; d < shape.rank(); ++d) (d < axis ? outer : d == axis ? length : inner) *= shape[d];
      const double max_value = k.node.attr<double>("max_value");
      const int64_t n = outer * length * inner;
      const int64_t blocks = (inner + kBlock - 1) / kBlock;
      return ops::MakeKernel([=](const RunContext&) {
        // Work item t: the norms of columns [j0, j1) of slab o, accumulated
        // row by row (contiguous reads), then applied row by row.
#pragma omp parallel for schedule(static) if (n > kParallelMin)
        for (int64_t t = 0; t < outer * blocks; ++t) {
          const int64_t o = t / blocks, j0 = (t % blocks) * kBlock;
          MaxNormColumns(w + o * length * inner + j0, length, inner, std::min(kBlock, inner - j0), max_value);
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: rescales a variable after its update, produces no value",
    .mutates_input = 0,
});

void SetConstraint(Output var, const MaxNorm& constraint) {
  if (!var.valid()) return;  // an earlier builder failed; its error is kept
  Graph& graph = *var.node->graph;
  const std::string where = absl::StrCat("SetConstraint: '", var.name(), "'");
  if (var.node->op->source != SourceKind::kVariable) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        where, " is a ", var.node->op_name(), " node; a constraint attaches to a variable")));
    return;
  }
  if (!(constraint.max_value > 0) || !std::isfinite(constraint.max_value)) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        where, ": MaxNorm max_value must be a finite number > 0, got ", constraint.max_value)));
    return;
  }
  if (NormalizeAxis(constraint.axis, var.shape().rank()) < 0) {
    graph.RecordError(absl::InvalidArgumentError(absl::StrCat(
        where, ": MaxNorm axis ", constraint.axis, " is out of range for a variable of shape ",
        var.shape().ToString())));
    return;
  }
  var.node->attrs["max_norm"] = constraint.max_value;
  var.node->attrs["max_norm_axis"] = int64_t{constraint.axis};
}

Node* AddConstraint(Graph& graph, Output var, Node* after) {
  if (after == nullptr || !var.node->has_attr("max_norm")) return after;
  return graph.NewNode(Scope(graph, var.node->name), "ApplyMaxNorm", {var},
                       {{"max_value", var.node->attr<double>("max_norm")},
                        {"axis", var.node->attr<int64_t>("max_norm_axis")}},
                       "max_norm", {after});
}

}  // namespace gradflow::optimizers
