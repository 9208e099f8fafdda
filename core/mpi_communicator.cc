#include "core/mpi_communicator.h"

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace gradflow {
namespace {

constexpr int kArrivalTag = 7301;  // the arrival notices; collectives use no tags

std::string MpiError(int error) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(error, text, &length);
  return std::string(text, length);
}

// Holds the communicator's "busy" flag for one call; a second thread entering
// at the same time would interleave collectives differently on each rank.
class Exclusive {
 public:
  explicit Exclusive(std::atomic<bool>& busy) : busy_(busy), owned_(!busy.exchange(true)) {}
  ~Exclusive() {
    if (owned_) busy_.store(false);
  }
  absl::Status status() const {
    return owned_ ? absl::OkStatus()
                  : absl::FailedPreconditionError(
                        "MpiCommunicator: used from two threads at once; every rank must call "
                        "collectives in the same order, so run one plan at a time per communicator");
  }

 private:
  std::atomic<bool>& busy_;
  bool owned_;
};

}  // namespace

// A training step starts and waits a few collectives: the containers below
// keep their capacity, so steps after the first allocate nothing.
struct MpiCommunicator::State {
  static constexpr int64_t kNoticeSlots = 64;  // notices in flight, a ring
  MPI_Comm comm = MPI_COMM_NULL;
  int64_t started = 0;                                    // collectives started by this rank
  std::vector<std::pair<int64_t, MPI_Request>> pending;  // (handle = its number, request)
  std::vector<int64_t> arrived;                           // the latest number each peer announced
  std::vector<int64_t> incoming;                          // receive buffers of the notices
  std::vector<MPI_Request> receives;                      // one posted per peer
  std::vector<int64_t> notice_numbers;                    // [kNoticeSlots]: what each slot sends
  std::vector<MPI_Request> notice_sends;                  // [kNoticeSlots x size]: its sends

  MPI_Request* Pending(int64_t handle) {
    for (auto& [h, request] : pending) {
      if (h == handle) return &request;
    }
    return nullptr;
  }
  void Erase(int64_t handle) {
    std::erase_if(pending, [handle](const auto& p) { return p.first == handle; });
  }
};

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(int* argc, char*** argv,
                                                                         MpiOptions options) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized || finalized) {
    return absl::FailedPreconditionError(
        "MpiCommunicator::Create: MPI is already initialized in this process; create one "
        "communicator per process and pass it to every model");
  }
  if (options.ring_allreduce) {  // read by Open MPI's MPI_Init; the user's setting wins
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
  }
  int provided = 0;
  if (int e = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided); e != MPI_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("MPI_Init_thread failed: ", MpiError(e)));
  }
  auto state = std::make_unique<State>();
  MPI_Comm_dup(MPI_COMM_WORLD, &state->comm);
  MPI_Comm_set_errhandler(state->comm, MPI_ERRORS_RETURN);
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(options, std::move(state)));
}

MpiCommunicator::MpiCommunicator(MpiOptions options, std::unique_ptr<State> state)
    : options_(options), state_(std::move(state)) {
  State& s = *state_;
  MPI_Comm_rank(s.comm, &rank_);
  MPI_Comm_size(s.comm, &size_);
  s.arrived.assign(size_, 0);
  s.incoming.assign(size_, 0);
  s.receives.assign(size_, MPI_REQUEST_NULL);
  s.notice_numbers.assign(State::kNoticeSlots, 0);
  s.notice_sends.assign(State::kNoticeSlots * size_, MPI_REQUEST_NULL);
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    MPI_Irecv(&s.incoming[peer], 1, MPI_INT64_T, peer, kArrivalTag, s.comm, &s.receives[peer]);
  }
}

MpiCommunicator::~MpiCommunicator() {
  State& s = *state_;
  // A pending collective may never finish (a peer is gone): leave without
  // MPI_Finalize, and mpirun stops the other ranks.
  if (!s.pending.empty()) return;
  // Every rank ran as many collectives: take in the peers' last notices
  // (briefly; a peer that ran fewer has already failed), then finalize.
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  int sent = 0;
  while (absl::Now() < deadline && (!sent || !Missing(s.started).empty())) {
    MoveNotices();
    MPI_Testall(static_cast<int>(s.notice_sends.size()), s.notice_sends.data(), &sent, MPI_STATUSES_IGNORE);
  }
  for (MPI_Request& r : s.receives) {
    if (r == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
  MPI_Comm_free(&s.comm);
  MPI_Finalize();
}

void MpiCommunicator::MoveNotices() {
  State& s = *state_;
  for (int peer = 0; peer < size_; ++peer) {
    int done = 0;
    while (s.receives[peer] != MPI_REQUEST_NULL) {
      MPI_Test(&s.receives[peer], &done, MPI_STATUS_IGNORE);
      if (!done) break;
      s.arrived[peer] = s.incoming[peer];
      MPI_Irecv(&s.incoming[peer], 1, MPI_INT64_T, peer, kArrivalTag, s.comm, &s.receives[peer]);
    }
  }
}

void MpiCommunicator::Progress() {
  Exclusive exclusive(busy_);
  if (!exclusive.status().ok()) return;  // another thread is in a collective: it progresses
  for (auto& [handle, request] : state_->pending) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);  // a finished request becomes MPI_REQUEST_NULL
  }
}

// Numbers the next collective, sends that number to every peer, and adds a
// pending entry for its request.
int64_t MpiCommunicator::Announce() {
  State& s = *state_;
  ++s.started;
  const int64_t slot = s.started % State::kNoticeSlots;
  MPI_Request* sends = &s.notice_sends[slot * size_];
  // The slot's sends of kNoticeSlots collectives ago (tiny, long delivered).
  MPI_Waitall(size_, sends, MPI_STATUSES_IGNORE);
  s.notice_numbers[slot] = s.started;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_) MPI_Isend(&s.notice_numbers[slot], 1, MPI_INT64_T, peer, kArrivalTag, s.comm, &sends[peer]);
  }
  s.pending.push_back({s.started, MPI_REQUEST_NULL});
  return s.started;
}

std::vector<int> MpiCommunicator::Missing(int64_t handle) const {
  std::vector<int> missing;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_ && state_->arrived[peer] < handle) missing.push_back(peer);
  }
  return missing;
}

absl::Status MpiCommunicator::TimedOut(int64_t handle) const {
  std::vector<int> missing = Missing(handle);
  std::string who =
      missing.empty() ? std::string("every rank reached it; MPI itself is stuck")
                      : absl::StrCat("rank", missing.size() > 1 ? "s " : " ", absl::StrJoin(missing, ", "),
                                     " never reached it (dead, hung, or running another graph)");
  return absl::DeadlineExceededError(absl::StrCat(
      "MpiCommunicator: collective ", handle, " on rank ", rank_, " of ", size_,
      " did not finish within ", absl::FormatDuration(options_.timeout), ": ", who,
      ". Raise MpiOptions::timeout for slow ranks, or stop the job"));
}

absl::Status MpiCommunicator::Complete(int64_t handle) {
  State& s = *state_;
  MPI_Request* request = s.Pending(handle);  // stays put: nothing is added while waiting
  if (request == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MpiCommunicator::Wait: no pending collective ", handle, " (each handle is waited once)"));
  }
  const absl::Time start = absl::Now(), deadline = start + options_.timeout;
  while (true) {
    int done = 0;
    if (int e = MPI_Test(request, &done, MPI_STATUS_IGNORE); e != MPI_SUCCESS) {
      return absl::InternalError(absl::StrCat("MpiCommunicator: collective ", handle, " on rank ",
                                              rank_, " failed: ", MpiError(e)));
    }
    if (done) break;
    MoveNotices();
    if (absl::Now() > deadline) return TimedOut(handle);
  }
  stats_.completed += 1;
  stats_.wait_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  s.Erase(handle);
  MoveNotices();
  return absl::OkStatus();
}

// Starts collective `what` over `count` elements (`unit`): `call(count,
// request)` is the MPI call. Returns its handle.
template <typename Call>
absl::StatusOr<int64_t> MpiCommunicator::Begin(const char* what, size_t count, const char* unit, Call call) {
  if (count > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MpiCommunicator: ", what, " of ", count, " ", unit, " is more than MPI's int count allows (",
        INT_MAX, "); split it (for gradients: smaller DataParallelOptions::bucket_bytes)"));
  }
  const int64_t handle = Announce();
  if (int e = call(static_cast<int>(count), state_->Pending(handle)); e != MPI_SUCCESS) {
    state_->Erase(handle);
    return absl::InternalError(
        absl::StrCat("MpiCommunicator: ", what, " on rank ", rank_, " failed: ", MpiError(e)));
  }
  return handle;
}

absl::StatusOr<int64_t> MpiCommunicator::StartAllReduceSum(float* data, size_t count) {
  Exclusive exclusive(busy_);
  GF_RETURN_IF_ERROR(exclusive.status());
  return Begin("MPI_Iallreduce", count, "floats", [&](int n, MPI_Request* request) {
    return MPI_Iallreduce(MPI_IN_PLACE, data, n, MPI_FLOAT, MPI_SUM, state_->comm, request);
  });
}

absl::Status MpiCommunicator::Wait(int64_t handle) {
  Exclusive exclusive(busy_);
  GF_RETURN_IF_ERROR(exclusive.status());
  return Complete(handle);
}

absl::Status MpiCommunicator::AllReduceSum(double* data, size_t count) {
  Exclusive exclusive(busy_);
  GF_RETURN_IF_ERROR(exclusive.status());
  GF_ASSIGN_OR_RETURN(const int64_t handle, Begin("MPI_Iallreduce", count, "doubles", [&](int n, MPI_Request* request) {
    return MPI_Iallreduce(MPI_IN_PLACE, data, n, MPI_DOUBLE, MPI_SUM, state_->comm, request);
  }));
  return Complete(handle);
}

absl::Status MpiCommunicator::Broadcast(void* data, size_t bytes, int root) {
  Exclusive exclusive(busy_);
  GF_RETURN_IF_ERROR(exclusive.status());
  if (root < 0 || root >= size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("MpiCommunicator::Broadcast: root ", root, " is not a rank of 0..", size_ - 1));
  }
  GF_ASSIGN_OR_RETURN(const int64_t handle, Begin("MPI_Ibcast", bytes, "bytes", [&](int n, MPI_Request* request) {
    return MPI_Ibcast(data, n, MPI_BYTE, root, state_->comm, request);
  }));
  return Complete(handle);
}

}  // namespace gradflow
