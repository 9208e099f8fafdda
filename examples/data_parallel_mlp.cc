// The chapter's first MLP on Fashion-MNIST (fashion_mnist_mlp), trained on
// every rank of an MPI job at once: each rank trains on its shard of every
// epoch, the gradients are averaged over the ranks every step, and rank 0
// prints and saves. --batch_size is the global batch (32, as the one-process
// example), split evenly over the ranks, so any number of ranks trains the
// same model the one-process example does, to within rounding.
//
//   bazel build -c opt --config=mpi //examples:data_parallel_mlp
//   mpirun -np 2 -x OMP_NUM_THREADS=1 bazel-bin/examples/data_parallel_mlp --epochs=30
//   (as root: mpirun --allow-run-as-root ...; docs/data_parallel.md)

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/mpi_communicator.h"
#include "examples/example_util.h"
#include "nn/model.h"

using namespace gradflow;

int main(int argc, char** argv) {
  auto world = MpiCommunicator::Create(&argc, &argv);
  if (!world.ok()) return examples::Fail(world.status());
  Communicator& comm = **world;
  // --save=<path>: rank 0 saves the trained model there.
  examples::Flags flags(argc, argv, {{"epochs", "30"}, {"learning_rate", "0.01"}, {"batch_size", "32"},
                                     {"seed", "42"}, {"verbose", "1"}, {"save", ""}});
  if (flags.integer("batch_size") % comm.size() != 0) {
    return examples::Fail(absl::InvalidArgumentError(absl::StrCat(
        "--batch_size=", flags.integer("batch_size"), " does not split evenly over ", comm.size(), " ranks")));
  }
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  nn::Sequential model = examples::ChapterReluMlp();
  absl::Status status = model.Compile(
      {.loss = "sparse_categorical_crossentropy",
       .optimizer = optimizers::SGD{.learning_rate = flags.num("learning_rate")},
       .metrics = {"accuracy"},
       .seed = static_cast<uint64_t>(flags.integer("seed")),
       .data_parallel = nn::DataParallel{.communicator = &comm}});
  if (!status.ok()) return examples::Fail(status);
  if (comm.rank() == 0) std::printf("%d ranks\n%s", comm.size(), model.Summary().c_str());

  nn::FitOptions fit = examples::FitOptionsFromFlags(flags, *data);
  fit.batch_size /= comm.size();  // per rank
  auto history = model.Fit(data->x_train, data->y_train, fit);
  if (!history.ok()) return examples::Fail(history.status());
  auto test = model.Evaluate(data->x_test, data->y_test);  // each rank its share, reported over all
  if (!test.ok()) return examples::Fail(test.status());
  if (comm.rank() == 0) {
    examples::PrintMeanSecondsPerEpoch(*history);
    std::printf("test loss: %.4f - test accuracy: %.4f\n", (*test)["loss"], (*test)["accuracy"]);
  }
  if (comm.rank() == 0 && !flags.str("save").empty()) {
    if (absl::Status saved = model.Save(flags.str("save")); !saved.ok()) return examples::Fail(saved);
    std::printf("saved to %s\n", flags.str("save").c_str());
  }
  return 0;
}
