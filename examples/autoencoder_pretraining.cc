// Pretraining when labels are scarce (the chapter's "Unsupervised
// Pretraining" and "Pretraining on an Auxiliary Task"): a Fashion-MNIST
// classifier Flatten -> Dense(100, selu) -> Dense(30, selu) -> Dense(10,
// softmax) trained on only 500 labeled images, three ways:
//
//   scratch      the whole classifier from random weights
//   autoencoder  a stacked autoencoder 784-100-30-100-784 (SELU, sigmoid
//                output, binary cross-entropy on the pixel values) first
//                learns from all 55,000 training images without their labels;
//                its encoder layers (shared Layer objects) go under a new
//                softmax head
//   rotation     an auxiliary task with free labels: predict by how many
//                quarter turns (0-3) each of the 55,000 unlabeled images was
//                rotated (Gidaris et al., 2018); its two hidden layers are reused
//
// Reused layers are frozen while the new head trains (--frozen_epochs, 10),
// then unfrozen and fine-tuned (--fine_tune_epochs, 40, at
// --fine_tune_learning_rate, 1e-3 like the rest: lower rates left the
// pretrained classifiers behind the one from scratch here). The classifier
// from scratch trains for the same 50 epochs. All use Nadam and are
// evaluated on the 10,000 test images; the table also shows each pretext
// task's own result (test reconstruction loss, test rotation accuracy).
//
//   bazel build -c opt //examples:autoencoder_pretraining
//   ./bazel-bin/examples/autoencoder_pretraining --seeds=42,1,2

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/random.h"
#include "examples/example_util.h"
#include "nn/model.h"

using namespace gradflow;

namespace {

constexpr int kSide = 28;
constexpr int kPixels = kSide * kSide;

// The classifier's hidden layers (fresh ones for each use).
std::vector<nn::LayerPtr> EncoderLayers() {
  return {nn::Flatten(Shape{kSide, kSide}),
          nn::Dense(100, {.activation = "selu", .kernel_initializer = "lecun_normal"}),
          nn::Dense(30, {.activation = "selu", .kernel_initializer = "lecun_normal"})};
}

// Every image rotated by a random number of quarter turns; the label is that number.
struct Rotated {
  Tensor x, y;
};

Rotated RotateRandomly(const Tensor& images, uint64_t seed) {
  const int64_t n = images.shape()[0];
  Rotated r{Tensor(DType::kF32, images.shape()), Tensor(DType::kI32, {n})};
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int turns = static_cast<int>(rng.Below(4));
    r.y.data<int32_t>()[i] = turns;
    const float* in = images.data<float>() + i * kPixels;
    float* out = r.x.data<float>() + i * kPixels;
    for (int row = 0; row < kSide; ++row) {
      for (int col = 0; col < kSide; ++col) {
        int src_row = row, src_col = col;  // out(row, col) = in after `turns` counter-clockwise turns
        for (int t = 0; t < turns; ++t) {
          const int next_row = src_col, next_col = kSide - 1 - src_row;
          src_row = next_row;
          src_col = next_col;
        }
        out[row * kSide + col] = in[src_row * kSide + src_col];
      }
    }
  }
  return r;
}

struct Settings {
  int head_epochs, frozen_epochs, fine_tune_epochs, verbose;
  double learning_rate, fine_tune_learning_rate;
  uint64_t seed;
};

nn::CompileOptions Nadam(double learning_rate, uint64_t seed, const std::string& loss = "sparse_categorical_crossentropy") {
  return {.loss = loss,
          .optimizer = optimizers::Nadam{.learning_rate = learning_rate},
          .metrics = loss == "sparse_categorical_crossentropy" ? std::vector<nn::Metric>{"accuracy"}
                                                               : std::vector<nn::Metric>{},
          .seed = seed};
}

// A new softmax head on `reused` (frozen, then fine-tuned), trained on the
// labeled images; returns the test accuracy.
absl::StatusOr<double> TrainClassifierOn(std::vector<nn::LayerPtr> reused, const Tensor& x, const Tensor& y,
                                         const Tensor& x_test, const Tensor& y_test, const Settings& s) {
  nn::Sequential model(std::move(reused), "classifier");
  model.Add(nn::Dense(10, {.activation = "softmax"}));
  const size_t num_reused = model.layers().size() - 1;
  for (size_t i = 0; i < num_reused; ++i) model.layers()[i]->trainable = false;
  GF_RETURN_IF_ERROR(model.Compile(Nadam(s.learning_rate, s.seed)));
  GF_RETURN_IF_ERROR(model.Fit(x, y, {.epochs = s.frozen_epochs, .verbose = s.verbose}).status());
  for (const nn::LayerPtr& layer : model.layers()) layer->trainable = true;
  GF_RETURN_IF_ERROR(model.Compile(Nadam(s.fine_tune_learning_rate, s.seed)));
  GF_RETURN_IF_ERROR(model.Fit(x, y, {.epochs = s.fine_tune_epochs, .verbose = s.verbose}).status());
  GF_ASSIGN_OR_RETURN(auto scores, model.Evaluate(x_test, y_test));
  return scores.at("accuracy");
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"seeds", "42"}, {"labels", "500"}, {"pretrain_epochs", "10"},
                                     {"frozen_epochs", "10"}, {"fine_tune_epochs", "40"}, {"learning_rate", "0.001"},
                                     {"fine_tune_learning_rate", "0.001"}, {"verbose", "0"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const int64_t labels = std::min<int64_t>(flags.integer("labels"), data->x_train.shape()[0]);
  const Tensor x_labeled = data->x_train.Slice(0, labels).value(),
               y_labeled = data->y_train.Slice(0, labels).value();
  const Tensor& unlabeled = data->x_train;  // all 55,000 images, labels unused
  const Tensor pixels = unlabeled.Reshaped({unlabeled.shape()[0], kPixels}).value();  // the autoencoder's targets
  std::printf("%lld labeled training images, %lld unlabeled for pretraining, %lld test images\n\n",
              (long long)labels, (long long)unlabeled.shape()[0], (long long)data->x_test.shape()[0]);

  std::printf("%-6s %-10s %-12s %-14s %-12s %-12s %-8s\n", "seed", "scratch", "autoencoder", "(recon. loss)",
              "rotation", "(rot. acc)", "seconds");
  for (const std::string& seed_text : std::vector<std::string>(absl::StrSplit(flags.str("seeds"), ','))) {
    const auto start = std::chrono::steady_clock::now();
    Settings s{.head_epochs = flags.integer("frozen_epochs") + flags.integer("fine_tune_epochs"),
               .frozen_epochs = flags.integer("frozen_epochs"),
               .fine_tune_epochs = flags.integer("fine_tune_epochs"),
               .verbose = flags.integer("verbose"),
               .learning_rate = flags.num("learning_rate"),
               .fine_tune_learning_rate = flags.num("fine_tune_learning_rate"),
               .seed = std::stoull(seed_text)};
    const int pretrain_epochs = flags.integer("pretrain_epochs");

    // 1. From scratch on the labeled images only.
    nn::Sequential scratch(EncoderLayers(), "scratch");
    scratch.Add(nn::Dense(10, {.activation = "softmax"}));
    if (auto st = scratch.Compile(Nadam(s.learning_rate, s.seed)); !st.ok()) return examples::Fail(st);
    if (auto h = scratch.Fit(x_labeled, y_labeled, {.epochs = s.head_epochs, .verbose = s.verbose}); !h.ok()) {
      return examples::Fail(h.status());
    }
    auto scratch_test = scratch.Evaluate(data->x_test, data->y_test);
    if (!scratch_test.ok()) return examples::Fail(scratch_test.status());

    // 2. Stacked autoencoder on the unlabeled images, then its encoder.
    std::vector<nn::LayerPtr> encoder = EncoderLayers();
    nn::Sequential autoencoder(encoder, "stacked_autoencoder");
    autoencoder.Add(nn::Dense(100, {.activation = "selu", .kernel_initializer = "lecun_normal"}));
    autoencoder.Add(nn::Dense(kPixels, {.activation = "sigmoid"}));
    if (auto st = autoencoder.Compile(Nadam(s.learning_rate, s.seed, "binary_crossentropy")); !st.ok()) return examples::Fail(st);
    if (auto h = autoencoder.Fit(unlabeled, pixels, {.epochs = pretrain_epochs, .verbose = s.verbose}); !h.ok()) {
      return examples::Fail(h.status());
    }
    auto reconstruction = autoencoder.Evaluate(data->x_test, data->x_test.Reshaped({data->x_test.shape()[0], kPixels}).value());
    if (!reconstruction.ok()) return examples::Fail(reconstruction.status());
    auto ae_accuracy = TrainClassifierOn(encoder, x_labeled, y_labeled, data->x_test, data->y_test, s);
    if (!ae_accuracy.ok()) return examples::Fail(ae_accuracy.status());

    // 3. Auxiliary task with generated labels: how many quarter turns?
    Rotated rotated = RotateRandomly(unlabeled, s.seed);
    Rotated rotated_test = RotateRandomly(data->x_test, s.seed + 1);
    std::vector<nn::LayerPtr> lower = EncoderLayers();
    nn::Sequential auxiliary(lower, "rotation");
    auxiliary.Add(nn::Dense(4, {.activation = "softmax"}));
    if (auto st = auxiliary.Compile(Nadam(s.learning_rate, s.seed)); !st.ok()) return examples::Fail(st);
    if (auto h = auxiliary.Fit(rotated.x, rotated.y, {.epochs = pretrain_epochs, .verbose = s.verbose}); !h.ok()) {
      return examples::Fail(h.status());
    }
    auto rotation_test = auxiliary.Evaluate(rotated_test.x, rotated_test.y);
    if (!rotation_test.ok()) return examples::Fail(rotation_test.status());
    auto rotation_accuracy = TrainClassifierOn(lower, x_labeled, y_labeled, data->x_test, data->y_test, s);
    if (!rotation_accuracy.ok()) return examples::Fail(rotation_accuracy.status());

    std::printf("%-6llu %-10.4f %-12.4f %-14.5f %-12.4f %-12.4f %-8.1f\n", (unsigned long long)s.seed,
                scratch_test->at("accuracy"), *ae_accuracy, reconstruction->at("loss"), *rotation_accuracy,
                rotation_test->at("accuracy"),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  }
  return 0;
}
