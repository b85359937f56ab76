#include "sagan/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <exception>
#include <mutex>
#include <vector>

#include "sagan/core/error.h"
#include "sagan/dist/watchdog.h"
#include "sagan/kernels/cuda/cuda_backend.h"

namespace sagan::dist {

namespace {
// The result's name ("unhandled system error") and NCCL's own last message,
// which says what failed (ncclGetLastError's argument is unused).
void check_nccl(ncclResult_t rc, const char* call) {
  if (rc == ncclSuccess) return;
  const char* last = ncclGetLastError(nullptr);
  SAGAN_FAIL("{} failed: {}{}{} (NCCL_DEBUG=WARN prints more)", call, ncclGetErrorString(rc),
             last && *last ? ": " : "", last ? last : "");
}
void check_cuda(cudaError_t rc, const char* call) {
  if (rc == cudaSuccess) return;
  (void)cudaGetLastError();  // else the next kernel launch's check reports it again, as its own
  SAGAN_FAIL("{} failed: {}", call, cudaGetErrorString(rc));
}
ncclDataType_t nccl_type(const Tensor& t) { return t.dtype() == DType::F64 ? ncclFloat64 : ncclFloat32; }
}  // namespace

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t comm_stream = nullptr;
  cudaStream_t compute = nullptr;  // the CUDA backend's stream of this device
  // Events for the pending reductions, reused: none is created or destroyed
  // while a step graph is being captured (after the first plain iteration
  // the pool holds all a step needs).
  std::mutex mu;
  std::vector<cudaEvent_t> free_events;
  cudaEvent_t take_event() {
    std::lock_guard<std::mutex> lock(mu);
    if (!free_events.empty()) {
      cudaEvent_t e = free_events.back();
      free_events.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    return e;
  }
  void give_event(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mu);
    free_events.push_back(e);
  }
};

namespace {
// Under stream capture (a step graph, Backend::capture) the two event
// records and waits become the graph's edges into and out of the
// communication stream, and the all-reduce a node between them.
class NcclPending final : public PendingReduce {
 public:
  NcclPending(const Tensor& t, NcclCommunicator::State& st, int device) : keep_(t), st_(st), device_(device) {
    cuda::DeviceGuard dg(device_);
    grads_done_ = st_.take_event();
    try {
      done_ = st_.take_event();  // may create one, and fail: grads_done_ goes back to the pool
      check_cuda(cudaEventRecord(grads_done_, st_.compute), "cudaEventRecord");
      check_cuda(cudaStreamWaitEvent(st_.comm_stream, grads_done_, 0), "cudaStreamWaitEvent");
      check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum,
                               st_.comm, st_.comm_stream),
                 "ncclAllReduce");
      check_cuda(cudaEventRecord(done_, st_.comm_stream), "cudaEventRecord");
    } catch (...) {
      st_.give_event(grads_done_);
      if (done_) st_.give_event(done_);
      throw;
    }
  }
  ~NcclPending() override {
    // The compute stream must not reuse the bucket's memory before NCCL is
    // done with it. Each event is re-recorded only after this wait. The wait
    // fails on an event of an abandoned capture (a body that threw): the
    // error is cleared, or the next launch check would report it.
    cuda::DeviceGuard dg(device_);
    if (cudaStreamWaitEvent(st_.compute, done_, 0) != cudaSuccess) (void)cudaGetLastError();
    st_.give_event(grads_done_);
    st_.give_event(done_);
  }
  // Queried only outside a capture: there the event stands for a graph
  // node, and a query would invalidate the capture. NCCL needs no polling.
  bool test() override {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(st_.compute, &capturing) != cudaSuccess || capturing != cudaStreamCaptureStatusNone)
      return false;
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaErrorNotReady) {
      // Not an error, but the runtime may keep it as the thread's last
      // error, which the next kernel's launch check would report.
      (void)cudaGetLastError();
      return false;
    }
    check_cuda(e, "cudaEventQuery");
    return true;
  }
  void wait() override {
    cuda::DeviceGuard dg(device_);
    check_cuda(cudaStreamWaitEvent(st_.compute, done_, 0), "cudaStreamWaitEvent");
  }

 private:
  Tensor keep_;
  NcclCommunicator::State& st_;
  int device_;
  cudaEvent_t grads_done_ = nullptr, done_ = nullptr;
};
}  // namespace

NcclCommunicator::NcclCommunicator(std::shared_ptr<Communicator> bootstrap, Device device)
    : host_(std::move(bootstrap)), device_(device), state_(std::make_unique<State>()) {
  SAGAN_CHECK(host_ != nullptr, "NCCL communicator: no bootstrap communicator");
  SAGAN_CHECK(device_.is_cuda(), "NCCL communicator: device {} is not a GPU", device_name(device_));
  cuda::DeviceGuard dg(device_.index);
  state_->compute = cuda::backend(device_.index).stream();
  check_cuda(cudaStreamCreateWithFlags(&state_->comm_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  ncclUniqueId id;
  if (host_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  host_->broadcast(&id, sizeof id, 0);
  {
    WaitMark mark("ncclCommInitRank");  // returns once every rank has joined
    check_nccl(ncclCommInitRank(&state_->comm, host_->size(), id, host_->rank()), "ncclCommInitRank");
  }
}

NcclCommunicator::~NcclCommunicator() {
  // ncclCommDestroy first flushes outstanding operations, which can wait
  // forever on a peer that died; while an exception unwinds (a failed step
  // on this rank or another) the communicator is aborted instead.
  if (state_->comm) {
    if (std::uncaught_exceptions() > 0)
      ncclCommAbort(state_->comm);
    else
      ncclCommDestroy(state_->comm);
  }
  for (cudaEvent_t e : state_->free_events) (void)cudaEventDestroy(e);
  if (state_->comm_stream) cudaStreamDestroy(state_->comm_stream);
}

void NcclCommunicator::all_reduce_sum(const Tensor& t) {
  if (!t.device().is_cuda()) return host_->all_reduce_sum(t);
  check_reducible("NCCL all-reduce", t);
  SAGAN_CHECK(t.device() == device_, "NCCL all-reduce: the tensor is on {}, this rank's GPU is {}",
              device_name(t.device()), device_name(device_));
  cuda::DeviceGuard dg(device_.index);
  check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum,
                           state_->comm, state_->compute),
             "ncclAllReduce");
  t.bump_version();  // changed in place (core/storage.h)
}

std::unique_ptr<PendingReduce> NcclCommunicator::start_all_reduce_sum(const Tensor& t) {
  if (!t.device().is_cuda()) return host_->start_all_reduce_sum(t);
  check_reducible("NCCL all-reduce", t);
  SAGAN_CHECK(t.device() == device_, "NCCL all-reduce: the tensor is on {}, this rank's GPU is {}",
              device_name(t.device()), device_name(device_));
  t.bump_version();
  return std::make_unique<NcclPending>(t, *state_, device_.index);
}

std::string NcclCommunicator::async_error() const {
  // NCCL's documented way to learn of a failure while its kernels wait: a
  // broken link leaves them waiting forever, with nothing returned to the
  // calls that queued them.
  ncclResult_t async = ncclSuccess;
  const ncclResult_t rc = state_->comm ? ncclCommGetAsyncError(state_->comm, &async) : ncclSuccess;
  if (rc != ncclSuccess) return fmt::format("ncclCommGetAsyncError failed: {}", ncclGetErrorString(rc));
  // (Not ncclGetLastError: one process-wide buffer, written by NCCL's
  // threads under a lock this thread does not hold.)
  if (async != ncclSuccess && async != ncclInProgress)
    return fmt::format("NCCL reported an asynchronous error: {} (NCCL_DEBUG=WARN prints more)",
                       ncclGetErrorString(async));
  return host_->async_error();
}

void NcclCommunicator::abort(int exit_code) {
  if (state_->comm) ncclCommAbort(state_->comm);
  state_->comm = nullptr;
  host_->abort(exit_code);
  std::_Exit(exit_code);  // not reached: abort() ends the process
}

}  // namespace sagan::dist
