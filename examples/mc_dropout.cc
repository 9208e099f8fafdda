// Monte Carlo dropout (the chapter's MC dropout section): train the dropout
// model on Fashion-MNIST, then compare one deterministic pass (dropout off)
// with the mean of many stochastic passes (model.Call(x, {.training = true}),
// Keras's model(X, training=True)), and print the predicted probabilities and
// their standard deviation for a few test images. (nn::PredictMC computes the
// same statistics in batches, without holding every pass.)
//
//   bazel run -c opt //examples:mc_dropout -- --epochs=20 --passes=100

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/tensor_ops.h"
#include "examples/example_util.h"
#include "nn/dropout_layers.h"
#include "nn/model.h"

using namespace gradflow;

namespace {

int ArgMax(const float* p, int n) {
  int best = 0;
  for (int k = 1; k < n; ++k) best = p[k] > p[best] ? k : best;
  return best;
}

// Accuracy and mean cross-entropy of probability rows against labels.
std::pair<double, double> Score(const Tensor& probabilities, const Tensor& labels) {
  const int64_t n = labels.shape()[0];
  const int classes = static_cast<int>(probabilities.num_elements() / n);
  int64_t correct = 0;
  double log_loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probabilities.data<float>() + i * classes;
    const int label = labels.data<int32_t>()[i];
    correct += ArgMax(p, classes) == label;
    log_loss -= std::log(std::max(double(p[label]), 1e-7));  // Keras clips at epsilon 1e-7
  }
  return {double(correct) / n, log_loss / n};
}

void PrintRow(const char* what, const float* v, int n) {
  std::printf("  %-14s", what);
  for (int k = 0; k < n; ++k) std::printf(" %6.3f", v[k]);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"epochs", "20"}, {"batch_size", "32"}, {"learning_rate", "0.001"},
                                     {"rate", "0.2"}, {"passes", "100"}, {"images", "3"}, {"optimizer", "nadam"},
                                     {"seed", "42"}, {"verbose", "2"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const double rate = flags.num("rate");
  const nn::DenseOptions hidden{.activation = "elu", .kernel_initializer = "he_normal"};
  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::Dropout(rate),
      nn::Dense(300, hidden),
      nn::Dropout(rate),
      nn::Dense(100, hidden),
      nn::Dropout(rate),
      nn::Dense(10, {.activation = "softmax"}),
  });
  // --optimizer=nadam (the chapter's choice) or sgd (Nesterov momentum 0.9).
  optimizers::Optimizer optimizer = optimizers::Nadam{.learning_rate = flags.num("learning_rate")};
  if (flags.str("optimizer") == "sgd") {
    optimizer = optimizers::SGD{.learning_rate = flags.num("learning_rate"), .momentum = 0.9, .nesterov = true};
  } else if (flags.str("optimizer") != "nadam") {
    std::fprintf(stderr, "error: --optimizer must be sgd or nadam\n");
    return 2;
  }
  absl::Status status = model.Compile(
      {.loss = "sparse_categorical_crossentropy",
       .optimizer = optimizer,
       .metrics = {"accuracy"},
       .seed = static_cast<uint64_t>(flags.integer("seed"))});
  if (!status.ok()) return examples::Fail(status);
  auto history = model.Fit(data->x_train, data->y_train, examples::FitOptionsFromFlags(flags, *data));
  if (!history.ok()) return examples::Fail(history.status());

  auto deterministic = model.Predict(data->x_test, 1000);
  if (!deterministic.ok()) return examples::Fail(deterministic.status());
  // The chapter's
  //   y_probas = np.stack([model(X_test, training=True) for sample in range(100)])
  //   y_proba = y_probas.mean(axis=0); y_std = y_probas.std(axis=0)
  const int passes = flags.integer("passes");
  std::vector<Tensor> samples;
  for (int sample = 0; sample < passes; ++sample) {
    auto y = model.Call(data->x_test, {.training = true});
    if (!y.ok()) return examples::Fail(y.status());
    samples.push_back((*y)[0]);
  }
  auto y_probas = Stack(samples, 0);
  if (!y_probas.ok()) return examples::Fail(y_probas.status());
  auto y_proba = Mean(*y_probas, 0), y_std = Std(*y_probas, 0);
  if (!y_proba.ok() || !y_std.ok()) return examples::Fail(y_proba.ok() ? y_std.status() : y_proba.status());

  auto [det_accuracy, det_loss] = Score(*deterministic, data->y_test);
  auto [mc_accuracy, mc_loss] = Score(*y_proba, data->y_test);
  std::printf("\ntest set (10,000 images):\n");
  std::printf("  one deterministic pass (dropout off): accuracy %.4f  cross-entropy %.4f\n", det_accuracy, det_loss);
  std::printf("  mean of %d MC dropout passes:         accuracy %.4f  cross-entropy %.4f\n", passes, mc_accuracy,
              mc_loss);

  std::printf("  MC minus deterministic: accuracy %+.4f, cross-entropy %+.4f\n", mc_accuracy - det_accuracy,
              mc_loss - det_loss);
  double mean_std = 0;
  for (float s : y_std->flat<float>()) mean_std += s;
  std::printf("  mean standard deviation of the MC probabilities: %.4f\n", mean_std / y_std->num_elements());

  std::printf("\nclasses:");
  for (int k = 0; k < 10; ++k) std::printf(" %d=%s", k, kFashionMnistClassNames[k]);
  std::printf("\n");
  for (int i = 0; i < flags.integer("images"); ++i) {
    const float* det = deterministic->data<float>() + i * 10;
    const float* mean = y_proba->data<float>() + i * 10;
    const float* sd = y_std->data<float>() + i * 10;
    const int label = data->y_test.data<int32_t>()[i];
    std::printf("test image %d (true class %d, %s):\n", i, label, kFashionMnistClassNames[label]);
    PrintRow("deterministic", det, 10);
    PrintRow("MC mean", mean, 10);
    PrintRow("MC std", sd, 10);
  }
  return 0;
}
