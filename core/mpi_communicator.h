#ifndef GRADFLOW_CORE_MPI_COMMUNICATOR_H_
#define GRADFLOW_CORE_MPI_COMMUNICATOR_H_

// The Communicator of an Open MPI job (Debian's libopenmpi-dev): the ranks
// of MPI_COMM_WORLD, started by `mpirun -np N program`. Built only with
// `bazel build --config=mpi` (target //core:mpi_communicator).
//
//   GF_ASSIGN_OR_RETURN(auto world, MpiCommunicator::Create(&argc, &argv));
//   model.Compile({..., .data_parallel = {.communicator = world.get()}});
//
// Collectives are MPI's nonblocking ones (MPI_Iallreduce, MPI_Ibcast),
// completed by polling until `timeout`. With every call each rank also sends
// its peers a small arrival notice (its collective count), so a collective
// that times out names the ranks that never reached it: dead, hung, or
// running a different program. Wait may be called again after a timeout
// (a late rank may still arrive); a process that gives up exits without
// MPI_Finalize, which makes mpirun stop every other rank.
//
// Results: MPI guarantees every rank the same sum, not the same sum on
// every run; with two ranks a sum is a + b on both and bit-reproducible.
// With more, fix Open MPI's reduction algorithm for run-to-run equality
// (docs/data_parallel.md: OMPI_MCA_coll_tuned_use_dynamic_rules=1,
// OMPI_MCA_coll_tuned_allreduce_algorithm=4, the ring).

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/communicator.h"

namespace gradflow {

struct MpiOptions {
  // How long a collective may wait for the slowest rank before failing.
  absl::Duration timeout = absl::Minutes(5);
};

class MpiCommunicator final : public Communicator {
 public:
  // Initializes MPI (once per process: a second Create while one lives is
  // FailedPrecondition) and wraps a duplicate of MPI_COMM_WORLD whose MPI
  // errors come back as statuses instead of aborting.
  static absl::StatusOr<std::unique_ptr<MpiCommunicator>> Create(int* argc, char*** argv,
                                                                 MpiOptions options = {});
  ~MpiCommunicator() override;  // MPI_Finalize, unless a collective is still pending

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  absl::StatusOr<int64_t> StartAllReduceSum(float* data, size_t count) override;
  absl::Status Wait(int64_t handle) override;
  absl::Status AllReduceSum(double* data, size_t count) override;
  absl::Status Broadcast(void* data, size_t bytes, int root) override;

  void set_timeout(absl::Duration timeout) { options_.timeout = timeout; }

 private:
  struct State;  // MPI handles, kept out of this header
  MpiCommunicator(MpiOptions options, std::unique_ptr<State> state);
  int64_t Announce();
  absl::Status Started(int64_t handle, int error, const char* what);
  absl::Status Complete(int64_t handle);
  absl::Status TimedOut(int64_t handle) const;
  void Progress();  // moves the arrival notices along, both ways
  std::vector<int> Missing(int64_t handle) const;  // peers not yet at collective `handle`

  MpiOptions options_;
  std::unique_ptr<State> state_;
  int rank_ = 0, size_ = 1;
  std::atomic<bool> busy_{false};  // a collective from two threads at once is an error
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_MPI_COMMUNICATOR_H_
