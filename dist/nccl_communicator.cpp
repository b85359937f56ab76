#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace sagan::dist {

namespace {
void check_nccl(ncclResult_t rc, const char* call) {
  SAGAN_CHECK(rc == ncclSuccess, "{} failed: {}", call, ncclGetErrorString(rc));
}
void check_cuda(cudaError_t rc, const char* call) {
  SAGAN_CHECK(rc == cudaSuccess, "{} failed: {}", call, cudaGetErrorString(rc));
}
ncclDataType_t nccl_type(const Tensor& t) { return t.dtype() == DType::F64 ? ncclFloat64 : ncclFloat32; }
}  // namespace

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t comm_stream = nullptr;
  cudaStream_t compute = nullptr;  // the CUDA backend's stream of this device
};

namespace {
class NcclPending final : public PendingReduce {
 public:
  NcclPending(const Tensor& t, ncclComm_t comm, cudaStream_t compute, cudaStream_t comm_stream, int device)
      : keep_(t), compute_(compute), device_(device) {
    cuda::DeviceGuard dg(device_);
    cudaEvent_t grads_done = nullptr;
    check_cuda(cudaEventCreateWithFlags(&grads_done, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventRecord(grads_done, compute), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(comm_stream, grads_done, 0), "cudaStreamWaitEvent");
    check_cuda(cudaEventDestroy(grads_done), "cudaEventDestroy");  // released once it has fired
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, comm,
                             comm_stream),
               "ncclAllReduce");
    check_cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventRecord(done_, comm_stream), "cudaEventRecord");
  }
  ~NcclPending() override {
    if (done_) {
      // The compute stream must not reuse the bucket's memory before NCCL is
      // done with it.
      cuda::DeviceGuard dg(device_);
      (void)cudaStreamWaitEvent(compute_, done_, 0);
      (void)cudaEventDestroy(done_);
    }
  }
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }
  void wait() override {
    cuda::DeviceGuard dg(device_);
    check_cuda(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
  }

 private:
  Tensor keep_;
  cudaStream_t compute_;
  int device_;
  cudaEvent_t done_ = nullptr;
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
  check_nccl(ncclCommInitRank(&state_->comm, host_->size(), id, host_->rank()), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (state_->comm) ncclCommDestroy(state_->comm);
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
}

std::unique_ptr<PendingReduce> NcclCommunicator::start_all_reduce_sum(const Tensor& t) {
  if (!t.device().is_cuda()) return host_->start_all_reduce_sum(t);
  check_reducible("NCCL all-reduce", t);
  SAGAN_CHECK(t.device() == device_, "NCCL all-reduce: the tensor is on {}, this rank's GPU is {}",
              device_name(t.device()), device_name(device_));
  return std::make_unique<NcclPending>(t, state_->comm, state_->compute, state_->comm_stream, device_.index);
}

void NcclCommunicator::abort(int exit_code) {
  if (state_->comm) ncclCommAbort(state_->comm);
  state_->comm = nullptr;
  host_->abort(exit_code);
  std::_Exit(exit_code);  // not reached: abort() ends the process
}

}  // namespace sagan::dist
