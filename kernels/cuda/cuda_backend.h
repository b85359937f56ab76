// The CUDA backend: one instance per device, each with one non-blocking
// stream on which every kernel, copy and library call (cuBLAS, cuDNN) of that
// device is queued, and one caching allocator. Kernel groups live beside this
// header in kernels/cuda/<group>.cu, named like their op front ends.
//
// Synchronisation: kernels are asynchronous; copy_to_host, copy_from_host and
// synchronize() wait for the stream, so the host never reads unfinished data
// and a host buffer may be freed as soon as a copy returns.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <mutex>

#include "core/backend.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_runtime_api.h"

namespace sagan {

namespace cuda {

// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    SAGAN_CUDA_CHECK("cuda", cudaGetDevice(&prev_));
    if (prev_ != device_) SAGAN_CUDA_CHECK("cuda", cudaSetDevice(device_));
  }
  ~DeviceGuard() {
    if (prev_ != device_) (void)cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_;
  int prev_ = 0;
};

// A device workspace from the caching allocator, returned on scope exit.
// Returning it while kernels that use it are still queued is safe: the next
// user of the block is queued on the same stream behind them.
class Buffer {
 public:
  Buffer() = default;
  Buffer(CachingAllocator& a, size_t nbytes) : alloc_(&a), ptr_(a.allocate(nbytes)), nbytes_(nbytes) {}
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept : alloc_(o.alloc_), ptr_(o.ptr_), nbytes_(o.nbytes_) { o.ptr_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      alloc_ = o.alloc_, ptr_ = o.ptr_, nbytes_ = o.nbytes_;
      o.ptr_ = nullptr;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void reset() {
    if (ptr_ && alloc_) alloc_->free(ptr_);
    ptr_ = nullptr;
  }
  template <class T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  size_t size() const { return nbytes_; }

 private:
  CachingAllocator* alloc_ = nullptr;
  void* ptr_ = nullptr;
  size_t nbytes_ = 0;
};

struct ConvPlan;  // conv2d.cu
// dtype, B, Ci, H, W, Co, k, stride, pad, tf32
using ConvKey = std::array<int64_t, 10>;

}  // namespace cuda

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  const char* name() const override { return "cuda"; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void synchronize() override;

  void fill(Tensor& out, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;

  void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      double alpha) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;

  void sum(const Tensor& x, Tensor& out) override;
  void softmax(const Tensor& x, Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) override;

  void bmm(const Tensor& a, const Tensor& b, Tensor& out, double beta) override;

  void conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out, Conv2dGeom g) override;
  void conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dGeom g) override;
  void conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dGeom g) override;

  void batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& invstd, double eps) override;
  void batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& out) override;
  void batch_norm_backward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
                           Tensor& gx) override;

  void avg_pool2x2(const Tensor& x, Tensor& out) override;
  void avg_pool2x2_backward(const Tensor& gy, Tensor& gx) override;
  void max_pool2x2(const Tensor& x, Tensor& out) override;
  void max_pool2x2_backward(const Tensor& x, const Tensor& gy, Tensor& gx) override;
  void upsample_nearest2x(const Tensor& x, Tensor& out) override;
  void upsample_nearest2x_backward(const Tensor& gy, Tensor& gx) override;

  void index_select(const Tensor& x, const Tensor& idx, Tensor& out) override;
  void index_add(const Tensor& src, const Tensor& idx, Tensor& out) override;

  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                         Tensor* map) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                          const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv) override;

  void power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                       double eps) override;

  void adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                   std::vector<Tensor>& v, const AdamHyper& h) override;
  void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay) override;

  // ---- for the kernel files ----
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  int sm_count() const { return sm_count_; }
  cuda::CachingAllocator& allocator() { return allocator_; }
  cuda::Buffer buffer(size_t nbytes) { return cuda::Buffer(allocator_, nbytes); }
  // cuBLAS with TF32 allowed or not for this call (float32 only).
  cublasHandle_t cublas(bool allow_tf32 = false);
  cudnnHandle_t cudnn();  // created on first use
  // The convolution plan (descriptors, chosen algorithms) of one geometry.
  cuda::ConvPlan& conv_plan(const cuda::ConvKey& key);

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
  int sm_count_ = 1;
  cuda::CachingAllocator allocator_;
  cublasHandle_t cublas_ = nullptr;
  cublasMath_t cublas_math_ = CUBLAS_DEFAULT_MATH;
  cudnnHandle_t cudnn_ = nullptr;
  std::mutex mu_;  // guards cudnn_ creation and conv_plans_
  // Held by the conv2d methods while they build a plan, time algorithms and
  // run one.
  std::mutex plan_mutex_;
  std::map<cuda::ConvKey, std::unique_ptr<cuda::ConvPlan>> conv_plans_;
};

namespace cuda {
// The backend of device `index` as its concrete type (see cuda_backend()).
CudaBackend& backend(int index);
// Checks that t is defined and lives on be's device; names the op.
void check_on(const CudaBackend& be, const char* op, const Tensor& t, const char* what);
// t itself when contiguous, else a dense copy made on be's stream: kernels
// that index inputs densely use it rather than misread a view.
Tensor dense(CudaBackend& be, const Tensor& t);
}  // namespace cuda

}  // namespace sagan
