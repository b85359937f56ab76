// MPI: all-reduces CPU tensors in place (MPI_Allreduce, MPI_Iallreduce on
// MPI_COMM_WORLD), and bootstraps NCCL (nccl_communicator.h). Built when
// CMake finds MPI (SAGAN_MPI); one instance per process, made by
// init_world() (launch.h), which owns MPI_Init and MPI_Finalize.
#pragma once
#include "sagan/dist/communicator.h"

namespace sagan::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Calls MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread talks
  // to MPI; the data loader's threads never do) unless MPI is initialised.
  MpiCommunicator(int* argc, char*** argv);
  ~MpiCommunicator() override;  // MPI_Finalize
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  const char* backend_name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  void all_reduce_sum(const Tensor& t) override;
  std::unique_ptr<PendingReduce> start_all_reduce_sum(const Tensor& t) override;
  std::vector<uint64_t> all_gather(uint64_t value) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int exit_code) override;
  bool serves(Device device) const override { return device.is_cpu(); }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool finalize_ = false;
};

}  // namespace sagan::dist
