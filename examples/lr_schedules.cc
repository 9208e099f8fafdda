// Learning-rate schedules on the chapter's MLP (784-300-100-10, ReLU, He
// normal, softmax) and Fashion-MNIST, all with plain SGD, batch 32, the same
// initial weights and shuffles: a constant rate, power, exponential,
// piecewise-constant, cosine, polynomial, 1cycle (step schedules: subgraphs
// over the step counter) and performance scheduling (ReduceLROnPlateau on
// val_loss, a callback). The schedules' parameters follow the chapter, scaled
// to the run's length (see Runs()). Prints each schedule's final rate and the
// accuracy it reaches, and writes the rate of every step as CSV
// (step,constant,power,...).
//
//   bazel run -c opt //examples:lr_schedules -- --epochs=10 --csv=/tmp/lr_schedules.csv

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "examples/example_util.h"
#include "nn/lr_callbacks.h"
#include "nn/model.h"
#include "optimizers/schedules.h"

using namespace gradflow;

namespace {

struct Run {
  std::string name, settings;
  std::optional<optimizers::Schedule> schedule;  // none: constant rate (plus callback for "performance")
  bool plateau = false;
};

// Steps and epochs: the chapter trains 25 epochs; here `epochs` (default 10),
// so epoch-based settings are scaled by epochs / 25 where the chapter gives them.
std::vector<Run> Runs(int epochs, int64_t steps_per_epoch, double lr0, double max_lr) {
  const int64_t total = epochs * steps_per_epoch;
  return {
      {"constant", "lr 0.01", std::nullopt},
      // The chapter's SGD(decay=1e-4): lr0 / (1 + t / 10,000).
      {"power", "lr0 0.01, s 10000, c 1", optimizers::PowerSchedule{.initial_learning_rate = lr0, .decay_steps = 10000}},
      // lr0 * 0.1^(t/s): 10x smaller by the end of the run.
      {"exponential", "lr0 0.01, s = run, 0.1^(t/s)",
       optimizers::ExponentialDecay{.initial_learning_rate = lr0, .decay_steps = double(total)}},
      // The chapter: 0.01 for epochs < 5, 0.005 until 15, then 0.001 (of 25).
      {"piecewise", "0.01 / 0.005 / 0.001 at 20% / 60%",
       optimizers::PiecewiseConstantDecay{.boundaries = {total / 5, 3 * total / 5}, .values = {lr0, lr0 / 2, lr0 / 10}}},
      {"cosine", "lr0 0.01 to 0 over the run", optimizers::CosineDecay{.initial_learning_rate = lr0, .decay_steps = total}},
      {"polynomial", "lr0 0.01 to 1e-4, power 1",
       optimizers::PolynomialDecay{.initial_learning_rate = lr0, .decay_steps = total}},
      {"1cycle", "max 0.1 (start 0.01, end 1e-5)",
       optimizers::OneCycle{.total_steps = total, .max_learning_rate = max_lr}},
      // The chapter: ReduceLROnPlateau(factor=0.5, patience=5) over 25 epochs.
      {"performance", "plateau: factor 0.5, patience 2", std::nullopt, /*plateau=*/true},
  };
}

// Records the rate each epoch trains with (performance scheduling).
class EpochRates : public nn::Callback {
 public:
  absl::Status OnEpochBegin(nn::Model& model, int) override {
    auto rate = model.learning_rate();
    if (!rate.ok()) return rate.status();
    rates.push_back(*rate);
    return absl::OkStatus();
  }
  std::vector<double> rates;
};

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"epochs", "10"}, {"batch_size", "32"}, {"seed", "42"},
                                     {"learning_rate", "0.01"}, {"max_learning_rate", "0.1"},
                                     {"csv", "lr_schedules.csv"}, {"verbose", "0"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const int epochs = flags.integer("epochs");
  const int64_t batch = flags.integer("batch_size");
  const int64_t steps_per_epoch = (data->x_train.shape()[0] + batch - 1) / batch;
  const int64_t total = epochs * steps_per_epoch;
  const double lr0 = flags.num("learning_rate");
  std::printf("SGD, %d epochs of %lld steps, batch %lld\n\n", epochs, static_cast<long long>(steps_per_epoch),
              static_cast<long long>(batch));
  std::printf("| schedule | settings | final rate | final train loss | val accuracy | test accuracy | s/epoch |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);

  std::vector<std::string> names;
  std::vector<std::vector<float>> rates;  // per run, per step
  for (const Run& run : Runs(epochs, steps_per_epoch, lr0, flags.num("max_learning_rate"))) {
    nn::Sequential model = examples::ChapterReluMlp();
    absl::Status status = model.Compile({.loss = "sparse_categorical_crossentropy",
                                         .optimizer = optimizers::SGD{.learning_rate = lr0},
                                         .metrics = {"accuracy"},
                                         .seed = static_cast<uint64_t>(flags.integer("seed")),
                                         .learning_rate_schedule = run.schedule});
    auto epoch_rates = std::make_shared<EpochRates>();
    std::vector<nn::CallbackPtr> callbacks;
    if (run.plateau) {
      auto plateau = nn::ReduceLROnPlateau::Create({.factor = 0.5, .patience = 2});
      if (!plateau.ok()) status = plateau.status();
      else callbacks = {*plateau, epoch_rates};
    }
    if (!status.ok()) {
      std::fprintf(stderr, "error (%s): %s\n", run.name.c_str(), std::string(status.message()).c_str());
      return 1;
    }
    absl::StatusOr<nn::History> history =
        model.Fit(data->x_train, data->y_train,
                  {.epochs = epochs,
                   .batch_size = batch,
                   .validation_data = nn::ValidationData{data->x_valid, data->y_valid},
                   .verbose = flags.integer("verbose"),
                   .callbacks = callbacks});
    absl::StatusOr<std::map<std::string, double>> test =
        history.ok() ? model.Evaluate(data->x_test, data->y_test) : history.status();
    // The rate of every step: the schedule's subgraph evaluated at each step,
    // or the constant / per-epoch rate.
    absl::StatusOr<std::vector<float>> per_step = std::vector<float>(total, static_cast<float>(lr0));
    if (run.schedule) {
      per_step = optimizers::ScheduleValues(*run.schedule, total);
    } else if (run.plateau) {
      for (int64_t t = 0; t < total && !epoch_rates->rates.empty(); ++t) {
        (*per_step)[t] = static_cast<float>(epoch_rates->rates[std::min<int64_t>(t / steps_per_epoch, epoch_rates->rates.size() - 1)]);
      }
    }
    for (const absl::Status& s : {history.status(), test.status(), per_step.status()}) {
      if (!s.ok()) {
        std::fprintf(stderr, "error (%s): %s\n", run.name.c_str(), std::string(s.message()).c_str());
        return 1;
      }
    }
    double seconds = 0;
    for (double s : history->seconds_per_epoch) seconds += s;
    std::printf("| %s | %s | %.3g | %.4f | %.4f | %.4f | %.2f |\n", run.name.c_str(), run.settings.c_str(),
                per_step->back(), history->history.at("loss").back(), history->history.at("val_accuracy").back(),
                (*test)["accuracy"], seconds / epochs);
    std::fflush(stdout);
    names.push_back(run.name);
    rates.push_back(*std::move(per_step));
  }

  std::FILE* csv = std::fopen(flags.str("csv").c_str(), "w");
  if (csv == nullptr) {
    std::fprintf(stderr, "error: cannot write %s\n", flags.str("csv").c_str());
    return 1;
  }
  std::fprintf(csv, "step");
  for (const std::string& name : names) std::fprintf(csv, ",%s", name.c_str());
  std::fprintf(csv, "\n");
  for (int64_t t = 0; t < total; ++t) {
    std::fprintf(csv, "%lld", static_cast<long long>(t));
    for (const auto& r : rates) std::fprintf(csv, ",%.6g", r[t]);
    std::fprintf(csv, "\n");
  }
  std::fclose(csv);
  std::printf("\nrates per step: %s\n", flags.str("csv").c_str());
  return 0;
}
