#include "sagan/dist/mpi_communicator.h"

#include <mpi.h>

#include <climits>

#include "sagan/core/error.h"
#include "sagan/dist/watchdog.h"

namespace sagan::dist {

namespace {

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  SAGAN_FAIL("{} failed: {}", call, std::string(text, static_cast<size_t>(len)));
}

// The MPI view of a reducible tensor: (pointer, count, type).
struct Buffer {
  void* data;
  int count;
  MPI_Datatype type;
};
Buffer mpi_buffer(const Tensor& t) {
  check_reducible("MPI all-reduce", t);
  SAGAN_CHECK(t.device().is_cpu(), "MPI all-reduce: the tensor is on {}; MPI reduces CPU tensors (NCCL GPU ones)",
              device_name(t.device()));
  SAGAN_CHECK(t.numel() <= INT_MAX, "MPI all-reduce: {} elements exceed MPI's int count; use smaller buckets",
              t.numel());
  return {t.raw_data(), static_cast<int>(t.numel()), t.dtype() == DType::F64 ? MPI_DOUBLE : MPI_FLOAT};
}

class MpiPending final : public PendingReduce {
 public:
  explicit MpiPending(const Tensor& t) : keep_(t) {
    Buffer b = mpi_buffer(t);
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, b.data, b.count, b.type, MPI_SUM, MPI_COMM_WORLD, &req_), "MPI_Iallreduce");
  }
  ~MpiPending() override {
    // Never leave MPI writing into memory that may be freed.
    WaitMark mark("MPI_Wait");
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  bool test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check_mpi(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override {
    WaitMark mark("MPI_Wait");
    if (req_ != MPI_REQUEST_NULL) check_mpi(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait");
  }

 private:
  Tensor keep_;  // holds the storage until the reduction is done
  MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace

MpiCommunicator::MpiCommunicator(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    // Below FUNNELED (MPI_THREAD_SINGLE) MPI may assume no other thread
    // exists, and OpenMP and the data loader run threads beside this one.
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();  // the destructor will not run: the constructor throws
      SAGAN_FAIL(
          "MPI_Init_thread: this MPI library gives thread level {} (MPI_THREAD_SINGLE), and sagan-train needs "
          "MPI_THREAD_FUNNELED ({}): its OpenMP and data loader threads run beside the one that calls MPI; "
          "use an MPI built with thread support",
          provided, MPI_THREAD_FUNNELED);
    }
    finalize_ = true;
  }
  // Errors come back as codes (check_mpi turns them into exceptions, which
  // end the job through abort()) rather than killing the job silently.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_free(&node);
}

MpiCommunicator::~MpiCommunicator() {
  if (finalize_) MPI_Finalize();
}

void MpiCommunicator::all_reduce_sum(const Tensor& t) {
  Buffer b = mpi_buffer(t);
  WaitMark mark("MPI_Allreduce");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, b.data, b.count, b.type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  t.bump_version();  // changed in place (core/storage.h)
}

std::unique_ptr<PendingReduce> MpiCommunicator::start_all_reduce_sum(const Tensor& t) {
  t.bump_version();
  return std::make_unique<MpiPending>(t);
}

std::vector<uint64_t> MpiCommunicator::all_gather(uint64_t value) {
  std::vector<uint64_t> out(static_cast<size_t>(size_));
  WaitMark mark("MPI_Allgather");
  check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, out.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  return out;
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  SAGAN_CHECK(bytes <= INT_MAX, "MPI broadcast: {} bytes exceed MPI's int count", bytes);
  WaitMark mark("MPI_Bcast");
  check_mpi(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
}

void MpiCommunicator::barrier() {
  WaitMark mark("MPI_Barrier");
  check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void MpiCommunicator::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; should it, leave anyway
}

}  // namespace sagan::dist
