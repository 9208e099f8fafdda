#ifndef GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_
#define GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_

// Small helpers shared by the example binaries: --name=value flags, the
// chapter's Fashion-MNIST split (55,000 train / 5,000 validation / 10,000
// test), the way every example reports an error, and the chapter's first MLP
// for the examples that compare how it trains rather than build it.

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "core/fashion_mnist.h"
#include "core/status.h"
#include "nn/model.h"

namespace gradflow::examples {

// Parses --name=value arguments; unknown names are an error listing the known ones.
class Flags {
 public:
  Flags(int argc, char** argv, std::map<std::string, std::string> defaults)
      : values_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      size_t eq = arg.find('=');
      std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (arg.rfind("--", 0) != 0 || eq == std::string::npos || !values_.count(name)) {
        std::fprintf(stderr, "unknown argument '%s'; flags (with defaults):\n", arg.c_str());
        for (const auto& [k, v] : values_) std::fprintf(stderr, "  --%s=%s\n", k.c_str(), v.c_str());
        std::exit(2);
      }
      values_[name] = arg.substr(eq + 1);
    }
  }
  std::string str(const std::string& name) const { return values_.at(name); }
  double num(const std::string& name) const { return std::atof(values_.at(name).c_str()); }
  int integer(const std::string& name) const { return std::atoi(values_.at(name).c_str()); }

 private:
  std::map<std::string, std::string> values_;
};

struct FashionMnistSplits {
  Tensor x_train, y_train, x_valid, y_valid, x_test, y_test;
};

// The chapter's split: the first 55,000 training images train, the last
// 5,000 validate; pixels already scaled to [0, 1] by the reader.
inline absl::StatusOr<FashionMnistSplits> LoadChapterSplits() {
  GF_ASSIGN_OR_RETURN(Dataset train, LoadFashionMnist("train"));
  GF_ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist("test"));
  constexpr int64_t kTrain = 55000;
  int64_t n = train.images.shape()[0];
  GF_ASSIGN_OR_RETURN(Tensor x_train, train.images.Slice(0, kTrain));
  GF_ASSIGN_OR_RETURN(Tensor y_train, train.labels.Slice(0, kTrain));
  GF_ASSIGN_OR_RETURN(Tensor x_valid, train.images.Slice(kTrain, n));
  GF_ASSIGN_OR_RETURN(Tensor y_valid, train.labels.Slice(kTrain, n));
  return FashionMnistSplits{x_train, y_train, x_valid, y_valid, test.images, test.labels};
}

// Fit's options from the --epochs, --batch_size and --verbose flags, with
// the 5,000 validation images as validation data.
inline nn::FitOptions FitOptionsFromFlags(const Flags& flags, const FashionMnistSplits& data) {
  return {.epochs = flags.integer("epochs"),
          .batch_size = flags.integer("batch_size"),
          .validation_data = nn::ValidationData{data.x_valid, data.y_valid},
          .verbose = flags.integer("verbose")};
}

inline void PrintMeanSecondsPerEpoch(const nn::History& history) {
  double total = 0;
  for (double s : history.seconds_per_epoch) total += s;
  std::printf("mean seconds per epoch: %.2f\n", total / history.seconds_per_epoch.size());
}

// Prints the error as every example reports one ("error: <message>" on
// stderr) and returns the exit status for it: `return examples::Fail(s);`.
inline int Fail(const absl::Status& status) {
  std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
  return 1;
}

// The chapter's first MLP: Flatten, Dense 300 and Dense 100 (ReLU, He
// initialization), Dense 10 softmax. fashion_mnist_mlp.cc builds it layer by
// layer (its default --activation=relu); the comparisons of optimizers and of
// learning-rate schedules retrain it once per candidate.
inline nn::Sequential ChapterReluMlp() {
  return nn::Sequential({
      nn::Flatten(Shape{28, 28}),
      nn::Dense(300, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::Dense(100, {.activation = "relu", .kernel_initializer = "he_normal"}),
      nn::Dense(10, {.activation = "softmax"}),
  });
}

}  // namespace gradflow::examples

#endif  // GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_
