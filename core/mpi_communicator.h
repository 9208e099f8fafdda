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
// moved along by Progress (a plan calls it between kernels) and completed by
// polling until `timeout`. With every call each rank also sends
// its peers a small arrival notice (its collective count), so a collective
// that times out names the ranks that never reached it: dead, hung, or
// running a different program. Wait may be called again after a timeout
// (a late rank may still arrive); a process that gives up exits without
// MPI_Finalize, which makes mpirun stop every other rank.
//
// Results: MPI guarantees every rank the same sum, not the same sum on
// every run; a fixed algorithm (MpiOptions::ring_allreduce) makes the order
// of the additions, and so every run, the same.

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
  // Fixes Open MPI's nonblocking all-reduce to its ring algorithm
  // (coll_libnbc_iallreduce_algorithm=1) unless the environment already sets
  // it: one fixed order of additions, so runs are bit-identical at any rank
  // count, and on 2 ranks the fastest (docs/data_parallel.md has the numbers).
  bool ring_allreduce = true;
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
  void Progress() override;  // MPI_Test on every pending collective

  void set_timeout(absl::Duration timeout) { options_.timeout = timeout; }

  // Since creation (or ResetStats): collectives completed, and the seconds
  // spent waiting for them (in Wait and the blocking calls) — the part of
  // the communication that did not overlap computation.
  struct Stats {
    int64_t completed = 0;
    double wait_seconds = 0;
  };
  const Stats& stats() const { return stats_; }
  void ResetStats() { stats_ = {}; }

 private:
  struct State;  // MPI handles, kept out of this header
  MpiCommunicator(MpiOptions options, std::unique_ptr<State> state);
  int64_t Announce();
  template <typename Call>  // core/mpi_communicator.cc
  absl::StatusOr<int64_t> Begin(const char* what, size_t count, const char* unit, Call call);
  absl::Status Complete(int64_t handle);
  absl::Status TimedOut(int64_t handle) const;
  void MoveNotices();  // moves the arrival notices along, both ways
  std::vector<int> Missing(int64_t handle) const;  // peers not yet at collective `handle`

  MpiOptions options_;
  std::unique_ptr<State> state_;
  int rank_ = 0, size_ = 1;
  Stats stats_;
  std::atomic<bool> busy_{false};  // a collective from two threads at once is an error
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_MPI_COMMUNICATOR_H_
