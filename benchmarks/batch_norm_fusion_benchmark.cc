// Can oneDNN 2.6 fuse batch normalization with the activation after it (W3)?
// It refuses eltwise post-ops on batch_normalization (the "Refused" check
// below reports it), and its one fusion, the fuse_norm_relu flag, selects
// the generic nspc_bnorm kernel instead of the jit one. This measures that
// fused primitive against the jit batch norm followed by a relu eltwise
// primitive in place, on the [rows, features] shapes of W3 (training form,
// channels-last [N, C, 1, 1], as ops/batch_norm.cc runs them).
//
//   bazel run -c opt //benchmarks:batch_norm_fusion_benchmark

#include <benchmark/benchmark.h>

#include <cstdio>
#include <unordered_map>
#include <vector>

#include "core/dnnl_context.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace gradflow {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;

struct Setup {
  memory::desc data, stats;
  std::vector<float> x, y, mean, variance, gamma, beta;
  Setup(int64_t rows, int64_t features)
      : data({rows, features, 1, 1}, memory::data_type::f32, memory::format_tag::nhwc),
        stats({features}, memory::data_type::f32, memory::format_tag::a),
        x(rows * features), y(rows * features), mean(features), variance(features),
        gamma(features, 1.0f), beta(features, 0.1f) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) * 0.1f - 0.8f;
  }
  std::unordered_map<int, memory> Args() {
    auto at = [](const memory::desc& d, std::vector<float>& v) { return memory(d, CpuEngine(), v.data()); };
    return {{DNNL_ARG_SRC, at(data, x)},         {DNNL_ARG_DST, at(data, y)},
            {DNNL_ARG_MEAN, at(stats, mean)},    {DNNL_ARG_VARIANCE, at(stats, variance)},
            {DNNL_ARG_SCALE, at(stats, gamma)},  {DNNL_ARG_SHIFT, at(stats, beta)}};
  }
};

const auto kFlags = normalization_flags::use_scale | normalization_flags::use_shift;

void BM_BatchNormThenRelu(benchmark::State& state) {
  Setup s(state.range(0), state.range(1));
  dnnl::batch_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_training, s.data, 1e-3f, kFlags}, CpuEngine());
  dnnl::batch_normalization_forward bn(pd);
  dnnl::eltwise_forward relu(dnnl::eltwise_forward::primitive_desc(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu, s.data, 0.0f, 0.0f}, CpuEngine()));
  auto args = s.Args();
  std::unordered_map<int, memory> relu_args = {{DNNL_ARG_SRC, args[DNNL_ARG_DST]}, {DNNL_ARG_DST, args[DNNL_ARG_DST]}};
  for (auto _ : state) {
    bn.execute(CpuStream(), args);
    relu.execute(CpuStream(), relu_args);
    CpuStream().wait();
  }
  state.SetLabel(pd.impl_info_str());
}

void BM_FusedBatchNormRelu(benchmark::State& state) {
  Setup s(state.range(0), state.range(1));
  dnnl::batch_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_training, s.data, 1e-3f, kFlags | normalization_flags::fuse_norm_relu},
      CpuEngine());
  dnnl::batch_normalization_forward bn(pd);
  auto args = s.Args();
  memory workspace(pd.workspace_desc(), CpuEngine());  // the relu mask, for a backward pass
  args[DNNL_ARG_WORKSPACE] = workspace;
  for (auto _ : state) {
    bn.execute(CpuStream(), args);
    CpuStream().wait();
  }
  state.SetLabel(pd.impl_info_str());
}

BENCHMARK(BM_BatchNormThenRelu)->Args({32, 300})->Args({32, 100})->Args({256, 300});
BENCHMARK(BM_FusedBatchNormRelu)->Args({32, 300})->Args({32, 100})->Args({256, 300});

// Prints whether oneDNN accepts an ELU post-op on batch normalization.
void ReportEluPostOp() {
  Setup s(32, 300);
  dnnl::post_ops post_ops;
  post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_elu, 1.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(post_ops);
  try {
    dnnl::batch_normalization_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_training, s.data, 1e-3f, kFlags}, attr, CpuEngine());
    std::printf("ELU post-op on batch_normalization: accepted (%s)\n", pd.impl_info_str());
  } catch (const dnnl::error& e) {
    std::printf("ELU post-op on batch_normalization: refused (%s)\n", e.what());
  }
}

}  // namespace
}  // namespace gradflow

int main(int argc, char** argv) {
  gradflow::ReportEluPostOp();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
