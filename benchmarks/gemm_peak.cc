// The CPU's matrix-multiply peak as oneDNN reaches it: one matmul of
// M x K by K x N, f32 or bf16 (bf16 operands, f32 result: the products of
// the mixed_bfloat16 policy). The yardstick for gradflow's GFLOP/s
// (benchmarks/compare.sh prints both). Prints one JSON line:
//   {"dtype": "bf16", "m": 2048, ..., "threads": 2, "best_s": ..., "median_s": ..., "gflops": ..., "isa": ...}
// The thread count is OMP_NUM_THREADS.
//
//   bazel run -c opt //benchmarks:gemm_peak -- --dtype=bf16
//
// A peak, not a step: the weights are reordered once, outside the timed
// runs, into the layout oneDNN picks (format_tag::any), and every run reuses
// the same buffers.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/dnnl_context.h"
#include "oneapi/dnnl/dnnl.hpp"

using namespace gradflow;
using dnnl::memory;

namespace {

struct Settings {
  std::string dtype;
  int64_t m, n, k;
  int reps;
};

// --name=value flags over the defaults; false (with usage printed) on a bad one.
bool ParseFlags(int argc, char** argv, std::map<std::string, std::string>& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.rfind("--", 0) == 0 && eq != std::string::npos ? arg.substr(2, eq - 2) : "";
    if (flags.count(name) == 0) {
      std::fprintf(stderr, "unknown argument '%s'; use --dtype=f32|bf16 --m= --n= --k= --reps=\n", arg.c_str());
      return false;
    }
    flags[name] = arg.substr(eq + 1);
  }
  return true;
}

// Seconds of each timed run, after two warm-up runs.
std::vector<double> TimeMatmul(const Settings& s) {
  const memory::data_type operands = s.dtype == "bf16" ? memory::data_type::bf16 : memory::data_type::f32;
  memory::desc src({s.m, s.k}, operands, memory::format_tag::ab);
  memory::desc any_weights({s.k, s.n}, operands, memory::format_tag::any);
  memory::desc dst({s.m, s.n}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, any_weights, dst), CpuEngine());
  memory a(src, CpuEngine()), c(dst, CpuEngine());
  memory b_plain(memory::desc({s.k, s.n}, operands, memory::format_tag::ab), CpuEngine());
  memory b(pd.weights_desc(), CpuEngine());
  // Zeros are as fast as any values for these kernels (no denormal paths in
  // f32 accumulation of exact zeros) and keep the run deterministic.
  std::fill_n(static_cast<char*>(a.get_data_handle()), src.get_size(), 0);
  std::fill_n(static_cast<char*>(b_plain.get_data_handle()), b_plain.get_desc().get_size(), 0);
  dnnl::reorder(b_plain, b).execute(CpuStream(), b_plain, b);
  dnnl::matmul matmul(pd);
  const std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
  std::vector<double> seconds;
  for (int r = -2; r < s.reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    matmul.execute(CpuStream(), args);
    CpuStream().wait();
    if (r >= 0) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {
      {"dtype", "f32"}, {"m", "2048"}, {"n", "2048"}, {"k", "2048"}, {"reps", "10"}};
  if (!ParseFlags(argc, argv, flags)) return 2;
  const Settings s{flags["dtype"], std::atoll(flags["m"].c_str()), std::atoll(flags["n"].c_str()),
                   std::atoll(flags["k"].c_str()), std::atoi(flags["reps"].c_str())};
  if ((s.dtype != "f32" && s.dtype != "bf16") || s.m <= 0 || s.n <= 0 || s.k <= 0 || s.reps <= 0 ||
      s.m * s.k > (int64_t{1} << 30) || s.k * s.n > (int64_t{1} << 30) || s.m * s.n > (int64_t{1} << 30)) {
    std::fprintf(stderr, "--dtype must be f32 or bf16, --m --n --k positive (each product below 2^30), --reps > 0\n");
    return 2;
  }
  if (s.dtype == "bf16") {
    if (absl::Status ok = CheckBFloat16Support("gemm_peak --dtype=bf16"); !ok.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(ok.message()).c_str());
      return 2;
    }
  }
  std::vector<double> seconds;
  try {
    seconds = TimeMatmul(s);
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "error: oneDNN: %s\n", e.what());
    return 2;
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double flop = 2.0 * double(s.m) * double(s.n) * double(s.k);
  std::printf("{\"dtype\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"threads\": %d, \"best_s\": %.6f, "
              "\"median_s\": %.6f, \"gflops\": %.1f, \"isa\": \"%s\"}\n",
              s.dtype.c_str(), static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k),
              omp_get_max_threads(), sorted.front(), sorted[sorted.size() / 2], flop / sorted.front() / 1e9,
              EffectiveCpuIsaName());
  return 0;
}
