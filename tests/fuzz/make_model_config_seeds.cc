// Writes the seed corpus of model_config_fuzzer: the configuration JSON
// (nn::ModelConfigToJson) of small models covering every built-in layer type
// and the compile options (optimizers, clipping, schedules).
//
//   bazel run //tests/fuzz:make_model_config_seeds -- $PWD/tests/fuzz/corpus/model_config_fuzzer

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nn/activation_layers.h"
#include "nn/dropout_layers.h"
#include "nn/layers.h"
#include "nn/functional.h"
#include "nn/merge_layers.h"
#include "nn/model_config.h"
#include "nn/normalization.h"

namespace gradflow::nn {
namespace {

struct Seed {
  std::string name;
  ModelConfig config;
};

// Two inputs, a shared layer called twice, a skip connection, a merge and
// two outputs: every part of the functional layout.
ModelConfig FunctionalSeed() {
  KerasTensor a = Input({3}, {.name = "a"}), b = Input({2}, {.name = "b"});
  LayerPtr shared = Dense(3, {.activation = "tanh", .name = "shared"});
  KerasTensor h1 = shared(a), h2 = shared(h1);
  KerasTensor out = Dense(1, {.name = "out"})(Concatenate()({Add()({h1, h2}), b}));
  KerasTensor aux = Dense(1, {.name = "aux"})(h2);
  ModelConfig config = ConfigOf(*Model::Create({a, b}, {out, aux}, "functional"));
  config.compile = CompileOptions{.loss = "mse", .outputs = {{.loss_weight = 0.9}, {.loss_weight = 0.1}}};
  return config;
}

std::vector<Seed> Seeds() {
  std::vector<Seed> seeds;
  seeds.push_back({"chapter_mlp",
                   {"mlp",
                    {Flatten(Shape{28, 28}), Dense(30, {.activation = "relu", .kernel_initializer = "he_normal"}),
                     Dense(10, {.activation = "softmax"})},
                    CompileOptions{.optimizer = optimizers::SGD{.learning_rate = 0.01}, .metrics = {"accuracy"}}}});
  seeds.push_back({"regularized",
                   {"regularized",
                    {Dense(8, {.activation = "elu", .kernel_initializer = "he_normal",
                               .kernel_regularizer = L2(0.01), .bias_regularizer = L1L2(0.01, 0.02),
                               .kernel_constraint = MaxNorm{.max_value = 1.0}, .input_shape = Shape{4}}),
                     Dropout(0.2), AlphaDropout(0.1), MCDropout(0.3), MCAlphaDropout(0.1),
                     Dense(3, {.activation = "softmax", .use_bias = false})},
                    CompileOptions{.optimizer = optimizers::Nadam{}, .clip = optimizers::ClipByGlobalNorm(1.0)}}});
  seeds.push_back({"activations",
                   {"activations",
                    {Dense(6, {.input_shape = Shape{2, 3}}), BatchNormalization({.momentum = 0.9}),
                     Activation("selu"), LeakyReLU(0.2), ELU(), PReLU(), RReLU(), Activation("gelu"),
                     Dense(1, {.activation = "sigmoid"})},
                    CompileOptions{.loss = "binary_crossentropy",
                                   .optimizer = optimizers::Adam{.amsgrad = true},
                                   .clip = optimizers::ClipByValue(0.5),
                                   .learning_rate_schedule =
                                       optimizers::PiecewiseConstantDecay{{10, 20}, {0.1, 0.01, 0.001}}}}});
  seeds.push_back({"schedules",
                   {"schedules",
                    {Flatten(Shape{5}), Dense(2, {.activation = "tanh", .kernel_initializer = "orthogonal"})},
                    CompileOptions{.loss = "mse", .optimizer = optimizers::RMSprop{.centered = true},
                                   .clip = optimizers::ClipByNorm(2.0),
                                   .learning_rate_schedule = optimizers::OneCycle{.total_steps = 100,
                                                                                 .max_learning_rate = 0.1}}}});
  seeds.push_back({"no_compile", {"bare", {Dense(2, {.input_shape = Shape{3}})}, std::nullopt}});
  seeds.push_back({"functional", FunctionalSeed()});
  return seeds;
}

}  // namespace
}  // namespace gradflow::nn

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  for (const auto& seed : gradflow::nn::Seeds()) {
    absl::StatusOr<std::string> json = gradflow::nn::ModelConfigToJson(seed.config);
    if (!json.ok()) {
      std::fprintf(stderr, "%s: %s\n", seed.name.c_str(), std::string(json.status().message()).c_str());
      return 1;
    }
    std::ofstream(std::string(argv[1]) + "/" + seed.name) << *json;
    std::printf("%s: %zu bytes\n", seed.name.c_str(), json->size());
  }
  return 0;
}
