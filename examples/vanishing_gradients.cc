// Vanishing and exploding gradients in a deep MLP (the chapter's opening
// problem), measured with nn::GradientDiagnostics: a Fashion-MNIST
// classifier with --layers hidden Dense layers of --units units, for six
// activation / initialization pairings:
//
//   sigmoid + N(0, 1)     the pre-2010 default the chapter starts from
//   tanh + Glorot         Glorot & Bengio (2010), Keras's glorot_uniform
//   ReLU + He             He et al. (2015), he_normal
//   ELU + He              Clevert et al. (2015)
//   SELU + LeCun          Klambauer et al. (2017): lecun_normal, standardized inputs
//   ReLU + He + BN        Ioffe & Szegedy (2015): Dense (no bias), BN, ReLU
//
// For each, the L2 norm of the loss gradient w.r.t. every hidden kernel on a
// fixed batch of 256 validation images, at initialization and after
// --steps SGD steps, and the ratio first / last hidden layer: << 1 means the
// lower layers barely learn (vanishing), >> 1 that they get the largest
// updates (exploding).
//
// All configurations get the same per-pixel standardized inputs (the
// chapter standardizes them for SELU; doing it for all keeps the comparison
// about the activations and initializers).
//
//   bazel run -c opt //examples:vanishing_gradients
//   bazel run -c opt //examples:vanishing_gradients -- --layers=20 --print_every=1 --only=SELU
//
// It prints, per configuration, every --print_every-th hidden layer's
// |dL/dW| (kernel), |dL/dh| (its output) and the stddev of h, then a summary
// of first/last ratios. The BN configuration shows the gradient explosion
// at initialization that Yang et al. ("A Mean Field Theory of Batch
// Normalization", ICLR 2019) derive for deep BN networks: |dL/dh| grows by
// about sqrt(pi / (pi - 1)) = 1.21 per ReLU layer going down, 1.21^49 ~ 1e4
// over 50 layers; training brings the ratio back near 1.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/initializers.h"
#include "core/random.h"
#include "examples/example_util.h"
#include "nn/diagnostics.h"
#include "nn/model.h"
#include "nn/normalization.h"

using namespace gradflow;

namespace {

// Pixels with a smaller training stddev (the always-black corners) are
// divided by this instead, so a rare non-zero value stays moderate.
constexpr double kMinPixelStddev = 0.01;
constexpr int64_t kDiagnosticBatch = 256;

struct Config {
  const char* label;
  const char* activation;
  const char* initializer;   // Keras name; "normal" = N(0, 1), set after Compile
  bool batch_norm = false;
};

const Config kConfigs[] = {
    {"sigmoid + N(0,1)", "sigmoid", "normal"},
    {"tanh + Glorot", "tanh", "glorot_uniform"},
    {"ReLU + He", "relu", "he_normal"},
    {"ELU + He", "elu", "he_normal"},
    {"SELU + LeCun", "selu", "lecun_normal"},
    {"ReLU + He + BN", "relu", "he_normal", true},
};

// Per-pixel standardization with the statistics of `train`, applied to both.
void Standardize(Tensor& train, std::vector<Tensor*> others) {
  const int64_t n = train.shape()[0], d = train.num_elements() / n;
  std::vector<double> mean(d, 0), var(d, 0);
  const float* x = train.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
  }
  for (double& m : mean) m /= n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) var[j] += (x[i * d + j] - mean[j]) * (x[i * d + j] - mean[j]);
  }
  others.push_back(&train);
  for (Tensor* t : others) {
    float* p = t->data<float>();
    for (int64_t i = 0; i < t->shape()[0]; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        const double stddev = std::max(std::sqrt(var[j] / n), kMinPixelStddev);
        p[i * d + j] = static_cast<float>((p[i * d + j] - mean[j]) / stddev);
      }
    }
  }
}

nn::Sequential BuildModel(const Config& c, int layers, int64_t units) {
  std::vector<nn::LayerPtr> stack = {nn::Flatten(Shape{28, 28})};
  const std::string init = std::string(c.initializer) == "normal" ? "glorot_uniform" : c.initializer;
  for (int i = 0; i < layers; ++i) {
    if (c.batch_norm) {
      stack.push_back(nn::Dense(units, {.kernel_initializer = init, .use_bias = false}));
      stack.push_back(nn::BatchNormalization());
      stack.push_back(nn::Activation(c.activation));
    } else {
      stack.push_back(nn::Dense(units, {.activation = c.activation, .kernel_initializer = init}));
    }
  }
  stack.push_back(nn::Dense(10, {.activation = "softmax"}));
  return nn::Sequential(std::move(stack));
}

// Every Dense kernel redrawn from N(0, 1) (the "normal" configuration).
absl::Status SetStandardNormalKernels(nn::Model& model, uint64_t seed) {
  GF_ASSIGN_OR_RETURN(auto weights, model.GetWeights());
  Rng rng(seed);
  for (auto& [name, value] : weights) {
    if (name.size() >= 7 && name.compare(name.size() - 7, 7, "/kernel") == 0) {
      Initialize(RandomNormal(0.0, 1.0), rng, value);
    }
  }
  return model.SetWeights(weights);
}

// Per hidden block (a Dense with its activation, or Dense + BN + Activation):
// |dL/dW| of the Dense kernel, and |dL/dh| and the stddev of the block's
// output h (the activation).
struct HiddenStats {
  std::vector<double> kernel_grad, output_grad, act_std;
};

HiddenStats Hidden(const nn::BatchDiagnostics& d) {
  HiddenStats h;
  int dense_seen = 0, dense_total = 0;
  for (const auto& l : d.layers) dense_total += l.type == "Dense";
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const auto& l = d.layers[i];
    if (l.type != "Dense" || ++dense_seen == dense_total) continue;  // skip the output layer
    const size_t out = i + 2 < d.layers.size() && d.layers[i + 1].type == "BatchNormalization" ? i + 2 : i;
    h.kernel_grad.push_back(l.kernel_gradient_norm.value_or(NAN));
    h.output_grad.push_back(d.layers[out].output_gradient_norm.value_or(NAN));
    h.act_std.push_back(d.layers[out].activation_std);
  }
  return h;
}

struct Result {
  const char* label;
  double kernel_ratio_init, kernel_ratio_trained, output_ratio_init, output_ratio_trained;
  double loss_init, loss_trained, val_accuracy, seconds;
};

}  // namespace

int main(int argc, char** argv) {
  // --only: run only the configurations whose label contains this.
  examples::Flags flags(argc, argv, {{"layers", "50"}, {"units", "100"}, {"steps", "500"}, {"batch_size", "32"},
                                     {"learning_rate", "0.01"}, {"print_every", "10"}, {"only", ""}, {"seed", "42"}});
  const int layers = flags.integer("layers"), steps = flags.integer("steps");
  const int64_t units = flags.integer("units"), batch_size = flags.integer("batch_size");
  const int print_every = std::max(1, flags.integer("print_every"));
  const uint64_t seed = static_cast<uint64_t>(flags.integer("seed"));
  if (layers < 2 || steps < 1 || units < 1 || batch_size < 1) {
    std::fprintf(stderr, "needs --layers >= 2, --steps >= 1, --units >= 1, --batch_size >= 1\n");
    return 2;
  }
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const int64_t train_size = std::min<int64_t>(steps * batch_size, data->x_train.shape()[0]);
  Tensor x_train = data->x_train.Slice(0, train_size).value(),
         y_train = data->y_train.Slice(0, train_size).value();
  Tensor x_valid = data->x_valid.Clone(), y_valid = data->y_valid;
  Standardize(x_train, {&x_valid});
  Tensor x_probe = x_valid.Slice(0, kDiagnosticBatch).value(),
         y_probe = y_valid.Slice(0, kDiagnosticBatch).value();

  std::printf("%d hidden layers of %lld units, SGD lr %g, %d steps of batch %lld (%lld images); "
              "gradient norms on %lld validation images\n\n",
              layers, static_cast<long long>(units), flags.num("learning_rate"), steps,
              static_cast<long long>(batch_size), static_cast<long long>(train_size),
              static_cast<long long>(kDiagnosticBatch));
  std::vector<Result> results;
  for (const Config& c : kConfigs) {
    if (std::string(c.label).find(flags.str("only")) == std::string::npos) continue;
    const auto start = std::chrono::steady_clock::now();
    nn::Sequential model = BuildModel(c, layers, units);
    absl::Status s = model.Compile({.optimizer = optimizers::SGD{.learning_rate = flags.num("learning_rate")},
                                    .metrics = {"accuracy"},
                                    .seed = seed});
    if (!s.ok()) return examples::Fail(s);
    if (std::string(c.initializer) == "normal") {
      if (absl::Status n = SetStandardNormalKernels(model, seed); !n.ok()) return examples::Fail(n);
    }
    nn::GradientDiagnostics probe(model);
    auto before = probe.Run(x_probe, y_probe);
    if (!before.ok()) return examples::Fail(before.status());
    auto fit = model.Fit(x_train, y_train, {.epochs = 1, .batch_size = batch_size, .verbose = 0});
    if (!fit.ok()) return examples::Fail(fit.status());
    auto after = probe.Run(x_probe, y_probe);
    if (!after.ok()) return examples::Fail(after.status());
    auto scores = model.Evaluate(x_valid, y_valid);
    if (!scores.ok()) return examples::Fail(scores.status());

    const HiddenStats init = Hidden(*before), trained = Hidden(*after);
    std::printf("== %s\n %5s %12s %12s %12s %12s %9s %9s\n", c.label, "layer", "|dL/dW| init",
                "|dL/dW| after", "|dL/dh| init", "|dL/dh| after", "std init", "std after");
    const size_t n = init.kernel_grad.size();
    for (size_t i = 0; i < n; ++i) {
      if (i % print_every != 0 && i + 1 != n) continue;
      std::printf(" %5zu %12.3e %12.3e %12.3e %12.3e %9.4f %9.4f\n", i + 1, init.kernel_grad[i],
                  trained.kernel_grad[i], init.output_grad[i], trained.output_grad[i],
                  init.act_std[i], trained.act_std[i]);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    results.push_back({c.label, init.kernel_grad.front() / init.kernel_grad.back(),
                       trained.kernel_grad.front() / trained.kernel_grad.back(),
                       init.output_grad.front() / init.output_grad.back(),
                       trained.output_grad.front() / trained.output_grad.back(), before->loss,
                       after->loss, (*scores)["accuracy"], seconds});
    std::printf(" (%.1f s)\n\n", seconds);
  }

  std::printf("Gradient-norm ratios, first / last hidden layer (%d layers; 1 = balanced, "
              "<< 1 vanishing, >> 1 exploding):\n", layers);
  std::printf(" %-17s %10s %10s %10s %10s %9s %9s %8s %7s\n", "configuration", "W init", "W after",
              "h init", "h after", "loss init", "loss aft", "val acc", "seconds");
  for (const Result& r : results) {
    std::printf(" %-17s %10.3e %10.3e %10.3e %10.3e %9.4f %9.4f %8.4f %7.1f\n", r.label,
                r.kernel_ratio_init, r.kernel_ratio_trained, r.output_ratio_init,
                r.output_ratio_trained, r.loss_init, r.loss_trained, r.val_accuracy, r.seconds);
  }
  std::printf("W: |dL/dW| of the hidden kernels; h: |dL/dh| of the hidden layers' outputs. After = "
              "after %d steps. Losses on the diagnostic batch (training phase); val acc on the "
              "5,000 validation images.\n", steps);
  return 0;
}
