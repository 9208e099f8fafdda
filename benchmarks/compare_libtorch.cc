// The C++ (libtorch) twin of benchmarks/compare_pytorch.py: the same
// workloads, initialisation, optimizers and loop, without Python's per-op
// overhead. One measurement, printed as one JSON line.
//
// Not a Bazel target (CI machines have no libtorch): benchmarks/compare.sh
// builds it with
//   g++ -O2 -std=c++17 benchmarks/compare_libtorch.cc -I. -I/usr/include/torch/csrc/api/include \
//       -ltorch -ltorch_cpu -lc10 -lz -o <binary>

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "benchmarks/runner_flags.h"

namespace {

// Reads a gzip'd IDX file of bytes after `header` bytes; empty on failure.
std::vector<uint8_t> ReadGz(const std::string& path, int header) {
  std::vector<uint8_t> out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  if (static_cast<int>(out.size()) < header) return {};
  out.erase(out.begin(), out.begin() + header);
  return out;
}

torch::nn::Linear HeNormal(int64_t in, int64_t out, bool bias = true) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard no_grad;
  const double std = std::sqrt(2.0 / in) / 0.87962566103423978;  // Keras truncated-normal correction
  l->weight.normal_(0, std);
  for (;;) {  // truncated to [-2 std, 2 std] by resampling, as Keras
    torch::Tensor out = l->weight.abs() > 2 * std;
    if (!out.any().item<bool>()) break;
    l->weight.masked_scatter_(out, torch::empty_like(l->weight).normal_(0, std));
  }
  if (bias) l->bias.zero_();
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  gradflow::benchmarks::RunnerFlags flags = gradflow::benchmarks::DefaultRunnerFlags();
  if (!gradflow::benchmarks::ParseRunnerFlags(argc, argv, flags)) return 2;
  const auto [workload, mode, batch, samples, repeats] = gradflow::benchmarks::RunnerSettingsOf(flags);
  const char* threads_env = std::getenv("OMP_NUM_THREADS");
  torch::set_num_threads(threads_env ? std::atoi(threads_env) : 2);
  torch::manual_seed(42);

  const char* dir_env = std::getenv("GRADFLOW_FASHION_MNIST_DIR");
  const std::string dir = dir_env && *dir_env ? dir_env : "/usr/share/datasets/fashion-mnist";
  std::vector<uint8_t> images = ReadGz(dir + "/train-images-idx3-ubyte.gz", 16);
  std::vector<uint8_t> labels = ReadGz(dir + "/train-labels-idx1-ubyte.gz", 8);
  const bool real = images.size() == 60000u * 784 && labels.size() == 60000u;
  torch::Tensor x_all, y_all;
  if (real) {
    x_all = torch::from_blob(images.data(), {60000, 28, 28}, torch::kUInt8).to(torch::kFloat32).div_(255.0);
    y_all = torch::from_blob(labels.data(), {60000}, torch::kUInt8).to(torch::kInt64);
  } else {
    x_all = torch::rand({60000, 28, 28});
    y_all = torch::randint(0, 10, {60000}, torch::kInt64);
  }
  images = {};
  labels = {};
  torch::Tensor x = samples == 60000 ? x_all : x_all.slice(0, 0, samples).clone();
  torch::Tensor y = samples == 60000 ? y_all : y_all.slice(0, 0, samples).clone();

  torch::nn::Sequential model{torch::nn::Flatten()};
  int64_t width = 784;
  if (workload == "W1" || workload == "W4") {
    for (int64_t units : {300, 100}) {
      if (workload == "W4") model->push_back(torch::nn::Dropout(0.2));
      model->push_back(HeNormal(width, units));
      model->push_back(torch::nn::ELU());
      width = units;
    }
    if (workload == "W4") model->push_back(torch::nn::Dropout(0.2));
  } else if (workload == "W2") {
    for (int i = 0; i < 20; ++i) {
      model->push_back(HeNormal(width, 100));
      model->push_back(torch::nn::ELU());
      width = 100;
    }
  } else if (workload == "W3") {
    for (int64_t units : {300, 100}) {
      model->push_back(HeNormal(width, units, false));
      model->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(units).eps(1e-3).momentum(0.01)));
      model->push_back(torch::nn::ELU());
      width = units;
    }
  } else {
    std::fprintf(stderr, "unknown workload '%s'\n", workload.c_str());
    return 2;
  }
  model->push_back(HeNormal(width, 10));
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (workload == "W2") {
    opt = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(0.001).eps(1e-7));
  } else {
    opt = std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  }

  auto train_epoch = [&](const torch::Tensor& xs, const torch::Tensor& ys) {
    model->train();
    const int64_t n = xs.size(0);
    torch::Tensor order = torch::randperm(n);
    double loss_sum = 0;
    for (int64_t b = 0; b < n; b += batch) {
      torch::Tensor idx = order.slice(0, b, std::min(n, b + batch));
      torch::Tensor xb = xs.index_select(0, idx), yb = ys.index_select(0, idx);
      opt->zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(xb), yb);
      loss.backward();
      opt->step();
      loss_sum += loss.item<float>() * xb.size(0);
    }
    return loss_sum / n;
  };
  auto predict = [&](const torch::Tensor& xs) {
    model->eval();
    torch::InferenceMode guard;
    std::vector<torch::Tensor> outs;
    for (int64_t b = 0; b < xs.size(0); b += batch) {
      outs.push_back(torch::softmax(model->forward(xs.slice(0, b, std::min(xs.size(0), b + batch))), 1));
    }
    return torch::cat(outs);
  };

  std::vector<double> seconds;
  const int64_t warm = std::min(samples, 2 * batch);
  for (int r = 0; r < repeats; ++r) {
    if (mode == "train") {
      train_epoch(x.slice(0, 0, warm), y.slice(0, 0, warm));
    } else {
      predict(x.slice(0, 0, warm));
    }
    auto start = std::chrono::steady_clock::now();
    if (mode == "train") {
      train_epoch(x, y);
    } else {
      predict(x);
    }
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  gradflow::benchmarks::PrintRunnerResult(samples, seconds, torch::get_num_threads(), real);
  return 0;
}
