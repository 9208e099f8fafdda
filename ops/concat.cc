#include "ops/concat.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// `axis` of a rank-`rank` tensor as an index in [0, rank), or -1.
int64_t NormalizedAxis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank ? axis : -1;
}

absl::Status InferConcat(InferContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.Error("needs at least one input");
  const Shape& first = ctx.shape(0);
  const int64_t axis = NormalizedAxis(ctx.node().attr<int64_t>("axis"), first.rank());
  if (axis < 0) {
    return ctx.Error(absl::StrCat("axis ", ctx.node().attr<int64_t>("axis"), " is out of range for ",
                                  ctx.Describe(0), "; use an axis in [-rank, rank)"));
  }
  std::vector<int64_t> dims = first.dims();
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
    const Shape& s = ctx.shape(i);
    bool same = s.rank() == first.rank() && s[axis] >= 0;
    for (int d = 0; same && d < s.rank(); ++d) same = d == axis || s[d] == first[d];
    if (!same) {
      return ctx.Error(absl::StrCat(ctx.Describe(i), " cannot be joined to ", ctx.Describe(0), " along axis ",
                                    axis, ": every other dimension must be equal and the axis known"));
    }
    if (i > 0) dims[axis] += s[axis];
  }
  ctx.AddOutput(DType::kF32, Shape(dims));
  return absl::OkStatus();
}

// Rows of the output: the product of the dimensions before the axis.
int64_t OuterSize(const Shape& shape, int64_t axis) {
  int64_t n = 1;
  for (int64_t d = 0; d < axis; ++d) n *= shape[d];
  return n;
}

// The elements from the axis on, of one "row".
int64_t InnerSize(const Shape& shape, int64_t axis) {
  int64_t n = 1;
  for (int64_t d = axis; d < shape.rank(); ++d) n *= shape[d];
  return n;
}

}  // namespace

// y = [x0 | x1 | ...] along the axis; dxi is dy's slice of xi's columns.
GF_REGISTER_OP(OpDef{
    .name = "Concat",
    .num_inputs = -1,
    .attrs = {RequiredAttr("axis", AttrType::kInt)},
    .infer = InferConcat,
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const Shape& out = k.out_shape(0);
      const int64_t axis = NormalizedAxis(k.node.attr<int64_t>("axis"), out.rank());
      const int64_t rows = OuterSize(out, axis), out_row = InnerSize(out, axis);
      std::vector<std::pair<const float*, int64_t>> parts;  // source, its row length
      for (size_t i = 0; i < k.inputs.size(); ++i) parts.push_back({k.in<float>(i), InnerSize(k.in_shape(i), axis)});
      float* dst = k.out<float>(0);
      return MakeKernel([parts, dst, rows, out_row](const RunContext&) {
#pragma omp parallel for schedule(static) if (rows * out_row > kParallelMin)
        for (int64_t r = 0; r < rows; ++r) {
          float* to = dst + r * out_row;
          for (const auto& [src, len] : parts) {
            std::memcpy(to, src + r * len, len * sizeof(float));
            to += len;
          }
        }
        return absl::OkStatus();
      });
    },
    .grad = [](GradContext& g) {
      const int64_t axis = NormalizedAxis(g.node.attr<int64_t>("axis"), g.x(0).shape().rank());
      std::vector<Output> dx;
      int64_t begin = 0;
      for (const Output& x : g.node.inputs) {
        dx.push_back(SliceAxis(g.scope, g.dy[0], axis, begin, x.shape()[axis]));
        begin += x.shape()[axis];
      }
      return dx;
    },
    .grad_checks = {{.inputs = {{.shape = {2, 3}}, {.shape = {2, 1}}, {.shape = {2, 2}}}, .attrs = {{"axis", int64_t{-1}}}},
                    {.inputs = {{.shape = {2, 3}}, {.shape = {1, 3}}}, .attrs = {{"axis", int64_t{0}}}}},
});

GF_REGISTER_OP(OpDef{
    .name = "SliceAxis",
    .num_inputs = 1,
    .attrs = {RequiredAttr("axis", AttrType::kInt), RequiredAttr("begin", AttrType::kInt).AtLeast(0),
              RequiredAttr("size", AttrType::kInt).AtLeast(0)},
    .infer = [](InferContext& ctx) {
      const int64_t axis = NormalizedAxis(ctx.node().attr<int64_t>("axis"), ctx.shape(0).rank());
      const int64_t begin = ctx.node().attr<int64_t>("begin"), size = ctx.node().attr<int64_t>("size");
      if (axis < 0 || ctx.shape(0)[axis] < 0 || begin + size > ctx.shape(0)[axis]) {
        return ctx.Error(absl::StrCat("cannot take [", begin, ", ", begin + size, ") of axis ",
                                      ctx.node().attr<int64_t>("axis"), " of ", ctx.Describe(0)));
      }
      std::vector<int64_t> dims = ctx.shape(0).dims();
      dims[axis] = size;
      ctx.AddOutput(ctx.dtype(0), Shape(dims));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      const Shape& in = k.in_shape(0);
      const int64_t axis = NormalizedAxis(k.node.attr<int64_t>("axis"), in.rank());
      const int64_t rows = OuterSize(in, axis), in_row = InnerSize(in, axis);
      const int64_t out_row = InnerSize(k.out_shape(0), axis);
      const int64_t offset = k.node.attr<int64_t>("begin") * (axis + 1 < in.rank() ? InnerSize(in, axis + 1) : 1);
      const size_t elem = SizeOf(k.input_types[0].dtype);
      const auto* src = static_cast<const uint8_t*>(k.inputs[0]);
      auto* dst = k.out<uint8_t>(0);
      return MakeKernel([=](const RunContext&) {
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(dst + r * out_row * elem, src + (r * in_row + offset) * elem, out_row * elem);
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "used only as Concat's gradient; gradflow computes no second-order gradients",
});

Output Concat(const Scope& scope, std::vector<Output> xs, int64_t axis) {
  return scope.graph().AddNode1(scope, "Concat", std::move(xs), {{"axis", axis}});
}

Output SliceAxis(const Scope& scope, Output x, int64_t axis, int64_t begin, int64_t size) {
  return scope.graph().AddNode1(scope, "SliceAxis", {x}, {{"axis", axis}, {"begin", begin}, {"size", size}});
}

}  // namespace gradflow::ops
