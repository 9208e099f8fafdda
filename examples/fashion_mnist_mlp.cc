// The chapter's first MLP on Fashion-MNIST: Flatten, Dense 300, Dense 100,
// Dense 10 softmax, He initialization, plain SGD, trained on 55,000 images
// and validated on 5,000; prints the model summary, per-epoch loss, accuracy
// and time, and the accuracy on the 10,000 test images.
//
//   bazel run -c opt //examples:fashion_mnist_mlp -- --epochs=30 --activation=relu
//   ... --save=my_model.safetensors   (then: inspect_model evaluate my_model.safetensors)
//   ... --dtype_policy=mixed_bfloat16 (Keras's mixed precision: bf16 matrix products)

#include <cstdio>

#include "examples/example_util.h"
#include "nn/model.h"

using namespace gradflow;

int main(int argc, char** argv) {
  // --save=<path>: Save the trained model there (see inspect_model).
  examples::Flags flags(argc, argv, {{"epochs", "30"}, {"learning_rate", "0.01"}, {"batch_size", "32"},
                                     {"activation", "relu"}, {"seed", "42"}, {"verbose", "1"}, {"save", ""},
                                     {"dtype_policy", "float32"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  nn::Sequential model({
      nn::Flatten(Shape{28, 28}),
      nn::Dense(300, {.activation = flags.str("activation"), .kernel_initializer = "he_normal"}),
      nn::Dense(100, {.activation = flags.str("activation"), .kernel_initializer = "he_normal"}),
      nn::Dense(10, {.activation = "softmax"}),
  });
  absl::Status status = model.Compile(
      {.loss = "sparse_categorical_crossentropy",
       .optimizer = optimizers::SGD{.learning_rate = flags.num("learning_rate")},
       .metrics = {"accuracy"},
       .seed = static_cast<uint64_t>(flags.integer("seed")),
       .dtype_policy = flags.str("dtype_policy")});
  if (!status.ok()) return examples::Fail(status);
  std::printf("%s", model.Summary().c_str());

  auto history = model.Fit(data->x_train, data->y_train,
                           {.epochs = flags.integer("epochs"),
                            .batch_size = flags.integer("batch_size"),
                            .validation_data = nn::ValidationData{data->x_valid, data->y_valid},
                            .verbose = flags.integer("verbose")});
  if (!history.ok()) return examples::Fail(history.status());
  examples::PrintMeanSecondsPerEpoch(*history);

  auto test = model.Evaluate(data->x_test, data->y_test);
  if (!test.ok()) return examples::Fail(test.status());
  std::printf("test loss: %.4f - test accuracy: %.4f\n", (*test)["loss"], (*test)["accuracy"]);
  if (!flags.str("save").empty()) {
    if (absl::Status saved = model.Save(flags.str("save")); !saved.ok()) return examples::Fail(saved);
    std::printf("saved to %s\n", flags.str("save").c_str());
  }
  return 0;
}
