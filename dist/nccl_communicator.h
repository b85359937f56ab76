// NCCL: all-reduces GPU tensors in place on one device per rank; host
// values (hashes, flags) and CPU tensors go through the bootstrap
// communicator (MPI, or the single one for a one-rank job). As in llm.c,
// rank 0 makes the NCCL unique id and the bootstrap communicator broadcasts
// it. Built when the CUDA backend is and CMake finds NCCL (SAGAN_WITH_NCCL).
//
// Streams: a blocking all_reduce_sum is queued on the device's compute
// stream (the CUDA backend's one stream), so it is ordered with the kernels
// around it. start_all_reduce_sum runs on a separate communication stream
// that first waits for the compute stream's work so far (the gradients of
// the bucket), so backward's later kernels overlap the transfer; wait()
// makes the compute stream wait for it, without blocking the host. None of
// it waits on the host or creates CUDA objects once the pool of events is
// warm, so a step graph can record it (Trainer::set_step_graph).
#pragma once
#include <memory>

#include "sagan/dist/communicator.h"

namespace sagan::dist {

class NcclCommunicator final : public Communicator {
 public:
  // `bootstrap` gives rank, size and the id broadcast; `device` the GPU of
  // this rank (cuda:<local rank> for a launched job).
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, Device device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  const char* backend_name() const override { return "nccl"; }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  void all_reduce_sum(const Tensor& t) override;
  std::unique_ptr<PendingReduce> start_all_reduce_sum(const Tensor& t) override;
  std::vector<uint64_t> all_gather(uint64_t value) override { return host_->all_gather(value); }
  void broadcast(void* data, size_t bytes, int root) override { host_->broadcast(data, bytes, root); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int exit_code) override;
  bool serves(Device device) const override { return device == device_ || host_->serves(device); }
  std::string async_error() const override;  // ncclCommGetAsyncError, then the bootstrap's

  struct State;  // NCCL and CUDA handles, kept out of this header (and used by its pending reductions)

 private:
  std::shared_ptr<Communicator> host_;
  Device device_;
  std::unique_ptr<State> state_;
};

}  // namespace sagan::dist
