// A rank that dies mid-training must not hang the others. Run by
// tests/mpi/run.sh as `mpirun -np 2 dead_rank_check`: rank 1 exits with
// status 3 after 5 steps of a data-parallel training loop; rank 0 keeps
// training. The job must end (mpirun stops rank 0, or rank 0's collective
// times out after 5 s and it exits with the error) with a non-zero status,
// well before run.sh's 60 s limit.

#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/mpi_communicator.h"
#include "tests/optimizers/data_parallel_testing.h"

int main(int argc, char** argv) {
  auto world = gradflow::MpiCommunicator::Create(&argc, &argv, {.timeout = absl::Seconds(5)});
  if (!world.ok()) return 1;
  gradflow::testing::TrainSetup setup{.data_parallel = gradflow::optimizers::DataParallelOptions{},
                                      .communicator = world->get(),
                                      .steps = 5};
  if (!gradflow::testing::TrainClassifier(setup).ok()) return 1;
  if ((*world)->rank() == 1) _exit(3);  // dies without a word to its peer
  setup.steps = 100000;
  absl::StatusOr<gradflow::testing::Weights> trained = gradflow::testing::TrainClassifier(setup);
  std::fprintf(stderr, "rank 0: %s\n", std::string(trained.status().ToString()).c_str());
  return trained.ok() ? 0 : 2;
}
