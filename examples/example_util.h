#ifndef GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_
#define GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_

// Small helpers shared by the example binaries: --name=value flags and the
// chapter's Fashion-MNIST split (55,000 train / 5,000 validation / 10,000 test).

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "core/fashion_mnist.h"
#include "core/status.h"

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

}  // namespace gradflow::examples

#endif  // GRADFLOW_EXAMPLES_EXAMPLE_UTIL_H_
