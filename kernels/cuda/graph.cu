// CUDA graphs (Backend::capture): body's kernels recorded by stream capture
// on the backend's one stream, instantiated once, replayed with one
// cudaGraphLaunch. Tensors allocated during the capture come from a private
// pool of the caching allocator (allocator.h), which the graph keeps until
// it is destroyed, since its replays write and read them there.
#include "sagan/core/kernel_profile.h"
#include "sagan/core/sync_free.h"
#include "sagan/kernels/cuda/cuda_backend.h"

namespace sagan {

namespace {

class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(CudaBackend& be, cudaGraphExec_t exec, int pool) : be_(be), exec_(exec), pool_(pool) {}
  ~CudaGraph() override {
    // Never throws: after a sticky error (a trapped kernel) the device guard
    // or the synchronise would, and a destructor must not.
    try {
      cuda::DeviceGuard guard(be_.index());
      // A replay may still run: its pool goes back only after it.
      if (cudaStreamSynchronize(be_.stream()) != cudaSuccess) (void)cudaGetLastError();
      if (cudaGraphExecDestroy(exec_) != cudaSuccess) (void)cudaGetLastError();
      be_.allocator().release_pool(pool_);
    } catch (...) {
    }
  }
  void replay() override {
    cuda::DeviceGuard guard(be_.index());
    SAGAN_CUDA_CHECK("graph replay", cudaGraphLaunch(exec_, be_.stream()));
    // SAGAN_CUDA_SYNC=1 waits after each launch to name a failing kernel;
    // a replay is one launch of many kernels, so the most it can name is
    // the graph, and the way to the kernel.
    if (cuda::sync_after_launch()) {
      const cudaError_t err = cudaStreamSynchronize(be_.stream());
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        SAGAN_FAIL(
            "cuda:{}: a kernel of a replayed CUDA graph failed: {} ({}); run again without CUDA graphs "
            "(sagan-train: without --cuda-graph) and with SAGAN_CUDA_SYNC=1 to name it",
            be_.index(), cudaGetErrorString(err), cudaGetErrorName(err));
      }
    }
  }

 private:
  CudaBackend& be_;
  cudaGraphExec_t exec_;
  int pool_;
};

}  // namespace

std::unique_ptr<DeviceGraph> CudaBackend::capture(std::function<void()> body) {
  SAGAN_CHECK(body != nullptr, "cuda:{}: capture of an empty body", index_);
  cuda::DeviceGuard guard(index_);
  // The capture allocates everything anew in its pool and cannot empty the
  // common cache mid-way (that synchronises): empty it first, so a large
  // model does not hold both.
  allocator_.empty_cache();
  const int pool = allocator_.begin_pool();
  // Thread-local mode: another thread's CUDA calls go on; this thread's
  // unsafe ones (a synchronisation, a pageable copy) fail the capture with
  // an error instead of being recorded wrongly.
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) {
    allocator_.end_pool();
    allocator_.release_pool(pool);
    cuda::throw_cuda_error("capture", "cudaStreamBeginCapture", err);
  }
  try {
    // A captured kernel call queues nothing and the stream may not be
    // synchronised: SAGAN_PROFILE neither times nor counts it.
    profile::PauseScope unprofiled;
    // A host read would synchronise, which fails the capture: name it instead.
    SyncFreeScope region("a CUDA graph capture (Backend::capture)");
    body();
  } catch (...) {
    (void)cudaStreamEndCapture(stream_, &graph);  // ends the (invalidated) capture
    (void)cudaGetLastError();
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    allocator_.end_pool();
    allocator_.release_pool(pool);
    throw;
  }
  err = cudaStreamEndCapture(stream_, &graph);
  allocator_.end_pool();
  if (err != cudaSuccess) {
    allocator_.release_pool(pool);
    cuda::throw_cuda_error("capture", "cudaStreamEndCapture (something in the captured work is not capturable)", err);
  }
  cudaGraphExec_t exec = nullptr;
  // Auto-free: should a library have allocated stream-ordered memory in the
  // capture that it frees only later, a replay would otherwise fail with
  // cudaErrorInvalidValue while that allocation is live (PyTorch passes the
  // flag for the same reason).
  err = cudaGraphInstantiate(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch);
  (void)cudaGraphDestroy(graph);
  if (err != cudaSuccess) {
    allocator_.release_pool(pool);
    cuda::throw_cuda_error("capture", "cudaGraphInstantiate", err);
  }
  return std::make_unique<CudaGraph>(*this, exec, pool);
}

}  // namespace sagan
