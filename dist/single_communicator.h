// One process, no communication: every collective is the identity. What a
// run uses when it is not launched by mpirun or srun, and what a build
// without MPI always uses.
#pragma once
#include "sagan/dist/communicator.h"

namespace sagan::dist {

class SingleCommunicator : public Communicator {
 public:
  const char* backend_name() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce_sum(const Tensor& t) override;
  std::unique_ptr<PendingReduce> start_all_reduce_sum(const Tensor& t) override;
  std::vector<uint64_t> all_gather(uint64_t value) override { return {value}; }
  void broadcast(void*, size_t, int root) override;
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override;
  bool serves(Device) const override { return true; }
};

}  // namespace sagan::dist
