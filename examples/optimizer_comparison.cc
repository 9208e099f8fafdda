// The chapter's MLP (Flatten, Dense 300 ReLU, Dense 100 ReLU, Dense 10
// softmax, He normal) on Fashion-MNIST, trained with each optimizer for the
// same number of epochs from the same initial weights and the same shuffles:
// SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdaMax, Nadam and AdamW,
// each with Keras's default settings (momentum 0.9 for the momentum
// optimizers). Prints a table (final training loss, validation accuracy,
// seconds per epoch) and writes the learning curves as CSV
// (optimizer,epoch,loss,accuracy,val_loss,val_accuracy,seconds).
//
//   bazel run -c opt //examples:optimizer_comparison -- --epochs=10 --csv=/tmp/optimizers.csv

#include <cstdio>
#include <string>
#include <vector>

#include "examples/example_util.h"
#include "nn/model.h"

using namespace gradflow;

namespace {

struct Candidate {
  std::string name, settings;
  optimizers::Optimizer optimizer;
};

std::vector<Candidate> Candidates() {
  return {
      {"SGD", "lr 0.01", optimizers::SGD{}},
      {"Momentum", "lr 0.01, momentum 0.9", optimizers::SGD{.momentum = 0.9}},
      {"Nesterov", "lr 0.01, momentum 0.9", optimizers::SGD{.momentum = 0.9, .nesterov = true}},
      {"AdaGrad", "lr 0.001", optimizers::Adagrad{}},
      {"RMSProp", "lr 0.001, rho 0.9", optimizers::RMSprop{}},
      {"Adam", "lr 0.001", optimizers::Adam{}},
      {"AdaMax", "lr 0.001", optimizers::Adamax{}},
      {"Nadam", "lr 0.001", optimizers::Nadam{}},
      {"AdamW", "lr 0.001, wd 0.004", optimizers::AdamW{}},
  };
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"epochs", "10"}, {"batch_size", "32"}, {"seed", "42"},
                                     {"csv", "optimizer_comparison.csv"}, {"only", ""}, {"verbose", "0"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  std::FILE* csv = std::fopen(flags.str("csv").c_str(), "w");
  if (csv == nullptr) {
    std::fprintf(stderr, "error: cannot write %s\n", flags.str("csv").c_str());
    return 1;
  }
  std::fprintf(csv, "optimizer,epoch,loss,accuracy,val_loss,val_accuracy,seconds\n");
  const int epochs = flags.integer("epochs");
  std::printf("%d epochs each, batch %d, seed %d\n\n", epochs, flags.integer("batch_size"), flags.integer("seed"));
  std::printf("| optimizer | settings | final train loss | val accuracy (final) | best val accuracy | s/epoch |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const Candidate& c : Candidates()) {
    if (!flags.str("only").empty() && flags.str("only") != c.name) continue;
    nn::Sequential model = examples::ChapterReluMlp();
    absl::Status status = model.Compile({.loss = "sparse_categorical_crossentropy",
                                         .optimizer = c.optimizer,
                                         .metrics = {"accuracy"},
                                         .seed = static_cast<uint64_t>(flags.integer("seed"))});
    auto history = status.ok() ? model.Fit(data->x_train, data->y_train,
                                           {.epochs = epochs,
                                            .batch_size = flags.integer("batch_size"),
                                            .validation_data = nn::ValidationData{data->x_valid, data->y_valid},
                                            .verbose = flags.integer("verbose")})
                               : absl::StatusOr<nn::History>(status);
    if (!history.ok()) {
      std::fprintf(stderr, "error (%s): %s\n", c.name.c_str(), std::string(history.status().message()).c_str());
      return 1;
    }
    const auto& h = history->history;
    double seconds = 0, best = 0;
    for (int e = 0; e < epochs; ++e) {
      seconds += history->seconds_per_epoch[e];
      best = std::max(best, h.at("val_accuracy")[e]);
      std::fprintf(csv, "%s,%d,%.6f,%.6f,%.6f,%.6f,%.4f\n", c.name.c_str(), e + 1, h.at("loss")[e],
                   h.at("accuracy")[e], h.at("val_loss")[e], h.at("val_accuracy")[e], history->seconds_per_epoch[e]);
    }
    std::printf("| %s | %s | %.4f | %.4f | %.4f | %.2f |\n", c.name.c_str(), c.settings.c_str(),
                h.at("loss").back(), h.at("val_accuracy").back(), best, seconds / epochs);
    std::fflush(stdout);
  }
  std::fclose(csv);
  std::printf("\nlearning curves: %s\n", flags.str("csv").c_str());
  return 0;
}
