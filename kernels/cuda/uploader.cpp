// The CUDA Uploader (core/backend.h): page-locked host memory, a landing
// buffer from the caching allocator, and a copy stream of its own, ordered
// against the backend's stream by two events:
//   sent_   recorded on the copy stream after each host-to-device copy:
//           take() makes the backend's stream wait for it, host() waits for
//           it on the host (the copy reads the host memory);
//   taken_  recorded on the backend's stream after each take's copies out
//           of the landing buffer (and once when the uploader is made,
//           since the landing block may have been another tensor's until
//           then): the next send's copy waits for it.
// So a send overlaps whatever the backend's stream is running, and the
// landing buffer and host memory are never rewritten while still read.
#include "sagan/kernels/cuda/cuda_backend.h"

namespace sagan {

namespace {

class CudaUploader final : public Uploader {
 public:
  CudaUploader(CudaBackend& be, size_t capacity) : be_(be), capacity_(capacity) {
    cuda::DeviceGuard guard(be_.index());
    try {
      SAGAN_CUDA_CHECK("uploader", cudaHostAlloc(&host_, capacity_, cudaHostAllocDefault));
      landing_ = be_.buffer(capacity_);
      SAGAN_CUDA_CHECK("uploader", cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
      SAGAN_CUDA_CHECK("uploader", cudaEventCreateWithFlags(&sent_, cudaEventDisableTiming));
      SAGAN_CUDA_CHECK("uploader", cudaEventCreateWithFlags(&taken_, cudaEventDisableTiming));
      // The landing block comes from the caching allocator, which hands a
      // freed block on at once because its users all queue on the backend's
      // stream; the copy stream does not. So the first send waits for the
      // backend's stream as it is now, like every later send waits for the
      // take before it.
      SAGAN_CUDA_CHECK("uploader", cudaEventRecord(taken_, be_.stream()));
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaUploader() override {
    try {
      cuda::DeviceGuard guard(be_.index());
      release();
    } catch (...) {  // never throws (see CudaGraph's destructor)
    }
  }

  size_t capacity() const override { return capacity_; }

  void* host() override {
    cuda::DeviceGuard guard(be_.index());
    SAGAN_CUDA_CHECK("uploader", cudaEventSynchronize(sent_));  // no-op before the first send
    return host_;
  }

  void send(size_t nbytes) override {
    SAGAN_CHECK(nbytes <= capacity_, "cuda:{}: upload of {} bytes into a stage of {}", be_.index(), nbytes,
                capacity_);
    cuda::DeviceGuard guard(be_.index());
    SAGAN_CUDA_CHECK("uploader", cudaStreamWaitEvent(copy_stream_, taken_, 0));
    if (nbytes > 0)
      SAGAN_CUDA_CHECK("uploader", cudaMemcpyAsync(landing_.get(), host_, nbytes, cudaMemcpyHostToDevice,
                                                   copy_stream_));
    SAGAN_CUDA_CHECK("uploader", cudaEventRecord(sent_, copy_stream_));
  }

  void take(const std::vector<Piece>& pieces) override {
    cuda::DeviceGuard guard(be_.index());
    // Recorded into a graph, the wait and the event would order nothing at
    // its replays.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    SAGAN_CUDA_CHECK("uploader", cudaStreamIsCapturing(be_.stream(), &capturing));
    SAGAN_CHECK(capturing == cudaStreamCaptureStatusNone, "cuda:{}: an upload taken during a graph capture",
                be_.index());
    SAGAN_CUDA_CHECK("uploader", cudaStreamWaitEvent(be_.stream(), sent_, 0));
    for (const Piece& p : pieces) {
      SAGAN_CHECK(p.offset + p.nbytes <= capacity_, "cuda:{}: upload piece [{}, {}) past a stage of {} bytes",
                  be_.index(), p.offset, p.offset + p.nbytes, capacity_);
      if (p.nbytes > 0)
        SAGAN_CUDA_CHECK("uploader", cudaMemcpyAsync(p.dst, landing_.get<std::byte>() + p.offset, p.nbytes,
                                                     cudaMemcpyDeviceToDevice, be_.stream()));
    }
    SAGAN_CUDA_CHECK("uploader", cudaEventRecord(taken_, be_.stream()));
  }

 private:
  // Waits for the copy stream (its copy writes the landing buffer and reads
  // the host memory); the backend's stream reads the landing buffer in
  // order before any later user of its block. Ignores errors.
  void release() {
    if (copy_stream_ && cudaStreamSynchronize(copy_stream_) != cudaSuccess) (void)cudaGetLastError();
    landing_.reset();
    if (sent_) (void)cudaEventDestroy(sent_);
    if (taken_) (void)cudaEventDestroy(taken_);
    if (copy_stream_) (void)cudaStreamDestroy(copy_stream_);
    if (host_) (void)cudaFreeHost(host_);
    sent_ = taken_ = nullptr;
    copy_stream_ = nullptr;
    host_ = nullptr;
    (void)cudaGetLastError();
  }

  CudaBackend& be_;
  size_t capacity_;
  void* host_ = nullptr;
  cuda::Buffer landing_;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t sent_ = nullptr, taken_ = nullptr;
};

}  // namespace

std::unique_ptr<Uploader> CudaBackend::make_uploader(size_t capacity) {
  return std::make_unique<CudaUploader>(*this, capacity);
}

}  // namespace sagan
