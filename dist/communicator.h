// Communicator: the collective operations a data-parallel run needs (issue
// 13), over whatever engine moves the bytes: nothing (one process,
// single_communicator.h), MPI for CPU tensors (mpi_communicator.h), NCCL for
// GPU tensors (nccl_communicator.h, bootstrapped over another communicator).
//
// Every rank must call the collectives of a communicator in the same order
// (MPI's and NCCL's rule): the trainer does, since every rank runs the same
// graph and autograd visits it in a fixed order.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::dist {

// A reduction started by Communicator::start_all_reduce_sum.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  // Nudges the transfer along (MPI progresses non-blocking collectives only
  // inside MPI calls); true once it is done. Never blocks.
  virtual bool test() = 0;
  // After wait() the tensor holds the sum for whoever reads it next: on the
  // CPU the host, on a GPU the kernels queued after it (the host is not
  // blocked).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* backend_name() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank among the processes of this machine (which GPU a rank drives).
  virtual int local_rank() const = 0;

  // t = sum of t over all ranks, in place; t contiguous, float32 or float64,
  // on a device this communicator serves (serves()). Returns when t may be
  // read (on a GPU: by the kernels queued next).
  virtual void all_reduce_sum(const Tensor& t) = 0;
  // The same, started now and finished by the returned handle's wait(). t
  // must not be written or freed before then.
  virtual std::unique_ptr<PendingReduce> start_all_reduce_sum(const Tensor& t) = 0;
  // Every rank's value, in rank order (host values: hashes, flags, counts).
  virtual std::vector<uint64_t> all_gather(uint64_t value) = 0;
  // Root's bytes into every rank's buffer.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job now (MPI_Abort): the way out of a failure
  // on one rank while others wait in a collective.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Whether all_reduce_sum takes tensors on `device`.
  virtual bool serves(Device device) const = 0;

  // A failure that happened outside any call, as a message (NCCL's
  // asynchronous errors: a failed link); empty while all is well. Called
  // from the stall watchdog's thread (dist/watchdog.h) while the training
  // thread uses the communicator.
  virtual std::string async_error() const { return {}; }
};

// Checks all_reduce_sum's contract (names `who` in the message).
void check_reducible(const char* who, const Tensor& t);

// Root's text on every rank (a run directory named after rank 0's clock).
std::string broadcast_text(Communicator& comm, const std::string& text, int root = 0);

}  // namespace sagan::dist
