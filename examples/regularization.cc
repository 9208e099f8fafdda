// The chapter's regularization models on Fashion-MNIST, each next to the same
// model without the regularizer, to show the overfitting gap it closes:
//
//   1. ELU / He normal MLP (300, 100 units), plain and with l2(0.01) on every
//      kernel (one DenseOptions value shared by the layers: the chapter's
//      functools.partial RegularizedDense);
//   2. the same MLP with Dropout(0.2) before every Dense layer;
//   3. a deep self-normalizing SELU network (20 x 100 units, LeCun normal,
//      standardized inputs), plain and with AlphaDropout(0.1) after every
//      second hidden layer.
//
// For each: accuracy on the training set (measured in inference mode, so
// dropout is off), on the validation set, the gap between them, and on the
// test set. The MLPs train with Nadam (as in the chapter), the SELU nets with
// SGD + Nesterov momentum; --models=0,2 runs a subset.
//
//   bazel run -c opt //examples:regularization -- --epochs=20

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "examples/example_util.h"
#include "nn/dropout_layers.h"
#include "nn/model.h"

using namespace gradflow;

namespace {

struct Result {
  std::string name;
  double train_accuracy = 0, valid_accuracy = 0, test_accuracy = 0;
  double reported_train_accuracy = 0;  // Fit's running mean, dropout on
  double seconds_per_epoch = 0;
};

struct Data {
  Tensor x_train, y_train, x_valid, y_valid, x_test, y_test;
};

// The chapter's standardization for SELU: (x - pixel mean) / pixel std, with
// the training set's statistics (pixels that never vary map to 0).
Data Standardized(const examples::FashionMnistSplits& d) {
  const int64_t n = d.x_train.shape()[0], features = d.x_train.num_elements() / n;
  std::vector<double> mean(features, 0), square(features, 0);
  const float* x = d.x_train.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t f = 0; f < features; ++f) {
      mean[f] += x[i * features + f];
      square[f] += double(x[i * features + f]) * x[i * features + f];
    }
  }
  std::vector<float> shift(features), scale(features);
  for (int64_t f = 0; f < features; ++f) {
    const double m = mean[f] / n, sd = std::sqrt(std::max(0.0, square[f] / n - m * m));
    shift[f] = static_cast<float>(m);
    scale[f] = sd > 0 ? static_cast<float>(1.0 / sd) : 0.0f;
  }
  auto apply = [&](const Tensor& t) {
    Tensor out = t.Clone();
    float* v = out.data<float>();
    for (int64_t i = 0; i < out.num_elements(); ++i) v[i] = (v[i] - shift[i % features]) * scale[i % features];
    return out;
  };
  return {apply(d.x_train), d.y_train, apply(d.x_valid), d.y_valid, apply(d.x_test), d.y_test};
}

absl::StatusOr<Result> TrainAndMeasure(const std::string& name, std::vector<nn::LayerPtr> layers,
                                       const optimizers::Optimizer& optimizer, const Data& data,
                                       const examples::Flags& flags) {
  nn::Sequential model(std::move(layers));
  GF_RETURN_IF_ERROR(model.Compile({.loss = "sparse_categorical_crossentropy",
                                    .optimizer = optimizer,
                                    .metrics = {"accuracy"},
                                    .seed = static_cast<uint64_t>(flags.integer("seed"))}));
  GF_ASSIGN_OR_RETURN(nn::History history,
                      model.Fit(data.x_train, data.y_train,
                                {.epochs = flags.integer("epochs"),
                                 .batch_size = flags.integer("batch_size"),
                                 .validation_data = nn::ValidationData{data.x_valid, data.y_valid},
                                 .verbose = flags.integer("verbose")}));
  Result r{.name = name};
  r.reported_train_accuracy = history.history.at("accuracy").back();
  double seconds = 0;
  for (double s : history.seconds_per_epoch) seconds += s;
  r.seconds_per_epoch = seconds / history.seconds_per_epoch.size();
  GF_ASSIGN_OR_RETURN(auto train, model.Evaluate(data.x_train, data.y_train, 1000));
  GF_ASSIGN_OR_RETURN(auto valid, model.Evaluate(data.x_valid, data.y_valid, 1000));
  GF_ASSIGN_OR_RETURN(auto test, model.Evaluate(data.x_test, data.y_test, 1000));
  r.train_accuracy = train["accuracy"];
  r.valid_accuracy = valid["accuracy"];
  r.test_accuracy = test["accuracy"];
  std::printf("%-28s train %.4f  valid %.4f  gap %+.4f  test %.4f  (fit's train accuracy %.4f, %.2f s/epoch)\n",
              name.c_str(), r.train_accuracy, r.valid_accuracy, r.train_accuracy - r.valid_accuracy,
              r.test_accuracy, r.reported_train_accuracy, r.seconds_per_epoch);
  std::fflush(stdout);
  return r;
}

std::vector<nn::LayerPtr> EluMlp(const nn::DenseOptions& hidden, const nn::DenseOptions& output,
                                 double dropout_rate) {
  std::vector<nn::LayerPtr> layers = {nn::Flatten(Shape{28, 28})};
  auto dropout = [&] {
    if (dropout_rate > 0) layers.push_back(nn::Dropout(dropout_rate));
  };
  dropout();
  layers.push_back(nn::Dense(300, hidden));
  dropout();
  layers.push_back(nn::Dense(100, hidden));
  dropout();
  layers.push_back(nn::Dense(10, output));
  return layers;
}

// With alpha_dropout_every = k > 0, an AlphaDropout layer follows every k-th
// hidden layer; with 0, one AlphaDropout comes before the output layer.
std::vector<nn::LayerPtr> SeluNet(int hidden_layers, double alpha_dropout_rate, int alpha_dropout_every) {
  std::vector<nn::LayerPtr> layers = {nn::Flatten(Shape{28, 28})};
  for (int i = 0; i < hidden_layers; ++i) {
    layers.push_back(nn::Dense(100, {.activation = "selu", .kernel_initializer = "lecun_normal"}));
    if (alpha_dropout_rate > 0 && alpha_dropout_every > 0 && (i + 1) % alpha_dropout_every == 0 &&
        i + 1 < hidden_layers) {
      layers.push_back(nn::AlphaDropout(alpha_dropout_rate));
    }
  }
  if (alpha_dropout_rate > 0) layers.push_back(nn::AlphaDropout(alpha_dropout_rate));
  layers.push_back(nn::Dense(10, {.activation = "softmax"}));
  return layers;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"epochs", "20"}, {"batch_size", "32"}, {"optimizer", "nadam"},
                                     {"learning_rate", "0.001"}, {"selu_optimizer", "sgd"}, {"selu_layers", "20"},
                                     {"selu_learning_rate", "0.005"}, {"alpha_dropout", "0.1"},
                                     {"alpha_dropout_every", "2"}, {"models", "all"}, {"seed", "42"},
                                     {"verbose", "0"}});
  auto splits = examples::LoadChapterSplits();
  if (!splits.ok()) return examples::Fail(splits.status());
  const Data raw{splits->x_train, splits->y_train, splits->x_valid,
                 splits->y_valid, splits->x_test,  splits->y_test};
  const Data standardized = Standardized(*splits);
  // --optimizer (the MLPs) and --selu_optimizer: "nadam" (Keras's Nadam, the
  // chapter's choice for these models) or "sgd" (SGD with Nesterov momentum
  // 0.9, which trains the deep SELU net more steadily here).
  for (const char* name : {"optimizer", "selu_optimizer"}) {
    if (flags.str(name) != "nadam" && flags.str(name) != "sgd") {
      std::fprintf(stderr, "error: --%s must be sgd or nadam\n", name);
      return 2;
    }
  }
  auto make_optimizer = [](const std::string& name, double lr) -> optimizers::Optimizer {
    if (name == "nadam") return optimizers::Nadam{.learning_rate = lr};
    return optimizers::SGD{.learning_rate = lr, .momentum = 0.9, .nesterov = true};
  };
  const optimizers::Optimizer mlp_optimizer = make_optimizer(flags.str("optimizer"), flags.num("learning_rate"));
  const optimizers::Optimizer selu_optimizer =
      make_optimizer(flags.str("selu_optimizer"), flags.num("selu_learning_rate"));
  std::printf("%d epochs each, batch %d; MLPs: %s lr %g; SELU nets: %s lr %g; "
              "accuracies measured in inference mode\n",
              flags.integer("epochs"), flags.integer("batch_size"), flags.str("optimizer").c_str(),
              flags.num("learning_rate"), flags.str("selu_optimizer").c_str(), flags.num("selu_learning_rate"));

  // The chapter's RegularizedDense = partial(Dense, activation="elu",
  // kernel_initializer="he_normal", kernel_regularizer=l2(0.01)): one options
  // value shared by the layers, copied and changed for the output layer.
  const nn::DenseOptions plain_hidden{.activation = "elu", .kernel_initializer = "he_normal"};
  nn::DenseOptions regularized_hidden = plain_hidden;
  regularized_hidden.kernel_regularizer = nn::L2(0.01);
  nn::DenseOptions plain_output = plain_hidden;
  plain_output.activation = "softmax";
  plain_output.kernel_initializer = "glorot_uniform";
  nn::DenseOptions regularized_output = regularized_hidden;
  regularized_output.activation = "softmax";
  regularized_output.kernel_initializer = "glorot_uniform";

  struct Run {
    std::string name;
    std::vector<nn::LayerPtr> layers;
    const optimizers::Optimizer* optimizer;
    const Data* data;
  };
  const int selu_layers = flags.integer("selu_layers");
  std::vector<Run> runs = {
      {"elu_he (no regularizer)", EluMlp(plain_hidden, plain_output, 0), &mlp_optimizer, &raw},
      {"elu_he + l2(0.01)", EluMlp(regularized_hidden, regularized_output, 0), &mlp_optimizer, &raw},
      {"elu_he + dropout(0.2)", EluMlp(plain_hidden, plain_output, 0.2), &mlp_optimizer, &raw},
      {absl::StrFormat("selu x%d (no dropout)", selu_layers), SeluNet(selu_layers, 0, 0), &selu_optimizer,
       &standardized},
      {absl::StrFormat("selu x%d + alpha_dropout(%g)", selu_layers, flags.num("alpha_dropout")),
       SeluNet(selu_layers, flags.num("alpha_dropout"), flags.integer("alpha_dropout_every")), &selu_optimizer,
       &standardized},
  };
  // --models=all, or a comma-separated list of indices into `runs` (0-4).
  const std::string models = flags.str("models");
  std::vector<Result> results;
  for (size_t i = 0; i < runs.size(); ++i) {
    Run& run = runs[i];
    if (models != "all" && ("," + models + ",").find("," + std::to_string(i) + ",") == std::string::npos) continue;
    auto r = TrainAndMeasure(run.name, std::move(run.layers), *run.optimizer, *run.data, flags);
    if (!r.ok()) {
      std::fprintf(stderr, "error (%s): %s\n", run.name.c_str(), std::string(r.status().message()).c_str());
      return 1;
    }
    results.push_back(*r);
  }
  std::printf("\n| model | train acc | valid acc | gap | test acc | s/epoch |\n|---|---|---|---|---|---|\n");
  for (const Result& r : results) {
    std::printf("| %s | %.4f | %.4f | %+.4f | %.4f | %.2f |\n", r.name.c_str(), r.train_accuracy,
                r.valid_accuracy, r.train_accuracy - r.valid_accuracy, r.test_accuracy, r.seconds_per_epoch);
  }
  return 0;
}
