// The raw oneDNN limit for the issue-7 workloads W1 and W2 (and W1 inference):
// only the work a perfect framework must do per training step, with every
// primitive created once and every buffer preallocated. It is the yardstick
// gradflow is measured against (target: >= 0.9x of its samples/s).
//
// Per training step: gather the shuffled batch rows into one buffer (as Fit
// does); per layer a forward product with the bias and ELU as a post-op (none
// on the logits); softmax + cross-entropy + its gradient in one pass over the
// logits; per layer (last to first) the weight and bias gradients, the input
// gradient and the ELU backward computed from the saved output, in place; one
// vectorized loop updating all parameters, which live in one contiguous
// buffer (SGD momentum 0.9 for W1, Adam for W2, Keras's formulas). Inference:
// the forward products reading the input rows in place, then a softmax loop.
//
// The products run one of two routes (--route), since which is faster
// depends on the CPU and the shapes, and the yardstick should be the faster:
//   inner_product (default): inner-product forward, backward-weights (dW and
//     db together) and backward-data;
//   matmul: matmul forward; dW = Xᵀ·dZ, db = 1ᵀ·dZ and dX = dZ·Wᵀ as matmuls
//     reading Xᵀ and Wᵀ as strided views of X and W (no reorder). db is a
//     matmul with a ones row: oneDNN 2.6's reduction primitive runs a
//     reference kernel here (shared/BUILDING.md measured it 2.7x slower).
//
// Weights use gradflow's (Keras's) [in, out] row-major layout.
//
//   bazel run -c opt //benchmarks:onednn_limit -- --workload=W1 --mode=train --batch=32 --route=matmul
//   bazel run -c opt //benchmarks:onednn_limit -- --workload=W1 --batch=32 --check=300
//     (trains both routes side by side from the same weights on the same batches
//     and compares their first gradients and their losses; exits 1 if they
//     disagree; W2 only over --check=3 steps, see CheckRoutes)
//   bazel run -c opt //benchmarks:onednn_limit -- --info=1
//     (one JSON line: oneDNN's version, its effective CPU ISA and the routes)
//
// Prints one JSON line like benchmarks/gradflow_runner.cc.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "benchmarks/runner_flags.h"
#include "core/fashion_mnist.h"
#include "core/random.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using Tag = memory::format_tag;

constexpr float kEluAlpha = 1.0f;

enum class Route { kInnerProduct, kMatmul };
struct NamedRoute {
  const char* name;  // the --route value
  Route route;
};
constexpr NamedRoute kRoutes[] = {{"inner_product", Route::kInnerProduct}, {"matmul", Route::kMatmul}};

memory::desc Matrix(int64_t rows, int64_t cols) {
  return memory::desc({rows, cols}, memory::data_type::f32, Tag::nc);
}
// The transpose of a row-major [rows, cols] matrix, read in place: {cols, rows}
// with the strides swapped.
memory::desc Transposed(int64_t rows, int64_t cols) {
  return memory::desc({cols, rows}, memory::data_type::f32, memory::dims{1, cols});
}
// Keras's [in, out] row-major kernel seen as oneDNN's {out, in} inner-product weights.
memory::desc Kernel(int64_t in, int64_t out) { return Transposed(in, out); }
memory::desc Vector(int64_t n) { return memory::desc({n}, memory::data_type::f32, Tag::a); }

struct Layer {
  int64_t in, out;
  float *w, *b, *dw, *db;  // into the contiguous parameter and gradient buffers
  bool elu;
  // fwd: inner product or matmul, with the bias and the ELU post-op.
  // inner_product route: bwd_weights computes dW and db, bwd_data dX.
  // matmul route: bwd_weights dW = Xᵀ·dZ, bwd_bias db = 1ᵀ·dZ, bwd_data dX = dZ·Wᵀ.
  dnnl::primitive fwd, bwd_weights, bwd_bias, bwd_data;
  dnnl::eltwise_backward elu_bwd;
  memory mw, mb, mdw, mdb, mh, mdh;  // h = this layer's output, dh its gradient
  memory mxt, mwt;                   // matmul route: Xᵀ (X = the layer's input) and Wᵀ
};

class Net {
 public:
  Net(const std::vector<int64_t>& widths, int64_t batch, bool train, bool adam, Route route)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_), batch_(batch), train_(train), adam_(adam),
        route_(route) {
    size_t total = 0;
    for (size_t l = 0; l + 1 < widths.size(); ++l) total += widths[l] * widths[l + 1] + widths[l + 1];
    params_.assign(total, 0);
    grads_.assign(total, 0);
    slot1_.assign(total, 0);
    slot2_.assign(total, 0);
    gradflow::Rng rng(42);
    float* p = params_.data();
    float* g = grads_.data();
    input_ = memory(Matrix(batch, widths[0]), engine_);
    if (train && route == Route::kMatmul) {
      ones_ = memory(Matrix(1, batch), engine_);
      std::fill_n(static_cast<float*>(ones_.get_data_handle()), batch, 1.0f);
    }
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      Layer L;
      L.in = widths[l];
      L.out = widths[l + 1];
      L.elu = l + 2 < widths.size();
      L.w = p, L.dw = g;
      p += L.in * L.out, g += L.in * L.out;
      L.b = p, L.db = g;
      p += L.out, g += L.out;
      const double stddev = std::sqrt(2.0 / L.in);  // He normal (the limit's speed ignores truncation)
      for (int64_t i = 0; i < L.in * L.out; ++i) L.w[i] = static_cast<float>(stddev * rng.Normal());
      dnnl::primitive_attr attr;
      if (L.elu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, algorithm::eltwise_elu, kEluAlpha, 0.0f);
        attr.set_post_ops(ops);
      }
      const memory::desc dst = Matrix(batch, L.out);
      L.mh = memory(dst, engine_);
      if (train) L.mdh = memory(dst, engine_);
      if (route == Route::kInnerProduct) {
        BuildInnerProduct(L, attr);
      } else {
        BuildMatmul(L, attr, (l ? layers_[l - 1].mh : input_).get_data_handle());
      }
      if (train && L.elu) L.elu_bwd = EluBackward(dst);
      layers_.push_back(std::move(L));
    }
  }

  // One training step on the rows `order[0, batch)` of x [N, in], labels y.
  float TrainStep(const float* x, const int32_t* y, const int64_t* order) {
    const int64_t in = layers_[0].in;
    auto* xb = static_cast<float*>(input_.get_data_handle());
    labels_.resize(batch_);
    for (int64_t i = 0; i < batch_; ++i) {
      std::memcpy(xb + i * in, x + order[i] * in, in * sizeof(float));
      labels_[i] = y[order[i]];
    }
    Forward();
    const float loss = SoftmaxCrossEntropyGrad();
    for (size_t l = layers_.size(); l-- > 0;) {
      Layer& L = layers_[l];
      BackwardWeights(L, l ? layers_[l - 1].mh : input_);
      if (l == 0) break;
      Layer& B = layers_[l - 1];
      BackwardData(L, B.mdh);
      B.elu_bwd.execute(stream_, {{DNNL_ARG_DST, B.mh}, {DNNL_ARG_DIFF_DST, B.mdh},
                                  {DNNL_ARG_DIFF_SRC, B.mdh}});
    }
    stream_.wait();
    Update();
    return loss;
  }

  // Inference on rows [0, batch) of x read in place; probabilities in the last layer's h.
  void Predict(const float* x) {
    input_.set_data_handle(const_cast<float*>(x));
    Forward();
    stream_.wait();
    Layer& last = layers_.back();
    auto* z = static_cast<float*>(last.mh.get_data_handle());
    for (int64_t i = 0; i < batch_; ++i) {
      float* row = z + i * last.out;
      const float mx = *std::max_element(row, row + last.out);
      float sum = 0;
      for (int64_t k = 0; k < last.out; ++k) sum += (row[k] = std::exp(row[k] - mx));
      for (int64_t k = 0; k < last.out; ++k) row[k] /= sum;
    }
  }

  // The last step's gradients, all parameters in one buffer.
  const std::vector<float>& grads() const { return grads_; }

 private:
  void BuildInnerProduct(Layer& L, const dnnl::primitive_attr& attr) {
    const prop_kind prop = train_ ? prop_kind::forward_training : prop_kind::forward_inference;
    const memory::desc src = Matrix(batch_, L.in), dst = Matrix(batch_, L.out);
    auto fwd_pd = dnnl::inner_product_forward::primitive_desc(
        {prop, src, Kernel(L.in, L.out), Vector(L.out), dst}, attr, engine_);
    L.fwd = dnnl::inner_product_forward(fwd_pd);
    L.mw = memory(Kernel(L.in, L.out), engine_, L.w);
    L.mb = memory(Vector(L.out), engine_, L.b);
    if (!train_) return;
    L.mdw = memory(Kernel(L.in, L.out), engine_, L.dw);
    L.mdb = memory(Vector(L.out), engine_, L.db);
    auto bd_pd = dnnl::inner_product_backward_data::primitive_desc(
        {src, Kernel(L.in, L.out), dst}, engine_, fwd_pd);
    L.bwd_data = dnnl::inner_product_backward_data(bd_pd);
    auto bw_pd = dnnl::inner_product_backward_weights::primitive_desc(
        {src, Kernel(L.in, L.out), Vector(L.out), dst}, engine_, fwd_pd);
    L.bwd_weights = dnnl::inner_product_backward_weights(bw_pd);
  }

  // W is the [in, out] row-major matrix it is, b a [1, out] row; `below` is
  // the buffer of the layer's input X, read as Xᵀ for dW.
  void BuildMatmul(Layer& L, const dnnl::primitive_attr& attr, void* below) {
    const memory::desc x = Matrix(batch_, L.in), w = Matrix(L.in, L.out), b = Matrix(1, L.out),
                       dz = Matrix(batch_, L.out);
    L.fwd = MatMul(x, w, dz, b, attr);
    L.mw = memory(w, engine_, L.w);
    L.mb = memory(b, engine_, L.b);
    if (!train_) return;
    L.bwd_weights = MatMul(Transposed(batch_, L.in), dz, w);
    L.bwd_bias = MatMul(Matrix(1, batch_), dz, b);
    L.bwd_data = MatMul(dz, Transposed(L.in, L.out), x);
    L.mxt = memory(Transposed(batch_, L.in), engine_, below);
    L.mwt = memory(Transposed(L.in, L.out), engine_, L.w);
    L.mdw = memory(w, engine_, L.dw);
    L.mdb = memory(b, engine_, L.db);
  }

  // dst = src · weights (+ bias): an empty `bias` desc means none.
  dnnl::matmul MatMul(const memory::desc& src, const memory::desc& weights, const memory::desc& dst,
                      const memory::desc& bias = {}, const dnnl::primitive_attr& attr = {}) {
    const auto desc =
        bias ? dnnl::matmul::desc(src, weights, bias, dst) : dnnl::matmul::desc(src, weights, dst);
    return dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, engine_));
  }

  // ELU's derivative from its output y, so z need not be kept: 1 where y > 0, y + alpha elsewhere.
  dnnl::eltwise_backward EluBackward(const memory::desc& h) {
    auto hint = dnnl::eltwise_forward::primitive_desc(
        {prop_kind::forward_training, algorithm::eltwise_elu_use_dst_for_bwd, h, kEluAlpha, 0.0f}, engine_);
    return dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
        {algorithm::eltwise_elu_use_dst_for_bwd, h, h, kEluAlpha, 0.0f}, engine_, hint));
  }

  // Both routes' forward primitives take the same arguments.
  void Forward() {
    memory* src = &input_;
    for (Layer& L : layers_) {
      L.fwd.execute(stream_, {{DNNL_ARG_SRC, *src}, {DNNL_ARG_WEIGHTS, L.mw}, {DNNL_ARG_BIAS, L.mb},
                              {DNNL_ARG_DST, L.mh}});
      src = &L.mh;
    }
  }

  // dW and db of L from its input `below` (the matmul route reads it through L.mxt) and its dh.
  void BackwardWeights(Layer& L, const memory& below) {
    if (route_ == Route::kInnerProduct) {
      L.bwd_weights.execute(stream_, {{DNNL_ARG_SRC, below}, {DNNL_ARG_DIFF_DST, L.mdh},
                                      {DNNL_ARG_DIFF_WEIGHTS, L.mdw}, {DNNL_ARG_DIFF_BIAS, L.mdb}});
      return;
    }
    L.bwd_weights.execute(stream_, {{DNNL_ARG_SRC, L.mxt}, {DNNL_ARG_WEIGHTS, L.mdh}, {DNNL_ARG_DST, L.mdw}});
    L.bwd_bias.execute(stream_, {{DNNL_ARG_SRC, ones_}, {DNNL_ARG_WEIGHTS, L.mdh}, {DNNL_ARG_DST, L.mdb}});
  }

  // L's input gradient dX, into `diff_src` (the dh of the layer below).
  void BackwardData(Layer& L, const memory& diff_src) {
    if (route_ == Route::kInnerProduct) {
      L.bwd_data.execute(stream_, {{DNNL_ARG_DIFF_DST, L.mdh}, {DNNL_ARG_WEIGHTS, L.mw},
                                   {DNNL_ARG_DIFF_SRC, diff_src}});
    } else {
      L.bwd_data.execute(stream_, {{DNNL_ARG_SRC, L.mdh}, {DNNL_ARG_WEIGHTS, L.mwt}, {DNNL_ARG_DST, diff_src}});
    }
  }

  // Mean cross-entropy of softmax(logits) and, into the last layer's dh, its
  // gradient (softmax - onehot) / batch: one pass per row.
  float SoftmaxCrossEntropyGrad() {
    Layer& last = layers_.back();
    const auto* z = static_cast<const float*>(last.mh.get_data_handle());
    auto* dz = static_cast<float*>(last.mdh.get_data_handle());
    const int64_t k_out = last.out;
    double loss = 0;
    for (int64_t i = 0; i < batch_; ++i) {
      const float* row = z + i * k_out;
      float* drow = dz + i * k_out;
      const float mx = *std::max_element(row, row + k_out);
      float sum = 0;
      for (int64_t k = 0; k < k_out; ++k) sum += (drow[k] = std::exp(row[k] - mx));
      const float inv = 1.0f / sum;
      loss += std::log(sum) - (row[labels_[i]] - mx);
      for (int64_t k = 0; k < k_out; ++k) drow[k] *= inv / batch_;
      drow[labels_[i]] -= 1.0f / batch_;
    }
    return static_cast<float>(loss / batch_);
  }

  // Chunks of kChunk parameters over the threads, each chunk one SIMD loop
  // over __restrict pointers (so GCC vectorizes it, sqrt included).
  static constexpr int64_t kChunk = 16384;
  void Update() {
    const int64_t n = static_cast<int64_t>(params_.size());
    float* __restrict w = params_.data();
    const float* __restrict g = grads_.data();
    float* __restrict m = slot1_.data();
    float* __restrict v = slot2_.data();
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    if (!adam_) {  // Keras SGD momentum: v = 0.9 v - lr g; w += v
      constexpr float lr = 0.01f, mu = 0.9f;
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd
        for (int64_t i = c * kChunk; i < end; ++i) {
          const float mi = mu * m[i] - lr * g[i];
          m[i] = mi;
          w[i] += mi;
        }
      }
      return;
    }
    ++step_;  // Keras Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
    constexpr float lr = 0.001f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
    const float lr_t = static_cast<float>(lr * std::sqrt(1 - std::pow(b2, step_)) / (1 - std::pow(b1, step_)));
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd
      for (int64_t i = c * kChunk; i < end; ++i) {
        const float mi = m[i] + (g[i] - m[i]) * (1 - b1);
        const float vi = v[i] + (g[i] * g[i] - v[i]) * (1 - b2);
        m[i] = mi;
        v[i] = vi;
        w[i] -= mi * lr_t / (std::sqrt(vi) + eps);
      }
    }
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  int64_t batch_;
  bool train_, adam_;
  Route route_;
  double step_ = 0;
  std::vector<float> params_, grads_, slot1_, slot2_;
  std::vector<int32_t> labels_;
  memory input_;
  memory ones_;  // matmul route: the [1, batch] row of ones that sums dZ into db
  std::vector<Layer> layers_;
};

// A runner may print a message and exit 2 on a bad flag (compare.py shows it).
int BadFlags(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 2;
}

std::string JoinedRouteNames(const std::string& quote) {
  std::string names;
  for (const NamedRoute& r : kRoutes) names += (names.empty() ? "" : ", ") + quote + r.name + quote;
  return names;
}

std::optional<Route> RouteNamed(const std::string& name) {
  for (const NamedRoute& r : kRoutes) {
    if (name == r.name) return r.route;
  }
  return std::nullopt;
}

// oneDNN 2.6 has no name function for its ISA enum; no default case, so a
// newer enum value is a -Wswitch warning here.
const char* IsaName(dnnl::cpu_isa isa) {
  using dnnl::cpu_isa;
  switch (isa) {
    case cpu_isa::all: return "all";
    case cpu_isa::sse41: return "sse41";
    case cpu_isa::avx: return "avx";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx512_mic: return "avx512_mic";
    case cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
  }
  return "unknown";
}

// For benchmarks/compare.py's header and its list of routes to run.
void PrintInfo() {
  const dnnl::version_t* v = dnnl::version();
  std::printf("{\"onednn\": \"%u.%u.%u\", \"isa\": \"%s\", \"routes\": [%s]}\n", v->major, v->minor, v->patch,
              IsaName(dnnl::get_effective_cpu_isa()), JoinedRouteNames("\"").c_str());
}

// The layer widths of W1 and W2, as benchmarks/workloads.cc builds them.
std::optional<std::vector<int64_t>> WidthsOf(const std::string& workload) {
  std::vector<int64_t> widths = {784};
  if (workload == "W1") {
    widths.insert(widths.end(), {300, 100});
  } else if (workload == "W2") {
    widths.insert(widths.end(), 20, 100);
  } else {
    return std::nullopt;
  }
  widths.push_back(10);
  return widths;
}

struct Setup {
  std::vector<int64_t> widths;
  int64_t batch, samples;
  bool train, adam;  // adam: W2's optimizer; W1 trains with SGD momentum
  Route route;
};

// Fisher-Yates, as Fit shuffles each epoch.
void Shuffle(std::vector<int64_t>& order, gradflow::Rng& rng) {
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
}

// The routes sum in different orders, so they agree to f32 rounding: the
// first step's gradients, measured, within 4e-7 (W1) and 2e-6 (W2, 22
// layers) of the largest gradient. Training then amplifies the differences,
// W2's far more: W1's losses agree within 6e-7 over 300 steps, W2's (Adam,
// whose first update is lr * sign(g)) drift from 1e-6 at step 3 to 5e-5 at
// step 5 (batch 256) and 6e-3 by step 30 (batch 32). That is W2's training,
// not the matmul route: the inner-product route against itself with its
// initial weights moved by one ulp drifts as fast (1e-4 at step 5, 3e-2 by
// step 30). So check W1 over hundreds of steps, W2 over 3.
constexpr double kGradientTolerance = 1e-5;  // of the largest |gradient|, first step
constexpr double kLossTolerance = 1e-4;      // relative, every step

// The largest |a_i - b_i| relative to the largest |a_i|.
double RelativeDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(a[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// Trains an inner-product and a matmul net side by side from the same initial
// weights on the same batches; 0 if their first gradients and their losses agree.
int CheckRoutes(const Setup& s, int64_t steps, const gradflow::Tensor& x, const gradflow::Tensor& y) {
  const int64_t rows = y.num_elements();
  if (steps * s.batch > rows) {
    return BadFlags("--check=" + std::to_string(steps) + " steps of " + std::to_string(s.batch) +
                    " rows need more than the " + std::to_string(rows) + " rows of the data");
  }
  Net ip(s.widths, s.batch, true, s.adam, Route::kInnerProduct);
  Net mm(s.widths, s.batch, true, s.adam, Route::kMatmul);
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  gradflow::Rng rng(42);
  Shuffle(order, rng);
  double gradient_diff = 0, loss_diff = 0;
  float loss_ip = 0, loss_mm = 0;
  for (int64_t step = 0; step < steps; ++step) {
    loss_ip = ip.TrainStep(x.data<float>(), y.data<int32_t>(), &order[step * s.batch]);
    loss_mm = mm.TrainStep(x.data<float>(), y.data<int32_t>(), &order[step * s.batch]);
    if (step == 0) gradient_diff = RelativeDifference(ip.grads(), mm.grads());
    loss_diff = std::max(loss_diff, std::abs(static_cast<double>(loss_mm) - loss_ip) / std::abs(loss_ip));
  }
  const bool ok = gradient_diff <= kGradientTolerance && loss_diff <= kLossTolerance;
  std::printf("%lld steps of batch %lld: first-step gradients differ by %.1e of the largest (tolerance %.0e); "
              "losses by up to %.1e relative (tolerance %.0e), last inner_product %.6f, matmul %.6f: %s\n",
              static_cast<long long>(steps), static_cast<long long>(s.batch), gradient_diff, kGradientTolerance,
              loss_diff, kLossTolerance, loss_ip, loss_mm, ok ? "agree" : "DISAGREE");
  return ok ? 0 : 1;
}

// Times `repeats` epochs over the first `samples` rows (after a warm-up step)
// and prints the JSON result line.
void Measure(const Setup& s, int repeats, const float* xs, const int32_t* ys, bool real_data) {
  // Full batches plus the remainder: one net per batch size, both built before timing.
  Net net(s.widths, s.batch, s.train, s.adam, s.route);
  const int64_t rest = s.samples % s.batch;
  std::optional<Net> tail;
  if (rest) tail.emplace(s.widths, rest, s.train, s.adam, s.route);
  std::vector<int64_t> order(s.samples);
  std::iota(order.begin(), order.end(), 0);
  gradflow::Rng rng(42);
  // Never read; kept because its zeroed 2.3 MiB (60k samples) are in the peak RSS of README's tables.
  std::vector<float> probs(s.samples * 10);
  auto epoch = [&] {
    double loss = 0;
    if (s.train) {
      Shuffle(order, rng);
      for (int64_t b = 0; b + s.batch <= s.samples; b += s.batch) loss += net.TrainStep(xs, ys, &order[b]);
      if (tail) loss += tail->TrainStep(xs, ys, &order[s.samples - rest]);
    } else {
      for (int64_t b = 0; b + s.batch <= s.samples; b += s.batch) net.Predict(xs + b * 784);
      if (tail) tail->Predict(xs + (s.samples - rest) * 784);
    }
    return loss;
  };
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    if (s.train) {  // warm-up: kernels JIT on first use
      net.TrainStep(xs, ys, order.data());
      if (tail) tail->TrainStep(xs, ys, order.data());
    } else {
      net.Predict(xs);
      if (tail) tail->Predict(xs);
    }
    auto start = std::chrono::steady_clock::now();
    volatile double loss = epoch();
    (void)loss;
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  gradflow::benchmarks::PrintRunnerResult(s.samples, seconds, omp_get_max_threads(), real_data);
}

}  // namespace

int main(int argc, char** argv) {
  gradflow::benchmarks::RunnerFlags flags = gradflow::benchmarks::DefaultRunnerFlags();
  flags["route"] = kRoutes[0].name;
  flags["check"] = "0";  // N > 0: compare the routes over N training steps instead of timing
  flags["info"] = "0";   // 1: print oneDNN's version, ISA and the routes, then exit
  if (!gradflow::benchmarks::ParseRunnerFlags(argc, argv, flags)) return 2;
  if (flags["info"] == "1") {
    PrintInfo();
    return 0;
  }
  const std::string workload = flags["workload"], mode = flags["mode"];
  const std::optional<std::vector<int64_t>> widths = WidthsOf(workload);
  const std::optional<Route> route = RouteNamed(flags["route"]);
  const int64_t batch = std::atoll(flags["batch"].c_str()), samples = std::atoll(flags["samples"].c_str());
  const int64_t check = std::atoll(flags["check"].c_str());
  if (!widths) return BadFlags("the oneDNN limit covers W1 and W2, not '" + workload + "'");
  if (!route) return BadFlags("unknown --route '" + flags["route"] + "'; use " + JoinedRouteNames(""));
  if (mode != "train" && mode != "predict") {
    return BadFlags("unknown --mode '" + mode + "'; use train or predict");
  }
  if (batch <= 0 || samples <= 0 || check < 0) {
    return BadFlags("--batch and --samples must be positive, --check >= 0");
  }
  const Setup setup{*widths, batch, samples, mode == "train", workload == "W2", *route};
  auto data = gradflow::LoadFashionMnist("train");
  if (check && !data.ok()) {
    return BadFlags("--check needs the Fashion-MNIST images (Debian's dataset-fashion-mnist)");
  }
  // Without the dataset: zeros of its shape (the limit's speed barely depends on the values).
  gradflow::Tensor x = data.ok() ? data->images : gradflow::Tensor(gradflow::DType::kF32, {60000, 28, 28});
  gradflow::Tensor y = data.ok() ? data->labels : gradflow::Tensor(gradflow::DType::kI32, {60000});
  // The same rule as nn::Sequential (nn/model.cc): a forward pass under 1M
  // multiply-adds runs on one thread, primitives created and run that way.
  int64_t macs_per_sample = 0;
  for (size_t l = 0; l + 1 < widths->size(); ++l) macs_per_sample += (*widths)[l] * (*widths)[l + 1];
  if (batch * macs_per_sample < (int64_t{1} << 20)) omp_set_num_threads(1);
  if (check) return CheckRoutes(setup, check, x, y);
  Measure(setup, std::atoi(flags["repeats"].c_str()), x.data<float>(), y.data<int32_t>(), data.ok());
  return 0;
}
