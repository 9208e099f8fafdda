// A wide & deep network with an auxiliary output (Géron's chapter 10,
// "Building Complex Models Using the Functional API"), on a tabular
// regression set this program constructs: 8 features, of which the wide path
// sees features 0-4 and the deep path features 2-7 (the book's
// X_train[:, :5] and X_train[:, 2:]). The target has a linear part the wide
// path can take and a nonlinear part only the deep path can learn.
//
//   bazel run -c opt //examples:wide_and_deep -- --epochs=20
//
// It trains with the loss weighted 0.9 main / 0.1 auxiliary, reports each
// output's test RMSE, saves the model, loads it back and checks that the
// predictions are identical.

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor_ops.h"
#include "examples/example_util.h"
#include "nn/functional.h"
#include "nn/merge_layers.h"
#include "nn/model.h"
#include "nn/preprocessing.h"
#include "nn/saving.h"

using namespace gradflow;

namespace {

constexpr int kFeatures = 8;

struct Tabular {
  Tensor wide, deep, y;  // [n, 5], [n, 6], [n, 1]
};

// Features ~ N(0, 1); y = 0.5 x0 - x1 + 0.3 x3 + sin(2 x5) + x6 x7 + 0.1 noise.
absl::StatusOr<Tabular> MakeData(int64_t n, uint64_t seed) {
  Tensor x(DType::kF32, {n, kFeatures}), y(DType::kF32, {n, 1});
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float* f = x.data<float>() + i * kFeatures;
    for (int k = 0; k < kFeatures; ++k) f[k] = static_cast<float>(rng.Normal());
    y.data<float>()[i] = static_cast<float>(0.5 * f[0] - f[1] + 0.3 * f[3] + std::sin(2.0 * f[5]) + f[6] * f[7] +
                                            0.1 * rng.Normal());
  }
  // The wide and deep column sets, as gathered columns of x.
  auto columns = [&](int first, int count) {
    Tensor out(DType::kF32, {n, count});
    for (int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < count; ++k) out.data<float>()[i * count + k] = x.data<float>()[i * kFeatures + first + k];
    }
    return out;
  };
  return Tabular{columns(0, 5), columns(2, 6), y};
}

double Rmse(const Tensor& predicted, const Tensor& y) {
  double sum = 0;
  for (int64_t i = 0; i < y.num_elements(); ++i) {
    const double d = predicted.data<float>()[i] - y.data<float>()[i];
    sum += d * d;
  }
  return std::sqrt(sum / y.num_elements());
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"epochs", "20"}, {"samples", "20000"}, {"batch_size", "32"},
                                     {"learning_rate", "0.001"}, {"seed", "42"}, {"verbose", "2"},
                                     {"save", "/tmp/wide_and_deep.safetensors"}});
  const int64_t n = flags.integer("samples");
  auto train = MakeData(n, flags.integer("seed"));
  auto test = MakeData(std::max<int64_t>(n / 4, 1), flags.integer("seed") + 1);
  if (!train.ok() || !test.ok()) return examples::Fail(train.ok() ? test.status() : train.status());

  // Each input standardized by a Normalization layer adapted to it.
  auto norm_wide = nn::Normalization(), norm_deep = nn::Normalization();
  if (absl::Status s = norm_wide->Adapt(train->wide); !s.ok()) return examples::Fail(s);
  if (absl::Status s = norm_deep->Adapt(train->deep); !s.ok()) return examples::Fail(s);

  nn::KerasTensor input_wide = nn::Input({5}, {.name = "input_wide"});
  nn::KerasTensor input_deep = nn::Input({6}, {.name = "input_deep"});
  nn::KerasTensor wide = nn::LayerPtr(norm_wide)(input_wide);
  nn::KerasTensor deep = nn::LayerPtr(norm_deep)(input_deep);
  nn::KerasTensor hidden1 = nn::Dense(30, {.activation = "relu"})(deep);
  nn::KerasTensor hidden2 = nn::Dense(30, {.activation = "relu"})(hidden1);
  nn::KerasTensor concat = nn::Concatenate()({wide, hidden2});
  nn::KerasTensor output = nn::Dense(1, {.name = "output"})(concat);
  nn::KerasTensor aux_output = nn::Dense(1, {.name = "aux_output"})(hidden2);
  absl::StatusOr<nn::Model> model = nn::Model::Create({input_wide, input_deep}, {output, aux_output});
  if (!model.ok()) return examples::Fail(model.status());

  absl::Status compiled = model->Compile({.loss = "mse",
                                          .optimizer = optimizers::Adam{.learning_rate = flags.num("learning_rate")},
                                          .metrics = {"RootMeanSquaredError"},
                                          .outputs = {{.loss_weight = 0.9}, {.loss_weight = 0.1}},
                                          .seed = static_cast<uint64_t>(flags.integer("seed"))});
  if (!compiled.ok()) return examples::Fail(compiled);
  std::printf("%s\n", model->Summary().c_str());

  auto history = model->Fit({train->wide, train->deep}, {train->y, train->y},
                            {.epochs = flags.integer("epochs"),
                             .batch_size = flags.integer("batch_size"),
                             .validation_split = 0.1,
                             .verbose = flags.integer("verbose")});
  if (!history.ok()) return examples::Fail(history.status());

  auto evaluated = model->Evaluate({test->wide, test->deep}, {test->y, test->y}, 1000);
  if (!evaluated.ok()) return examples::Fail(evaluated.status());
  std::printf("\ntest set (%lld rows):", static_cast<long long>(test->y.shape()[0]));
  for (const auto& [name, value] : *evaluated) std::printf("  %s %.4f", name.c_str(), value);
  std::printf("\n");

  auto predicted = model->PredictOutputs({test->wide, test->deep}, 1000);
  if (!predicted.ok()) return examples::Fail(predicted.status());
  // A baseline: always predicting the training mean.
  auto mean = Mean(train->y, 0, /*keepdims=*/true);
  if (!mean.ok()) return examples::Fail(mean.status());
  double baseline = 0;
  for (int64_t i = 0; i < test->y.num_elements(); ++i) {
    const double d = test->y.data<float>()[i] - mean->data<float>()[0];
    baseline += d * d;
  }
  std::printf("test RMSE: main %.4f, auxiliary %.4f (predicting the mean: %.4f)\n", Rmse((*predicted)[0], test->y),
              Rmse((*predicted)[1], test->y), std::sqrt(baseline / test->y.num_elements()));

  // gradflow's format: Keras files do not hold per-output loss weights yet.
  const std::string written = flags.str("save");
  if (absl::Status saved = model->Save(written); !saved.ok()) return examples::Fail(saved);
  auto loaded = nn::LoadModel(written);
  if (!loaded.ok()) return examples::Fail(loaded.status());
  auto again = loaded->PredictOutputs({test->wide, test->deep}, 1000);
  if (!again.ok()) return examples::Fail(again.status());
  bool identical = true;
  for (size_t k = 0; k < 2; ++k) {
    for (int64_t i = 0; i < (*again)[k].num_elements(); ++i) {
      identical &= (*again)[k].data<float>()[i] == (*predicted)[k].data<float>()[i];
    }
  }
  std::printf("saved to %s and loaded back: predictions %s\n", written.c_str(),
              identical ? "identical" : "DIFFER");
  return identical ? 0 : 1;
}
