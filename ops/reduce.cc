#include "ops/reduce.h"

// Reductions are plain OpenMP loops, not oneDNN's `reduction` primitive:
// oneDNN 2.6 runs a reference (non-JIT) kernel for it on this CPU, measured
// up to 2.7x slower per training step (BUILDING.md). The loops are
// deterministic: work is split over output elements (and fixed-size blocks),
// and every output element sums its inputs serially in one fixed order, so
// the result never depends on the thread count.

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "ops/array.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// Merged dimensions a reduction walks (runs of kept / reduced dims merge, so
// this bounds the number of runs, not the tensor rank).
constexpr int kMaxRuns = 16;
// Output elements along a contiguous kept dimension handled by one work item:
// their accumulators stay in registers / L1 while the reduced dims stream by.
constexpr int64_t kBlock = 256;

// ---------------------------------------------------------------- walking plan

// How a reduction from a "big" shape to a "small" shape (small broadcasts to
// big, numpy rules) walks memory. Dims of size 1 in big are dropped; the rest
// merge into runs of consecutive dims that are all kept (small has the same
// size there) or all reduced (small has 1). Output element o is the row-major
// index over the kept runs, which is exactly the small tensor's layout.
struct ReducePlan {
  std::vector<int64_t> kept_size, kept_stride;  // outermost first; big strides
  std::vector<int64_t> red_size, red_stride;
  int64_t out_count = 1;    // elements of small
  int64_t red_count = 1;    // big elements per small element
  bool inner_kept = false;  // the innermost (stride-1) run is kept
};

absl::StatusOr<ReducePlan> MakeReducePlan(const Shape& big, const Shape& small) {
  const int rank = big.rank(), offset = big.rank() - small.rank();
  if (offset < 0) {
    return absl::InternalError(absl::StrCat("reduce plan: ", small.ToString(), " does not broadcast to ",
                                            big.ToString()));
  }
  std::vector<int64_t> stride(rank, 1);
  for (int i = rank - 2; i >= 0; --i) stride[i] = stride[i + 1] * big[i + 1];
  ReducePlan p;
  struct Run {
    bool reduced;
    int64_t size, stride;
  };
  std::vector<Run> runs;
  for (int i = 0; i < rank; ++i) {
    const int64_t b = big[i], s = i < offset ? 1 : small[i - offset];
    if (s != b && s != 1) {
      return absl::InternalError(absl::StrCat("reduce plan: ", small.ToString(), " does not broadcast to ",
                                              big.ToString()));
    }
    if (b == 1) continue;
    const bool reduced = s == 1;
    if (!runs.empty() && runs.back().reduced == reduced) {
      runs.back().size *= b;  // row-major: the outer dim's stride is inner stride * inner size
      runs.back().stride = stride[i];
    } else {
      runs.push_back({reduced, b, stride[i]});
    }
  }
  if (static_cast<int>(runs.size()) > kMaxRuns) {
    return absl::UnimplementedError(absl::StrCat("reduction from ", big.ToString(), " to ", small.ToString(),
                                                 " alternates kept and reduced dims more than ", kMaxRuns,
                                                 " times"));
  }
  for (const Run& r : runs) {
    (r.reduced ? p.red_size : p.kept_size).push_back(r.size);
    (r.reduced ? p.red_stride : p.kept_stride).push_back(r.stride);
    (r.reduced ? p.red_count : p.out_count) *= r.size;
  }
  p.inner_kept = !runs.empty() && !runs.back().reduced;
  return p;
}

// Offsets of a row-major walk over (size, stride) dims, one step at a time.
class Walk {
 public:
  Walk(const std::vector<int64_t>& size, const std::vector<int64_t>& stride, int n)
      : size_(size.data()), stride_(stride.data()), n_(n) {}
  int64_t offset() const { return offset_; }
  void Next() {
    for (int d = n_ - 1; d >= 0; --d) {
      offset_ += stride_[d];
      if (++index_[d] < size_[d]) return;
      offset_ -= stride_[d] * size_[d];
      index_[d] = 0;
    }
  }

 private:
  const int64_t* size_;
  const int64_t* stride_;
  int n_;
  int64_t offset_ = 0;
  std::array<int64_t, kMaxRuns> index_{};
};

// Big-tensor offset of output element o over the first n kept runs.
int64_t KeptOffset(const ReducePlan& p, int64_t o, int n) {
  int64_t offset = 0;
  for (int d = n - 1; d >= 0; --d) {
    offset += (o % p.kept_size[d]) * p.kept_stride[d];
    o /= p.kept_size[d];
  }
  return offset;
}

// ---------------------------------------------------------------- reduce loops

struct SumOp {
  static float Init() { return 0.0f; }
  static float Combine(float a, float b) { return a + b; }
  static float Inner(const float* src, int64_t n) {
    float t = 0.0f;
#pragma omp simd reduction(+ : t)
    for (int64_t i = 0; i < n; ++i) t += src[i];
    return t;
  }
};

// NaNs are not propagated (comparisons with NaN are false).
struct MaxOp {
  static float Init() { return -std::numeric_limits<float>::infinity(); }
  static float Combine(float a, float b) { return b > a ? b : a; }
  static float Inner(const float* src, int64_t n) {
    float t = Init();
#pragma omp simd reduction(max : t)
    for (int64_t i = 0; i < n; ++i) t = src[i] > t ? src[i] : t;
    return t;
  }
};

// dst[o] = reduce over the reduced dims of src (divided by the count if mean).
// `scratch` holds the chunk partials of a long full reduction.
template <typename Op>
void ReduceLoop(const ReducePlan& p, const float* src, float* dst, bool mean, std::vector<float>& scratch) {
  const float count = static_cast<float>(p.red_count);
  auto finish = [&](float acc) { return mean ? acc / count : acc; };
  const int nk = static_cast<int>(p.kept_size.size()), nr = static_cast<int>(p.red_size.size());
  const bool parallel = p.out_count * p.red_count > kParallelMin;
  if (p.out_count == 0) return;
  if (p.red_count == 0) {  // empty reduction: 0 (sum), NaN (mean), -inf (max)
    std::fill(dst, dst + p.out_count, finish(Op::Init()));
    return;
  }
  if (nr == 0) {  // nothing to reduce (every reduced dim has size 1)
    for (int64_t o = 0; o < p.out_count; ++o) dst[o] = finish(src[o]);
    return;
  }

  if (p.inner_kept) {
    // Innermost run kept: a block of contiguous outputs accumulates each
    // reduced position in turn (vectorizes across the block).
    const int64_t inner = p.kept_size[nk - 1], blocks = (inner + kBlock - 1) / kBlock;
    const int64_t items = (p.out_count / inner) * blocks;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t o = item / blocks, k0 = (item % blocks) * kBlock, n = std::min(kBlock, inner - k0);
      const float* base = src + KeptOffset(p, o, nk - 1) + k0;
      float acc[kBlock];
      std::fill(acc, acc + n, Op::Init());
      Walk walk(p.red_size, p.red_stride, nr);
      for (int64_t r = 0; r < p.red_count; ++r, walk.Next()) {
        const float* s = base + walk.offset();
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) acc[k] = Op::Combine(acc[k], s[k]);
      }
      float* d = dst + o * inner + k0;
      for (int64_t k = 0; k < n; ++k) d[k] = finish(acc[k]);
    }
    return;
  }

  // Innermost run reduced and contiguous: each output reduces runs of `inner`.
  const int64_t inner = p.red_size[nr - 1], outer = p.red_count / inner;
  if (p.out_count == 1 && nr == 1 && inner > kSumChunk) {
    const int64_t chunks = (inner + kSumChunk - 1) / kSumChunk;
    scratch.resize(chunks);
    float* partial = scratch.data();
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t c = 0; c < chunks; ++c) {
      partial[c] = Op::Inner(src + c * kSumChunk, std::min(kSumChunk, inner - c * kSumChunk));
    }
    float acc = Op::Init();
    for (int64_t c = 0; c < chunks; ++c) acc = Op::Combine(acc, partial[c]);
    dst[0] = finish(acc);
    return;
  }
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t o = 0; o < p.out_count; ++o) {
    const float* base = src + KeptOffset(p, o, nk);
    float acc = Op::Init();
    Walk walk(p.red_size, p.red_stride, nr - 1);
    for (int64_t r = 0; r < outer; ++r, walk.Next()) acc = Op::Combine(acc, Op::Inner(base + walk.offset(), inner));
    dst[o] = finish(acc);
  }
}

// dst (big) = src (small) broadcast, divided by the repeat count if `mean`.
void BroadcastLoop(const ReducePlan& p, const float* src, float* dst, bool mean) {
  const float count = static_cast<float>(p.red_count);
  const int nk = static_cast<int>(p.kept_size.size()), nr = static_cast<int>(p.red_size.size());
  const bool parallel = p.out_count * p.red_count > kParallelMin;
  if (p.out_count == 0 || p.red_count == 0) return;
  if (nr == 0) {  // nothing to repeat
    for (int64_t o = 0; o < p.out_count; ++o) dst[o] = mean ? src[o] / count : src[o];
    return;
  }
  if (p.inner_kept) {
    const int64_t inner = p.kept_size[nk - 1], blocks = (inner + kBlock - 1) / kBlock;
    const int64_t items = (p.out_count / inner) * blocks;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t o = item / blocks, k0 = (item % blocks) * kBlock, n = std::min(kBlock, inner - k0);
      float* base = dst + KeptOffset(p, o, nk - 1) + k0;
      const float* s = src + o * inner + k0;
      Walk walk(p.red_size, p.red_stride, nr);
      for (int64_t r = 0; r < p.red_count; ++r, walk.Next()) {
        float* d = base + walk.offset();
        if (mean) {
#pragma omp simd
          for (int64_t k = 0; k < n; ++k) d[k] = s[k] / count;
        } else {
#pragma omp simd
          for (int64_t k = 0; k < n; ++k) d[k] = s[k];
        }
      }
    }
    return;
  }
  const int64_t inner = p.red_size[nr - 1], outer = p.red_count / inner;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t o = 0; o < p.out_count; ++o) {
    float* base = dst + KeptOffset(p, o, nk);
    const float v = mean ? src[o] / count : src[o];
    Walk walk(p.red_size, p.red_stride, nr - 1);
    for (int64_t r = 0; r < outer; ++r, walk.Next()) std::fill_n(base + walk.offset(), inner, v);
  }
}

// dx (big) = dy[o] / (number of maxima) at the positions where x equals its
// maximum y[o], 0 elsewhere.
void MaxGradLoop(const ReducePlan& p, const float* x, const float* y, const float* dy, float* dx) {
  const int nk = static_cast<int>(p.kept_size.size()), nr = static_cast<int>(p.red_size.size());
  const bool parallel = p.out_count * p.red_count > kParallelMin;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t o = 0; o < p.out_count; ++o) {
    const int64_t base = KeptOffset(p, o, nk);
    int64_t ties = 0;
    Walk count_walk(p.red_size, p.red_stride, nr);
    for (int64_t r = 0; r < p.red_count; ++r, count_walk.Next()) ties += x[base + count_walk.offset()] == y[o];
    const float share = ties > 0 ? dy[o] / static_cast<float>(ties) : 0.0f;
    Walk walk(p.red_size, p.red_stride, nr);
    for (int64_t r = 0; r < p.red_count; ++r, walk.Next()) {
      const int64_t i = base + walk.offset();
      dx[i] = x[i] == y[o] ? share : 0.0f;
    }
  }
}

// ---------------------------------------------------------------- shape helpers

const std::vector<int64_t>& AxesAttr(const Node& node) { return node.attr<std::vector<int64_t>>("axes"); }
bool KeepDimsAttr(const Node& node) { return node.attr<bool>("keepdims"); }
bool DivideAttr(const Node& node) { return node.attr<bool>("divide_by_count"); }

// attrs of ReduceSum/Mean/Max.
std::vector<AttrDef> ReduceAttrs() {
  return {OptionalAttr("axes", std::vector<int64_t>{}), OptionalAttr("keepdims", false)};
}

// Which dims of a rank-`rank` input the axes reduce (empty axes: all).
absl::StatusOr<std::vector<bool>> ReducedDims(const std::vector<int64_t>& axes, int rank,
                                              const InferContext* ctx) {
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      std::string what = absl::StrCat("axis ", a, " is out of range for ", ctx ? ctx->Describe(0) : "input 0",
                                      " of rank ", rank);
      if (rank > 0) absl::StrAppend(&what, " (valid axes: ", -rank, "..", rank - 1, ")");
      return ctx ? ctx->Error(what) : absl::InvalidArgumentError(what);
    }
    const int64_t n = a < 0 ? a + rank : a;
    if (reduced[n]) {
      std::string what = absl::StrCat("axis ", a, " (dim ", n, ") is listed twice in axes [",
                                      absl::StrJoin(axes, ", "), "]");
      return ctx ? ctx->Error(what) : absl::InvalidArgumentError(what);
    }
    reduced[n] = true;
  }
  return reduced;
}

// x's shape with every reduced dim set to 1.
Shape KeepDimsShape(const Shape& x, const std::vector<bool>& reduced) {
  std::vector<int64_t> dims = x.dims();
  for (int i = 0; i < x.rank(); ++i) {
    if (reduced[i]) dims[i] = 1;
  }
  return Shape(dims);
}

absl::Status InferReduce(InferContext& ctx) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
  const Shape& x = ctx.shape(0);
  GF_ASSIGN_OR_RETURN(std::vector<bool> reduced, ReducedDims(AxesAttr(ctx.node()), x.rank(), &ctx));
  std::vector<int64_t> dims;
  for (int i = 0; i < x.rank(); ++i) {
    if (!reduced[i]) {
      dims.push_back(x[i]);
    } else if (KeepDimsAttr(ctx.node())) {
      dims.push_back(1);
    }
  }
  ctx.AddOutput(DType::kF32, Shape(dims));
  return absl::OkStatus();
}

// Checks input `small` broadcasts to input `big` (numpy rules). Unknown (-1)
// dims pass here and are checked again with concrete shapes at compile time.
absl::Status CheckBroadcastsTo(const InferContext& ctx, int small, int big) {
  const Shape &s = ctx.shape(small), &b = ctx.shape(big);
  if (s.rank() > b.rank()) {
    return ctx.Error(absl::StrCat(ctx.Describe(small), " has a higher rank than ", ctx.Describe(big),
                                  ", so it cannot be broadcast to it"));
  }
  const int offset = b.rank() - s.rank();
  for (int i = 0; i < s.rank(); ++i) {
    const int64_t sd = s[i], bd = b[i + offset];
    if (sd == 1 || sd == bd || sd < 0 || bd < 0) continue;
    return ctx.Error(absl::StrCat(ctx.Describe(small), " does not broadcast to ", ctx.Describe(big), ": dim ",
                                  i, " is ", sd, " where ", bd, " (or 1) is needed"));
  }
  return absl::OkStatus();
}

// The keepdims form of a reduction's output gradient (or output): a free
// reshape when keepdims was off, so it broadcasts against x.
Output WithKeptDims(GradContext& g, Output v) {
  if (KeepDimsAttr(g.node)) return v;
  const Shape& x = g.x(0).shape();
  auto reduced = ReducedDims(AxesAttr(g.node), x.rank(), nullptr);
  if (!reduced.ok()) {
    g.scope.graph().RecordError(reduced.status());
    return Output{};
  }
  return Reshape(g.scope, v, KeepDimsShape(x, *reduced));
}

// The reduction's input shape and its keepdims output shape, concrete.
absl::StatusOr<ReducePlan> PlanForReduceNode(const KernelContext& k) {
  const Shape& x = k.in_shape(0);
  GF_ASSIGN_OR_RETURN(std::vector<bool> reduced, ReducedDims(AxesAttr(k.node), x.rank(), nullptr));
  return MakeReducePlan(x, KeepDimsShape(x, reduced));
}

template <typename Op>
KernelFn ReduceKernel(bool mean) {
  return [mean](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
    GF_ASSIGN_OR_RETURN(ReducePlan plan, PlanForReduceNode(k));
    const float* src = k.in<float>(0);
    float* dst = k.out<float>(0);
    return MakeKernel([plan, src, dst, mean, scratch = std::vector<float>()](const RunContext&) mutable {
      ReduceLoop<Op>(plan, src, dst, mean, scratch);
      return absl::OkStatus();
    });
  };
}

// Shared grad-check cases of the three reductions: a middle axis, all axes,
// keepdims with two axes, a negative axis.
std::vector<GradCheckCase> ReduceGradChecks() {
  return {
      {.inputs = {{.shape = {2, 3, 4}}}, .attrs = {{"axes", std::vector<int64_t>{1}}}},
      {.inputs = {{.shape = {3, 4}}}, .attrs = {{"axes", std::vector<int64_t>{}}}},
      {.inputs = {{.shape = {2, 3, 4}}},
       .attrs = {{"axes", std::vector<int64_t>{0, 2}}, {"keepdims", true}}},
      {.inputs = {{.shape = {4, 3}}}, .attrs = {{"axes", std::vector<int64_t>{-2}}}},
  };
}

Output AddReduce(const Scope& scope, std::string_view op, Output x, const std::vector<int>& axes,
                 bool keepdims) {
  return scope.graph().AddNode1(
      scope, op, {x}, {{"axes", std::vector<int64_t>(axes.begin(), axes.end())}, {"keepdims", keepdims}});
}

// A reduction over the "axes" attr (ReduceAttrs), gradient-checked on
// ReduceGradChecks' shapes.
OpDef ReduceOp(std::string name, KernelFn kernel, GradFn grad) {
  return {.name = std::move(name),
          .num_inputs = 1,
          .attrs = ReduceAttrs(),
          .infer = InferReduce,
          .kernel = std::move(kernel),
          .grad = std::move(grad),
          .grad_checks = ReduceGradChecks()};
}

}  // namespace

// ---------------------------------------------------------------- ReduceSum

// y = sum over axes of x: each x element enters its y element once, so
// dx = dy broadcast back over the reduced axes.
std::vector<Output> ReduceSumGrad(GradContext& g) {
  return {BroadcastLike(g.scope, WithKeptDims(g, g.dy[0]), g.x(0))};
}

GF_REGISTER_OP(ReduceOp("ReduceSum", ReduceKernel<SumOp>(/*mean=*/false), ReduceSumGrad));

// ---------------------------------------------------------------- ReduceMean

// y = (1/n) sum over axes of x, n = number of reduced elements (from the
// concrete shape): dx = dy / n broadcast back over the reduced axes.
std::vector<Output> ReduceMeanGrad(GradContext& g) {
  return {BroadcastLike(g.scope, WithKeptDims(g, g.dy[0]), g.x(0), /*divide_by_count=*/true)};
}

GF_REGISTER_OP(ReduceOp("ReduceMean", ReduceKernel<SumOp>(/*mean=*/true), ReduceMeanGrad));

// ---------------------------------------------------------------- ReduceMax

// y = max over axes of x: dy flows to the element(s) equal to the maximum.
// With ties, each of the k maximal elements gets dy/k (TensorFlow's
// reduce_max gradient does the same), so the gradient sums to dy.
std::vector<Output> ReduceMaxGrad(GradContext& g) {
  return {g.scope.graph().AddNode1(g.scope, "ReduceMaxGrad",
                                   {g.x(0), WithKeptDims(g, g.y(0)), WithKeptDims(g, g.dy[0])})};
}

// Uniform random inputs for the gradient check: the maximum of each group is
// unique, with gaps far wider than the finite-difference step.
GF_REGISTER_OP(ReduceOp("ReduceMax", ReduceKernel<MaxOp>(/*mean=*/false), ReduceMaxGrad));

// Inputs: x, y = max with kept dims, dy with kept dims. Output: dx (x's shape).
GF_REGISTER_OP(OpDef{
    .name = "ReduceMaxGrad",
    .num_inputs = 3,
    .infer = [](InferContext& ctx) {
      for (int i = 0; i < 3; ++i) GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
      if (ctx.shape(1) != ctx.shape(2)) {
        return ctx.Error(absl::StrCat(ctx.Describe(1), " and ", ctx.Describe(2), " must have the same shape"));
      }
      GF_RETURN_IF_ERROR(CheckBroadcastsTo(ctx, 1, 0));
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(ReducePlan plan, MakeReducePlan(k.in_shape(0), k.in_shape(1)));
      const float *x = k.in<float>(0), *y = k.in<float>(1), *dy = k.in<float>(2);
      float* dx = k.out<float>(0);
      return MakeKernel([plan, x, y, dy, dx](const RunContext&) {
        MaxGradLoop(plan, x, y, dy, dx);
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

// ---------------------------------------------------------------- SumToShapeOf

namespace {

// SumToShapeOf and BroadcastLike are each other's gradient: (x, like) ->
// a tensor shaped as `like`, where input `narrow` broadcasts to the other
// (SumToShapeOf: like to x; BroadcastLike: x to like). `like` only supplies
// a shape and gets no gradient.
OpDef LikeOp(std::string name, int narrow, KernelFn kernel, GradFn grad, std::vector<GradCheckCase> grad_checks) {
  return {.name = std::move(name),
          .num_inputs = 2,
          .attrs = {OptionalAttr("divide_by_count", false)},
          .infer = [narrow](InferContext& ctx) {
            GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
            GF_RETURN_IF_ERROR(CheckBroadcastsTo(ctx, narrow, 1 - narrow));
            ctx.AddOutput(DType::kF32, ctx.shape(1));
            return absl::OkStatus();
          },
          .kernel = std::move(kernel),
          .grad = std::move(grad),
          .grad_checks = std::move(grad_checks)};
}

}  // namespace

// y = sum of x over the dims `like` is broadcast along (divided by the count
// if divide_by_count): each x element enters one y element once (or with
// weight 1/n), so dx = dy broadcast back (divided by n). `like` only supplies
// a shape: no gradient.
std::vector<Output> SumToShapeOfGrad(GradContext& g) {
  return {BroadcastLike(g.scope, g.dy[0], g.x(0), DivideAttr(g.node)), Output{}};
}

GF_REGISTER_OP(LikeOp(
    "SumToShapeOf", /*narrow=*/1,
    [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(ReducePlan plan, MakeReducePlan(k.in_shape(0), k.in_shape(1)));
      const float* src = k.in<float>(0);
      float* dst = k.out<float>(0);
      const bool mean = DivideAttr(k.node);
      return MakeKernel([plan, src, dst, mean, scratch = std::vector<float>()](const RunContext&) mutable {
        ReduceLoop<SumOp>(plan, src, dst, mean, scratch);
        return absl::OkStatus();
      });
    },
    SumToShapeOfGrad,
    {{.inputs = {{.shape = {2, 3, 4}}, {.shape = {3, 1}, .no_grad = true}}},
     {.inputs = {{.shape = {4, 3}}, {.shape = {1, 3}, .no_grad = true}}, .attrs = {{"divide_by_count", true}}}}));

Output SumToShapeOf(const Scope& scope, Output x, Output like, bool divide_by_count) {
  return scope.graph().AddNode1(scope, "SumToShapeOf", {x, like}, {{"divide_by_count", divide_by_count}});
}

// ---------------------------------------------------------------- BroadcastLike

// y = x repeated along the broadcast dims (divided by the repeat count n if
// divide_by_count): dx = dy summed over those dims (divided by n). `like` only
// supplies a shape: no gradient.
std::vector<Output> BroadcastLikeGrad(GradContext& g) {
  return {SumToShapeOf(g.scope, g.dy[0], g.x(0), DivideAttr(g.node)), Output{}};
}

GF_REGISTER_OP(LikeOp(
    "BroadcastLike", /*narrow=*/0,
    [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(ReducePlan plan, MakeReducePlan(k.out_shape(0), k.in_shape(0)));
      const float* src = k.in<float>(0);
      float* dst = k.out<float>(0);
      const bool mean = DivideAttr(k.node);
      return MakeKernel([plan, src, dst, mean](const RunContext&) {
        BroadcastLoop(plan, src, dst, mean);
        return absl::OkStatus();
      });
    },
    BroadcastLikeGrad,
    {{.inputs = {{.shape = {3, 1}}, {.shape = {2, 3, 4}, .no_grad = true}}},
     {.inputs = {{.shape = {3}}, {.shape = {4, 3}, .no_grad = true}}, .attrs = {{"divide_by_count", true}}}}));

Output BroadcastLike(const Scope& scope, Output x, Output like, bool divide_by_count) {
  return scope.graph().AddNode1(scope, "BroadcastLike", {x, like}, {{"divide_by_count", divide_by_count}});
}

// ---------------------------------------------------------------- builders

Output ReduceSum(const Scope& scope, Output x, std::vector<int> axes, bool keepdims) {
  return AddReduce(scope, "ReduceSum", x, axes, keepdims);
}
Output ReduceMean(const Scope& scope, Output x, std::vector<int> axes, bool keepdims) {
  return AddReduce(scope, "ReduceMean", x, axes, keepdims);
}
Output ReduceMax(const Scope& scope, Output x, std::vector<int> axes, bool keepdims) {
  return AddReduce(scope, "ReduceMax", x, axes, keepdims);
}

}  // namespace gradflow::ops
