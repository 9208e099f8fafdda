#include "ops/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/communicator.h"
#include "core/status.h"
#include "graph/autodiff.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

using dnnl::normalization_flags;

constexpr char kScaleAttr[] = "scale";    // has gamma (Keras scale=True)
constexpr char kCenterAttr[] = "center";  // has beta (Keras center=True)
constexpr char kEpsilonAttr[] = "epsilon";
constexpr char kFrozenAttr[] = "frozen";
// Data parallel: training statistics over every rank's rows (Keras's
// synchronized=True; see SynchronizedForward).
constexpr char kSynchronizedAttr[] = "synchronized";
// BatchNormGrad: dL/dmean and dL/dvariance are inputs (some consumer of the
// statistics outputs is differentiated), so dx gets their terms too.
constexpr char kStatsGradsAttr[] = "stats_grads";

// Input positions of a BatchNorm node: x, [gamma], [beta], moving_mean,
// moving_variance (gamma and beta only when the node has them).
struct ForwardInputs {
  int gamma = -1, beta = -1, moving_mean, moving_variance;
  explicit ForwardInputs(const Node& node) {
    int i = 1;
    if (node.attr<bool>(kScaleAttr)) gamma = i++;
    if (node.attr<bool>(kCenterAttr)) beta = i++;
    moving_mean = i++;
    moving_variance = i++;
  }
  int count() const { return moving_variance + 1; }
};

// Input positions of a BatchNormGrad node: dy, x, [gamma], mean, variance,
// [dmean, dvariance]. Outputs: dx, [dgamma], [dbeta].
struct BackwardInputs {
  int gamma = -1, mean, variance, dmean = -1, dvariance = -1;
  explicit BackwardInputs(const Node& node) {
    int i = 2;
    if (node.attr<bool>(kScaleAttr)) gamma = i++;
    mean = i++;
    variance = i++;
    if (node.attr<bool>(kStatsGradsAttr)) {
      dmean = i++;
      dvariance = i++;
    }
  }
  int count() const { return (dvariance >= 0 ? dvariance : variance) + 1; }
};

// The training form runs only in training plans, and never for a frozen node.
bool UsesBatchStatistics(const Node& node, Phase phase) {
  return phase == Phase::kTrain && !node.attr<bool>(kFrozenAttr);
}

normalization_flags FlagsOf(const Node& node, bool batch_statistics) {
  normalization_flags flags = normalization_flags::none;
  if (node.attr<bool>(kScaleAttr)) flags |= normalization_flags::use_scale;
  if (node.attr<bool>(kCenterAttr)) flags |= normalization_flags::use_shift;
  if (!batch_statistics) flags |= normalization_flags::use_global_stats;
  return flags;
}

// [M, C]: every axis but the last folded into rows (the per-feature
// statistics of a channels-last tensor are those of this matrix).
Shape RowsByFeatures(const Shape& x) {
  const int64_t c = x[x.rank() - 1];
  return Shape{c > 0 ? x.NumElements() / c : 0, c};
}

// The [M, C] rows as oneDNN's [M, C, 1, 1] in nhwc: the same bytes, but
// oneDNN 2.6 then picks its jit channels-last kernels (bnorm_jit /
// bnorm_tbb_jit), where a 2-D "ab" descriptor gets the generic ncsp_bnorm,
// measured here 8-20x slower for [32, 784], [32, 300] and [32, 100].
dnnl::memory::desc RowsDesc(const Shape& rows) {
  return dnnl::memory::desc({rows[0], rows[1], 1, 1}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::nhwc);
}

// Checks input i is f32 [C].
absl::Status ExpectFeatureVector(InferContext& ctx, int i, int64_t c, const char* what) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
  if (ctx.shape(i) != Shape{c}) {
    return ctx.Error(absl::StrCat("the ", what, " ", ctx.Describe(i), " must be [", c,
                                  "], one value per feature of the last axis of ",
                                  ctx.Describe(0)));
  }
  return absl::OkStatus();
}

// Checks x (input x_index) and returns its feature count C.
absl::StatusOr<int64_t> FeatureCount(InferContext& ctx, int x_index) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(x_index, DType::kF32));
  const Shape& x = ctx.shape(x_index);
  if (x.rank() < 2 || x[x.rank() - 1] <= 0) {
    return ctx.Error(absl::StrCat(ctx.Describe(x_index),
                                  " must have rank >= 2 and a known last (feature) axis"));
  }
  for (int d = 1; d < x.rank(); ++d) {
    if (x[d] < 0) return ctx.Error(absl::StrCat("only the batch dim of ", ctx.Describe(x_index), " may be -1"));
  }
  return x[x.rank() - 1];
}

// An optional step, a oneDNN primitive, plain copies and an optional step.
class BatchNormKernel : public Kernel {
 public:
  struct Copy {
    const float* src;
    float* dst;
    int64_t n;
  };
  using Step = std::function<absl::Status()>;
  BatchNormKernel(std::optional<dnnl::primitive> primitive,
                  std::unordered_map<int, dnnl::memory> args, std::vector<Copy> copies,
                  Step after = nullptr, Step before = nullptr)
      : primitive_(std::move(primitive)), args_(std::move(args)), copies_(std::move(copies)),
        after_(std::move(after)), before_(std::move(before)) {}
  absl::Status Run(const RunContext&) override {
    if (before_) GF_RETURN_IF_ERROR(before_());
    if (primitive_) {
      primitive_->execute(CpuStream(), args_);
      CpuStream().wait();
    }
    for (const Copy& c : copies_) std::memcpy(c.dst, c.src, c.n * sizeof(float));
    return after_ ? after_() : absl::OkStatus();
  }
  // Holds a buffer a bound argument points into for the kernel's lifetime.
  void KeepAlive(std::shared_ptr<std::vector<float>> buffer) { owned_ = std::move(buffer); }

 private:
  std::optional<dnnl::primitive> primitive_;
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<Copy> copies_;
  Step after_, before_;
  std::shared_ptr<std::vector<float>> owned_;
};

// ------------------------------------------------ synchronized statistics
//
// Data parallel with attr "synchronized" (Keras's synchronized=True): the
// training form's statistics are those of every rank's rows, as one process
// at the global batch would compute them (PyTorch's SyncBatchNorm).
// Forward: each rank's per-feature sums of x and x^2 (in double) and its row
// count are summed over the ranks; mean = S1 / M, var = S2 / M - mean^2;
// oneDNN normalizes with them (use_global_stats). Backward: oneDNN's
// use_global_stats backward gives gamma dy / sigma and this rank's dgamma
// and dbeta; the sums of dy and dy xhat over every rank complete
//   dx = gamma / sigma * (dy - (sum dy + xhat sum dy xhat) / M).
// dgamma and dbeta stay this rank's: the data-parallel mean of the
// gradients combines the ranks' shares, as for every other weight.

bool Synchronized(const KernelContext& k) {
  return k.node.attr<bool>(kSynchronizedAttr) && UsesBatchStatistics(k.node, k.phase) &&
         k.communicator != nullptr && k.communicator->size() > 1;
}

// Sets s[f] and s[c + f] to the sums over this rank's m rows of the pair
// term(row, f), s[2c] to m, then sums s over the ranks.
template <typename Term>
absl::Status SumFeaturesOverRanks(Communicator& comm, int64_t m, int64_t c, std::vector<double>& s, Term term) {
  std::fill(s.begin(), s.end(), 0.0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t f = 0; f < c; ++f) {
      const auto [a, b] = term(r, f);
      s[f] += a;
      s[c + f] += b;
    }
  }
  s[2 * c] = static_cast<double>(m);
  return comm.AllReduceSum(s.data(), s.size());
}

// The forward primitive normalizing `rows` with given statistics.
dnnl::batch_normalization_forward::primitive_desc GivenStatisticsForward(const KernelContext& k,
                                                                         const Shape& rows) {
  return {{dnnl::prop_kind::forward_training, RowsDesc(rows),
           static_cast<float>(k.node.attr<double>(kEpsilonAttr)), FlagsOf(k.node, false)},
          CpuEngine()};
}

absl::StatusOr<std::unique_ptr<Kernel>> SynchronizedForwardKernel(const KernelContext& k) {
  const ForwardInputs in(k.node);
  const Shape rows = RowsByFeatures(k.in_shape(0));
  const int64_t m = rows[0], c = rows[1];
  const float* x = k.in<float>(0);
  float* mean = k.out<float>(1);
  float* variance = k.out<float>(2);
  Communicator* comm = k.communicator;
  auto sums = std::make_shared<std::vector<double>>(2 * c + 1);
  BatchNormKernel::Step statistics = [=]() -> absl::Status {
    std::vector<double>& s = *sums;
    GF_RETURN_IF_ERROR(SumFeaturesOverRanks(*comm, m, c, s, [&](int64_t r, int64_t f) {
      const double v = x[r * c + f];
      return std::pair{v, v * v};
    }));
    for (int64_t f = 0; f < c; ++f) {
      const double mu = s[f] / s[2 * c];
      mean[f] = static_cast<float>(mu);
      variance[f] = static_cast<float>(std::max(0.0, s[c + f] / s[2 * c] - mu * mu));
    }
    return absl::OkStatus();
  };
  if (m == 0) return std::unique_ptr<Kernel>(new BatchNormKernel(std::nullopt, {}, {}, nullptr, statistics));
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    const dnnl::memory::desc data = RowsDesc(rows), stats = PlainDesc(Shape{c});
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, MemoryAt(data, k.inputs[0])},     {DNNL_ARG_DST, MemoryAt(data, k.outputs[0])},
        {DNNL_ARG_MEAN, MemoryAt(stats, mean)},          {DNNL_ARG_VARIANCE, MemoryAt(stats, variance)},
    };
    if (in.gamma >= 0) args[DNNL_ARG_SCALE] = MemoryAt(stats, k.inputs[in.gamma]);
    if (in.beta >= 0) args[DNNL_ARG_SHIFT] = MemoryAt(stats, k.inputs[in.beta]);
    auto kernel = std::make_unique<BatchNormKernel>(
        dnnl::batch_normalization_forward(GivenStatisticsForward(k, rows)), std::move(args),
        std::vector<BatchNormKernel::Copy>{}, nullptr, statistics);
    return std::unique_ptr<Kernel>(std::move(kernel));
  });
}

// The step after oneDNN's given-statistics backward (dx = gamma dy / sigma):
// the terms of the statistics over every rank.
BatchNormKernel::Step SynchronizedBackwardTerms(const KernelContext& k, const Shape& rows) {
  const BackwardInputs in(k.node);
  const int64_t m = rows[0], c = rows[1];
  const float* dy = k.in<float>(0);
  const float* x = k.in<float>(1);
  const float* gamma = in.gamma >= 0 ? k.in<float>(in.gamma) : nullptr;
  const float* mean = k.in<float>(in.mean);
  const float* variance = k.in<float>(in.variance);
  const double epsilon = k.node.attr<double>(kEpsilonAttr);
  float* dx = k.out<float>(0);
  Communicator* comm = k.communicator;
  auto sums = std::make_shared<std::vector<double>>(2 * c + 1);
  auto inv_sigma = std::make_shared<std::vector<double>>(c);
  return [=]() -> absl::Status {
    std::vector<double>& s = *sums;
    std::vector<double>& inv = *inv_sigma;
    for (int64_t f = 0; f < c; ++f) inv[f] = 1.0 / std::sqrt(variance[f] + epsilon);
    auto xhat = [&](int64_t r, int64_t f) { return (x[r * c + f] - mean[f]) * inv[f]; };
    GF_RETURN_IF_ERROR(SumFeaturesOverRanks(*comm, m, c, s, [&](int64_t r, int64_t f) {
      return std::pair{double(dy[r * c + f]), dy[r * c + f] * xhat(r, f)};
    }));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t f = 0; f < c; ++f) {
        const double g = gamma ? gamma[f] : 1.0;
        dx[r * c + f] -= static_cast<float>(g * inv[f] * (s[f] + xhat(r, f) * s[c + f]) / s[2 * c]);
      }
    }
    return absl::OkStatus();
  };
}

// ---------------------------------------------------------------- forward

absl::StatusOr<std::unique_ptr<Kernel>> ForwardKernel(const KernelContext& k) {
  if (Synchronized(k)) return SynchronizedForwardKernel(k);
  const ForwardInputs in(k.node);
  const bool batch_statistics = UsesBatchStatistics(k.node, k.phase);
  const Shape rows = RowsByFeatures(k.in_shape(0));
  const int64_t c = rows[1];
  float* mean = k.out<float>(1);
  float* variance = k.out<float>(2);
  // The inference form reports the statistics it used: the moving ones.
  std::vector<BatchNormKernel::Copy> copies;
  if (!batch_statistics || rows[0] == 0) {
    copies = {{k.in<float>(in.moving_mean), mean, c}, {k.in<float>(in.moving_variance), variance, c}};
  }
  if (rows[0] == 0) return std::unique_ptr<Kernel>(new BatchNormKernel(std::nullopt, {}, copies));
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    const dnnl::memory::desc data = RowsDesc(rows), stats = PlainDesc(Shape{c});
    const auto prop = batch_statistics ? dnnl::prop_kind::forward_training
                                       : dnnl::prop_kind::forward_inference;
    dnnl::batch_normalization_forward::primitive_desc pd(
        {prop, data, static_cast<float>(k.node.attr<double>(kEpsilonAttr)),
         FlagsOf(k.node, batch_statistics)},
        CpuEngine());
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, MemoryAt(data, k.inputs[0])},
        {DNNL_ARG_DST, MemoryAt(data, k.outputs[0])},
        {DNNL_ARG_MEAN, MemoryAt(stats, batch_statistics ? mean : k.inputs[in.moving_mean])},
        {DNNL_ARG_VARIANCE,
         MemoryAt(stats, batch_statistics ? variance : k.inputs[in.moving_variance])},
    };
    if (in.gamma >= 0) args[DNNL_ARG_SCALE] = MemoryAt(stats, k.inputs[in.gamma]);
    if (in.beta >= 0) args[DNNL_ARG_SHIFT] = MemoryAt(stats, k.inputs[in.beta]);
    return std::unique_ptr<Kernel>(
        new BatchNormKernel(dnnl::batch_normalization_forward(pd), std::move(args), copies));
  });
}

// Gradient of y = gamma xhat + beta, xhat = (x - mean) / sqrt(var + eps),
// with M rows per feature:
//   dbeta  = sum_m dy
//   dgamma = sum_m dy xhat
// Training form (mean and var are functions of x):
//   dx = gamma / (M sqrt(var + eps)) * (M dy - dbeta - xhat dgamma)
// Inference form (mean and var are constants):
//   dx = gamma dy / sqrt(var + eps)
// oneDNN's batch_normalization_backward computes both (the second with
// use_global_stats). When the statistics outputs are differentiated too,
// mean = sum_m x / M and var = sum_m (x - mean)^2 / M add
//   dx += dmean / M + dvar * 2 (x - mean) / M
// (the path through mean inside var vanishes: sum_m (x - mean) = 0).
// The moving statistics get no gradient: they are updated, not trained.
std::vector<Output> BatchNormGradient(GradContext& g) {
  const ForwardInputs in(g.node);
  const bool stats_grads = !IsZeroGradientOf(g.dy[1], g.y(1)) || !IsZeroGradientOf(g.dy[2], g.y(2));
  std::vector<Output> inputs = {g.dy[0], g.x(0)};
  if (in.gamma >= 0) inputs.push_back(g.x(in.gamma));
  inputs.push_back(g.y(1));
  inputs.push_back(g.y(2));
  if (stats_grads) {
    inputs.push_back(g.dy[1]);
    inputs.push_back(g.dy[2]);
  }
  Attrs attrs = g.node.attrs;
  attrs[kStatsGradsAttr] = stats_grads;
  std::vector<Output> outs = g.scope.graph().AddNode(g.scope, "BatchNormGrad", inputs, attrs);
  std::vector<Output> dx(in.count());
  if (outs.empty()) return dx;
  int k = 0;
  dx[0] = outs[k++];
  if (in.gamma >= 0) dx[in.gamma] = outs[k++];
  if (in.beta >= 0) dx[in.beta] = outs[k++];
  return dx;
}

absl::StatusOr<std::unique_ptr<Kernel>> BackwardKernel(const KernelContext& k) {
  const BackwardInputs in(k.node);
  const bool synchronized = Synchronized(k);
  if (synchronized && in.dmean >= 0) {
    return absl::UnimplementedError(absl::StrCat(
        "node ", QuoteUserText(k.node.name), ": a synchronized batch norm's mean and variance "
        "outputs cannot be differentiated (they feed only the moving averages in nn)"));
  }
  // Synchronized: oneDNN computes the given-statistics part, the rest follows.
  const bool batch_statistics = UsesBatchStatistics(k.node, k.phase) && !synchronized;
  const bool scale = k.node.attr<bool>(kScaleAttr), center = k.node.attr<bool>(kCenterAttr);
  const Shape rows = RowsByFeatures(k.in_shape(1));
  const int64_t m = rows[0], c = rows[1];
  int out = 1;
  float* dgamma = scale ? k.out<float>(out++) : nullptr;
  float* dbeta = center ? k.out<float>(out++) : nullptr;
  if (m == 0) {  // an empty batch: zero parameter gradients
    BatchNormKernel::Step sync = synchronized ? SynchronizedBackwardTerms(k, rows) : nullptr;
    return MakeKernel([=](const RunContext&) {
      if (dgamma) std::fill(dgamma, dgamma + c, 0.0f);
      if (dbeta) std::fill(dbeta, dbeta + c, 0.0f);
      return sync ? sync() : absl::OkStatus();  // the other ranks' sums still need this one's
    });
  }
  // dx += dmean / M + dvar * 2 (x - mean) / M, per row (one thread per row
  // range: each element is computed by one fixed expression).
  BatchNormKernel::Step stats_terms;
  if (in.dmean >= 0 && batch_statistics) {
    const float* x = k.in<float>(1);
    const float* mean = k.in<float>(in.mean);
    const float* dmean = k.in<float>(in.dmean);
    const float* dvariance = k.in<float>(in.dvariance);
    float* dx = k.out<float>(0);
    const float inv_m = 1.0f / static_cast<float>(m);
    stats_terms = [=]() {
#pragma omp parallel for schedule(static) if (m * c > kParallelMin)
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t f = 0; f < c; ++f) {
          const int64_t i = r * c + f;
          dx[i] += (dmean[f] + 2.0f * dvariance[f] * (x[i] - mean[f])) * inv_m;
        }
      }
      return absl::OkStatus();
    };
  }
  if (synchronized) stats_terms = SynchronizedBackwardTerms(k, rows);
  return WithDnnl(k.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    const dnnl::memory::desc data = RowsDesc(rows), stats = PlainDesc(Shape{c});
    const float epsilon = static_cast<float>(k.node.attr<double>(kEpsilonAttr));
    const normalization_flags flags = FlagsOf(k.node, batch_statistics);
    dnnl::batch_normalization_forward::primitive_desc hint(
        {dnnl::prop_kind::forward_training, data, epsilon, flags}, CpuEngine());
    const auto prop = (scale || center) ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data;
    dnnl::batch_normalization_backward::primitive_desc pd({prop, data, data, epsilon, flags},
                                                          CpuEngine(), hint);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_DIFF_DST, MemoryAt(data, k.inputs[0])},
        {DNNL_ARG_SRC, MemoryAt(data, k.inputs[1])},
        {DNNL_ARG_MEAN, MemoryAt(stats, k.inputs[in.mean])},
        {DNNL_ARG_VARIANCE, MemoryAt(stats, k.inputs[in.variance])},
        {DNNL_ARG_DIFF_SRC, MemoryAt(data, k.outputs[0])},
    };
    if (scale) {
      args[DNNL_ARG_SCALE] = MemoryAt(stats, k.inputs[in.gamma]);
      args[DNNL_ARG_DIFF_SCALE] = MemoryAt(stats, dgamma);
    }
    std::shared_ptr<std::vector<float>> unused_shift;
    if (center) {
      args[DNNL_ARG_DIFF_SHIFT] = MemoryAt(stats, dbeta);
      // oneDNN 2.6 refuses to run a use_shift backward without a shift
      // argument, although no gradient depends on beta's value: bind zeros.
      unused_shift = std::make_shared<std::vector<float>>(c, 0.0f);
      args[DNNL_ARG_SHIFT] = MemoryAt(stats, unused_shift->data());
    }
    auto kernel = std::make_unique<BatchNormKernel>(dnnl::batch_normalization_backward(pd),
                                                    std::move(args), std::vector<BatchNormKernel::Copy>{},
                                                    std::move(stats_terms));
    kernel->KeepAlive(std::move(unused_shift));
    return std::unique_ptr<Kernel>(std::move(kernel));
  });
}

Attrs BnAttrs(bool scale, bool center, bool frozen = false) {
  return {{kScaleAttr, scale}, {kCenterAttr, center}, {kEpsilonAttr, kBatchNormDefaultEpsilon},
          {kFrozenAttr, frozen}};
}

// Grad-check inputs: x [4, 3] in [-1, 1], gamma in [0.5, 1.5], beta in
// [-1, 1], and positive moving statistics (no gradient: they are updated,
// not trained).
std::vector<InputSpec> BnCheckInputs(bool scale, bool center) {
  std::vector<InputSpec> inputs = {{.shape = {4, 3}}};
  if (scale) inputs.push_back({.shape = {3}, .lo = 0.5, .hi = 1.5});
  if (center) inputs.push_back({.shape = {3}});
  inputs.push_back({.shape = {3}, .lo = -0.5, .hi = 0.5, .no_grad = true});
  inputs.push_back({.shape = {3}, .lo = 0.5, .hi = 1.5, .no_grad = true});
  return inputs;
}

}  // namespace

// scale/center: whether gamma/beta are inputs; frozen: the inference form
// even in a training plan (Keras trainable=False).
std::vector<AttrDef> BatchNormAttrs() {
  return {RequiredAttr(kScaleAttr, AttrType::kBool), RequiredAttr(kCenterAttr, AttrType::kBool),
          RequiredAttr(kEpsilonAttr, AttrType::kFloat).Above(0), OptionalAttr(kFrozenAttr, false),
          OptionalAttr(kSynchronizedAttr, false)};
}

std::vector<AttrDef> BatchNormGradAttrs() {
  std::vector<AttrDef> attrs = BatchNormAttrs();
  attrs.push_back(RequiredAttr(kStatsGradsAttr, AttrType::kBool));
  return attrs;
}

GF_REGISTER_OP(OpDef{
    .name = "BatchNorm",
    .num_inputs = -1,
    .attrs = BatchNormAttrs(),
    .infer = [](InferContext& ctx) {
      const ForwardInputs in(ctx.node());
      if (ctx.num_inputs() != in.count()) {
        return ctx.Error(absl::StrCat("takes ", in.count(), " inputs with these scale/center attrs, got ",
                                      ctx.num_inputs()));
      }
      GF_ASSIGN_OR_RETURN(int64_t c, FeatureCount(ctx, 0));
      if (in.gamma >= 0) GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.gamma, c, "scale (gamma)"));
      if (in.beta >= 0) GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.beta, c, "offset (beta)"));
      GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.moving_mean, c, "moving mean"));
      GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.moving_variance, c, "moving variance"));
      ctx.AddOutput(DType::kF32, ctx.shape(0));
      ctx.AddOutput(DType::kF32, Shape{c});
      ctx.AddOutput(DType::kF32, Shape{c});
      return absl::OkStatus();
    },
    .kernel = ForwardKernel,
    .grad = BatchNormGradient,
    .grad_checks = {
        {.inputs = BnCheckInputs(true, true), .attrs = BnAttrs(true, true)},
        {.inputs = BnCheckInputs(false, false), .attrs = BnAttrs(false, false)},
        {.inputs = BnCheckInputs(true, false), .attrs = BnAttrs(true, false)},
        {.inputs = BnCheckInputs(false, true), .attrs = BnAttrs(false, true)},
        // A frozen node: the inference form inside a training plan.
        {.inputs = BnCheckInputs(true, true), .attrs = BnAttrs(true, true, /*frozen=*/true)},
        // Rank 3: statistics over the batch and the middle axis.
        {.inputs = {{.shape = {2, 3, 2}}, {.shape = {2}, .lo = 0.5, .hi = 1.5}, {.shape = {2}},
                    {.shape = {2}, .no_grad = true}, {.shape = {2}, .lo = 0.5, .hi = 1.5, .no_grad = true}},
         .attrs = BnAttrs(true, true)},
    },
});

GF_REGISTER_OP(OpDef{
    .name = "BatchNormGrad",
    .num_inputs = -1,
    .attrs = BatchNormGradAttrs(),
    .infer = [](InferContext& ctx) {
      const BackwardInputs in(ctx.node());
      if (ctx.num_inputs() != in.count()) {
        return ctx.Error(absl::StrCat("takes ", in.count(), " inputs with these attrs, got ",
                                      ctx.num_inputs()));
      }
      GF_ASSIGN_OR_RETURN(int64_t c, FeatureCount(ctx, 1));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      const Shape& dy = ctx.shape(0);
      const Shape& x = ctx.shape(1);
      if (!dy.SameUpToBatch(x)) {
        return ctx.Error(absl::StrCat("the gradient ", ctx.Describe(0), " must have the shape of ",
                                      ctx.Describe(1)));
      }
      if (in.gamma >= 0) GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.gamma, c, "scale (gamma)"));
      GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.mean, c, "mean"));
      GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.variance, c, "variance"));
      if (in.dmean >= 0) {
        GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.dmean, c, "mean gradient"));
        GF_RETURN_IF_ERROR(ExpectFeatureVector(ctx, in.dvariance, c, "variance gradient"));
      }
      ctx.AddOutput(DType::kF32, x);
      if (ctx.node().attr<bool>(kScaleAttr)) ctx.AddOutput(DType::kF32, Shape{c});
      if (ctx.node().attr<bool>(kCenterAttr)) ctx.AddOutput(DType::kF32, Shape{c});
      return absl::OkStatus();
    },
    .kernel = BackwardKernel,
    .no_gradient_reason = "backward op; second derivatives are not supported",
});

// variable -= (variable - value) * (1 - momentum), Keras's
// _assign_moving_average; runs after every read of the variable in a step.
GF_REGISTER_OP(OpDef{
    .name = "AssignMovingAverage",
    .num_inputs = 2,
    .attrs = {RequiredAttr("momentum", AttrType::kFloat).AtLeast(0).AtMost(1)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
      if (ctx.shape(0) != ctx.shape(1)) {
        return ctx.Error(absl::StrCat("the value ", ctx.Describe(1), " must have the shape of the variable ",
                                      ctx.Describe(0)));
      }
      const double momentum = ctx.node().attr<double>("momentum");
      if (!(momentum >= 0 && momentum <= 1)) {
        return ctx.Error(absl::StrCat("momentum must be in [0, 1], got ", momentum));
      }
      return absl::OkStatus();  // no outputs: the op only writes its variable
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      float* variable = k.in<float>(0);
      const float* value = k.in<float>(1);
      const float decay = static_cast<float>(1 - k.node.attr<double>("momentum"));
      const int64_t n = k.in_shape(0).NumElements();
      return MakeKernel([=](const RunContext&) {
        for (int64_t i = 0; i < n; ++i) variable[i] -= (variable[i] - value[i]) * decay;
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "update op: writes a variable, produces no value",
    .mutates_input = 0,
});

BatchNormOutputs BatchNorm(const Scope& scope, Output x, const BatchNormParams& params) {
  Graph& g = scope.graph();
  if (!g.ok()) return {};  // an earlier builder failed (gamma/beta may be invalid because of it)
  if (!params.moving_mean.valid() || !params.moving_variance.valid()) {
    g.RecordError(absl::InvalidArgumentError(absl::StrCat(
        "BatchNorm in scope '", scope.prefix(), "': the moving mean and variance are required")));
    return {};
  }
  std::vector<Output> inputs = {x};
  if (params.gamma.valid()) inputs.push_back(params.gamma);
  if (params.beta.valid()) inputs.push_back(params.beta);
  inputs.push_back(params.moving_mean);
  inputs.push_back(params.moving_variance);
  std::vector<Output> outs = g.AddNode(scope, "BatchNorm", std::move(inputs),
                                       {{kScaleAttr, params.gamma.valid()},
                                        {kCenterAttr, params.beta.valid()},
                                        {kEpsilonAttr, params.epsilon},
                                        {kFrozenAttr, params.frozen},
                                        {kSynchronizedAttr, params.synchronized}});
  if (outs.size() != 3) return {};
  return {outs[0], outs[1], outs[2]};
}

Node* AssignMovingAverage(const Scope& scope, Output variable, Output value, double momentum) {
  return scope.graph().NewNode(scope, "AssignMovingAverage", {variable, value},
                               {{"momentum", momentum}});
}

}  // namespace gradflow::ops
