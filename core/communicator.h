#ifndef GRADFLOW_CORE_COMMUNICATOR_H_
#define GRADFLOW_CORE_COMMUNICATOR_H_

// The processes of one data-parallel job and the collectives a training step
// needs. Graphs say what to reduce (all-reduce nodes, graph/README.md); the
// session running them holds the Communicator (SessionOptions::communicator).
// Implementations: SoloCommunicator below (one process: every collective is
// the identity) and MpiCommunicator (core/mpi_communicator.h, Open MPI,
// built with --config=mpi).
//
// Every rank calls the same collectives in the same order, as MPI requires;
// a call a peer never makes fails after the communicator's timeout instead of
// hanging, naming the peers that did not arrive.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Starts summing `count` floats at `data`, in place, over every rank, and
  // returns a handle for Wait. `data` must stay valid and unread until then.
  virtual absl::StatusOr<int64_t> StartAllReduceSum(float* data, size_t count) = 0;
  // Completes the sum started under `handle`.
  virtual absl::Status Wait(int64_t handle) = 0;
  // A blocking in-place sum of doubles (metric totals, flags).
  virtual absl::Status AllReduceSum(double* data, size_t count) = 0;
  // Copies `bytes` bytes at `data` from rank `root` to every other rank.
  virtual absl::Status Broadcast(void* data, size_t bytes, int root) = 0;
  // Lets started collectives advance without waiting for them. MPI moves a
  // nonblocking collective along only inside MPI calls, so a plan with
  // collectives calls this between its kernels.
  virtual void Progress() {}

  // OK when every rank passed the same `description` (say, its variables'
  // names and shapes); otherwise, on every rank, FailedPrecondition naming
  // `what`, the ranks that differ from rank 0 and, on those, the first line
  // that differs. A collective: every rank must call it.
  absl::Status CheckSame(std::string_view what, const std::string& description);
};

// A job of one process: rank 0 of 1; sums and broadcasts leave data as it is.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  absl::StatusOr<int64_t> StartAllReduceSum(float*, size_t) override { return 0; }
  absl::Status Wait(int64_t) override { return absl::OkStatus(); }
  absl::Status AllReduceSum(double*, size_t) override { return absl::OkStatus(); }
  absl::Status Broadcast(void*, size_t, int) override { return absl::OkStatus(); }
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_COMMUNICATOR_H_
