// The raw oneDNN limit for the issue-7 workloads W1 and W2 (and W1 inference):
// only the work a perfect framework must do per training step, with every
// primitive created once and every buffer preallocated. It is the yardstick
// gradflow is measured against (target: >= 0.9x of its samples/s).
//
// Per training step: gather the shuffled batch rows into one buffer (as Fit
// does); per layer an inner product forward with ELU as a post-op (none on the
// logits); softmax + cross-entropy + its gradient in one pass over the logits;
// per layer (last to first) inner-product backward-weights (dW and db
// together), backward-data and the ELU backward computed from the saved
// output, in place; one vectorized loop updating all parameters, which live
// in one contiguous buffer (SGD momentum 0.9 for W1, Adam for W2, Keras's
// formulas). Inference: inner products with ELU post-ops reading the input
// rows in place, then a softmax loop.
//
// Weights use gradflow's (Keras's) [in, out] row-major layout.
//
//   bazel run -c opt //benchmarks:onednn_limit -- --workload=W1 --mode=train --batch=32
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

memory::desc Matrix(int64_t rows, int64_t cols) {
  return memory::desc({rows, cols}, memory::data_type::f32, Tag::nc);
}
// Keras's [in, out] row-major kernel seen as oneDNN's {out, in} weights.
memory::desc Kernel(int64_t in, int64_t out) {
  return memory::desc({out, in}, memory::data_type::f32, memory::dims{1, out});
}
memory::desc Vector(int64_t n) { return memory::desc({n}, memory::data_type::f32, Tag::a); }

struct Layer {
  int64_t in, out;
  float *w, *b, *dw, *db;  // into the contiguous parameter and gradient buffers
  bool elu;
  dnnl::inner_product_forward fwd;
  dnnl::inner_product_backward_data bwd_data;
  dnnl::inner_product_backward_weights bwd_weights;
  dnnl::eltwise_backward elu_bwd;
  memory mw, mb, mdw, mdb, mh, mdh;  // h = this layer's output, dh its gradient
};

class Net {
 public:
  Net(const std::vector<int64_t>& widths, int64_t batch, bool train, bool adam)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_), batch_(batch), adam_(adam) {
    size_t total = 0;
    for (size_t l = 0; l + 1 < widths.size(); ++l) total += widths[l] * widths[l + 1] + widths[l + 1];
    params_.assign(total, 0);
    grads_.assign(total, 0);
    slot1_.assign(total, 0);
    slot2_.assign(total, 0);
    gradflow::Rng rng(42);
    float* p = params_.data();
    float* g = grads_.data();
    const prop_kind prop = train ? prop_kind::forward_training : prop_kind::forward_inference;
    input_ = memory(Matrix(batch, widths[0]), engine_);
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
      const memory::desc src = Matrix(batch, L.in), dst = Matrix(batch, L.out);
      auto fwd_pd = dnnl::inner_product_forward::primitive_desc(
          {prop, src, Kernel(L.in, L.out), Vector(L.out), dst}, attr, engine_);
      L.fwd = dnnl::inner_product_forward(fwd_pd);
      L.mw = memory(Kernel(L.in, L.out), engine_, L.w);
      L.mb = memory(Vector(L.out), engine_, L.b);
      L.mh = memory(dst, engine_);
      if (train) {
        L.mdw = memory(Kernel(L.in, L.out), engine_, L.dw);
        L.mdb = memory(Vector(L.out), engine_, L.db);
        L.mdh = memory(dst, engine_);
        auto bd_pd = dnnl::inner_product_backward_data::primitive_desc(
            {src, Kernel(L.in, L.out), dst}, engine_, fwd_pd);
        L.bwd_data = dnnl::inner_product_backward_data(bd_pd);
        auto bw_pd = dnnl::inner_product_backward_weights::primitive_desc(
            {src, Kernel(L.in, L.out), Vector(L.out), dst}, engine_, fwd_pd);
        L.bwd_weights = dnnl::inner_product_backward_weights(bw_pd);
        if (L.elu) {
          auto hint = dnnl::eltwise_forward::primitive_desc(
              {prop_kind::forward_training, algorithm::eltwise_elu_use_dst_for_bwd, dst, kEluAlpha, 0.0f},
              engine_);
          L.elu_bwd = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
              {algorithm::eltwise_elu_use_dst_for_bwd, dst, dst, kEluAlpha, 0.0f}, engine_, hint));
        }
      }
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
    memory* src = &input_;
    for (Layer& L : layers_) {
      L.fwd.execute(stream_, {{DNNL_ARG_SRC, *src}, {DNNL_ARG_WEIGHTS, L.mw}, {DNNL_ARG_BIAS, L.mb},
                              {DNNL_ARG_DST, L.mh}});
      src = &L.mh;
    }
    const float loss = SoftmaxCrossEntropyGrad();
    for (size_t l = layers_.size(); l-- > 0;) {
      Layer& L = layers_[l];
      memory& below = l ? layers_[l - 1].mh : input_;
      L.bwd_weights.execute(stream_, {{DNNL_ARG_SRC, below}, {DNNL_ARG_DIFF_DST, L.mdh},
                                      {DNNL_ARG_DIFF_WEIGHTS, L.mdw}, {DNNL_ARG_DIFF_BIAS, L.mdb}});
      if (l == 0) break;
      Layer& B = layers_[l - 1];
      L.bwd_data.execute(stream_, {{DNNL_ARG_DIFF_DST, L.mdh}, {DNNL_ARG_WEIGHTS, L.mw},
                                   {DNNL_ARG_DIFF_SRC, B.mdh}});
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
    memory* src = &input_;
    for (Layer& L : layers_) {
      L.fwd.execute(stream_, {{DNNL_ARG_SRC, *src}, {DNNL_ARG_WEIGHTS, L.mw}, {DNNL_ARG_BIAS, L.mb},
                              {DNNL_ARG_DST, L.mh}});
      src = &L.mh;
    }
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

 private:
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
  bool adam_;
  double step_ = 0;
  std::vector<float> params_, grads_, slot1_, slot2_;
  std::vector<int32_t> labels_;
  memory input_;
  std::vector<Layer> layers_;
};

}  // namespace

int main(int argc, char** argv) {
  gradflow::benchmarks::RunnerFlags flags = gradflow::benchmarks::DefaultRunnerFlags();
  if (!gradflow::benchmarks::ParseRunnerFlags(argc, argv, flags)) return 2;
  const std::string workload = flags["workload"], mode = flags["mode"];
  const int64_t batch = std::atoll(flags["batch"].c_str()), samples = std::atoll(flags["samples"].c_str());
  std::vector<int64_t> widths = {784};
  if (workload == "W1") {
    widths.insert(widths.end(), {300, 100});
  } else if (workload == "W2") {
    widths.insert(widths.end(), 20, 100);
  } else {
    std::fprintf(stderr, "the oneDNN limit covers W1 and W2, not '%s'\n", workload.c_str());
    return 2;
  }
  widths.push_back(10);
  auto data = gradflow::LoadFashionMnist("train");
  // Without the dataset: zeros of its shape (the limit's speed barely depends on the values).
  gradflow::Tensor x = data.ok() ? data->images : gradflow::Tensor(gradflow::DType::kF32, {60000, 28, 28});
  gradflow::Tensor y = data.ok() ? data->labels : gradflow::Tensor(gradflow::DType::kI32, {60000});
  const bool train = mode == "train";
  // The same rule as nn::Sequential (nn/model.cc): a forward pass under 1M
  // multiply-adds runs on one thread, primitives created and run that way.
  int64_t macs_per_sample = 0;
  for (size_t l = 0; l + 1 < widths.size(); ++l) macs_per_sample += widths[l] * widths[l + 1];
  if (batch * macs_per_sample < (int64_t{1} << 20)) omp_set_num_threads(1);
  // Full batches plus the remainder: one net per batch size, both built before timing.
  Net net(widths, batch, train, workload == "W2");
  const int64_t rest = samples % batch;
  std::optional<Net> tail;
  if (rest) tail.emplace(widths, rest, train, workload == "W2");
  std::vector<int64_t> order(samples);
  std::iota(order.begin(), order.end(), 0);
  gradflow::Rng rng(42);
  const float* xs = x.data<float>();
  const int32_t* ys = y.data<int32_t>();
  std::vector<float> probs(samples * 10);
  auto epoch = [&] {
    double loss = 0;
    if (train) {
      for (int64_t i = samples - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
      for (int64_t b = 0; b + batch <= samples; b += batch) loss += net.TrainStep(xs, ys, &order[b]);
      if (tail) loss += tail->TrainStep(xs, ys, &order[samples - rest]);
    } else {
      for (int64_t b = 0; b + batch <= samples; b += batch) net.Predict(xs + b * 784);
      if (tail) tail->Predict(xs + (samples - rest) * 784);
    }
    return loss;
  };
  std::vector<double> seconds;
  for (int r = 0; r < std::atoi(flags["repeats"].c_str()); ++r) {
    if (train) {  // warm-up: kernels JIT on first use
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
  gradflow::benchmarks::PrintRunnerResult(samples, seconds, omp_get_max_threads(), data.ok());
  return 0;
}
