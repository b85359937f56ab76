// The CUDA backend: one instance per device, each with one non-blocking
// stream on which every kernel, copy and library call (cuBLAS, cuDNN) of that
// device is queued, and one caching allocator. It implements the kernels
// SAGAN_CUDA_KERNELS lists (below), each a member defined in
// kernels/cuda/<group>.cu, named like its op front end; it declines the
// others, which then run on the CPU backend (core/backend.h).
//
// Backend checks that every tensor argument is on this device, and each
// kernel runs inside a KernelScope (this device made current), so the
// members below only compute: dense inputs where a kernel indexes densely,
// then dispatch on the dtype and launch (launch_float).
//
// Synchronisation: kernels are asynchronous; copy_to_host, copy_from_host and
// synchronize() wait for the stream, so the host never reads unfinished data
// and a host buffer may be freed as soon as a copy returns.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <mutex>

#include "sagan/core/backend.h"
#include "sagan/kernels/cuda/allocator.h"
#include "sagan/kernels/cuda/check.h"
#include "sagan/kernels/cuda/device_info.h"
#include "sagan/kernels/cuda/settings.h"

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
// dtype, B, Ci, H, W, Co, kh, kw, stride h, stride w, pad h, pad w,
// precision (0 fp32, 1 tf32, 2 bf16), deterministic
using ConvKey = std::array<int64_t, 14>;

}  // namespace cuda

// The kernels of core/kernels.def this backend implements.
// clang-format off
#define SAGAN_CUDA_KERNELS(X)                                                                             \
  X(fill) X(copy) X(unary) X(unary_backward) X(binary) X(sum) X(softmax) X(softmax_backward) X(log_softmax) \
  X(log_softmax_backward) X(bmm) X(conv2d) X(conv2d_backward_input) X(conv2d_backward_weight) X(conv2d_rect)  \
  X(conv2d_rect_backward_input) X(conv2d_rect_backward_weight) X(batch_norm_stats) X(batch_norm_normalize)    \
  X(batch_norm_backward) X(avg_pool2x2) X(avg_pool2x2_backward) X(max_pool2x2) X(max_pool2x2_backward)        \
  X(upsample_nearest2x) X(upsample_nearest2x_backward) X(pool2d) X(pool2d_backward) X(adaptive_avg_pool2d)    \
  X(adaptive_avg_pool2d_backward) X(resize_bilinear) X(resize_bilinear_backward) X(index_select) X(index_add) \
  X(attention_forward) X(attention_backward) X(power_iteration) X(adam_update) X(ema_update)
// clang-format on

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index);
  ~CudaBackend() override;
  const char* name() const override { return "cuda"; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void synchronize() override;
  // A CUDA graph of body's work (graph.cu; see Backend::capture).
  std::unique_ptr<DeviceGraph> capture(std::function<void()> body) override;
  // Page-locked host memory and a copy stream (uploader.cpp).
  std::unique_ptr<Uploader> make_uploader(size_t capacity) override;

  // The kernels of SAGAN_CUDA_KERNELS, with the parameters core/kernels.def
  // gives them (declared through their signature types).
#define SAGAN_CUDA_DECLARE(name) KernelSignature<KernelId::name>::type name;
  SAGAN_CUDA_KERNELS(SAGAN_CUDA_DECLARE)
#undef SAGAN_CUDA_DECLARE

  // ---- for the kernel files ----
  int index() const { return index_; }
  cudaStream_t stream() const { return stream_; }
  int sm_count() const { return sm_count_; }
  cuda::CachingAllocator& allocator() { return allocator_; }
  cuda::Buffer buffer(size_t nbytes) { return cuda::Buffer(allocator_, nbytes); }
  // cuBLAS with TF32 allowed or not for this call (float32 only).
  cublasHandle_t cublas(bool allow_tf32 = false);
  cudnnHandle_t cudnn();  // created on first use
  // The convolution plan (descriptors, chosen algorithms) of one geometry.
  cuda::ConvPlan& conv_plan(const cuda::ConvKey& key);
  // dispatch_float(dtype, op, f), then check_launch(op, kernel) for the
  // launch f made on stream().
  template <class F>
  void launch_float(DType dtype, const char* op, const char* kernel, F&& f) {
    dispatch_float(dtype, op, f);
    cuda::check_launch(op, kernel, stream_);
  }

 private:
  // Forward, backward-data and backward-filter of every convolution (conv2d.cu).
  void conv_forward(const char* op, const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                    Conv2dRectGeom g);
  void conv_backward_data(const char* op, const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dRectGeom g);
  void conv_backward_filter(const char* op, const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dRectGeom g);

  int index_;
  cudaStream_t stream_ = nullptr;
  int sm_count_ = 1;
  cuda::CachingAllocator allocator_;
  cublasHandle_t cublas_ = nullptr;
  cublasMath_t cublas_math_ = CUBLAS_DEFAULT_MATH;
  static constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;
  cuda::Buffer cublas_workspace_;  // after allocator_: returned to it first
  cudnnHandle_t cudnn_ = nullptr;
  std::mutex mu_;  // guards cudnn_ creation and conv_plans_
  // Held by the conv2d methods while they build a plan, time algorithms and
  // run one.
  std::mutex plan_mutex_;
  std::map<cuda::ConvKey, std::unique_ptr<cuda::ConvPlan>> conv_plans_;
};

namespace cuda {
// Around every kernel call: makes the backend's device current.
struct KernelScope : DeviceGuard {
  explicit KernelScope(CudaBackend& be) : DeviceGuard(be.index()) {}
};
// The backend of device `index` as its concrete type.
CudaBackend& backend(int index);
// Devices present; 0, never a throw, when there is no driver or device.
int device_count();
// t itself when contiguous, else a dense copy made on be's stream: kernels
// that index inputs densely use it rather than misread a view.
Tensor dense(CudaBackend& be, const Tensor& t);
}  // namespace cuda

}  // namespace sagan
