// Backend instances (one per device, created on first use and intentionally
// never destroyed: tensors held in static objects may be freed after main
// returns, when the CUDA runtime is already shutting down), their kernel
// tables, library handles, and the backend's registration with core.
#include "sagan/kernels/cuda/cuda_backend.h"

#include <mutex>
#include <vector>

#include "sagan/core/matmul_precision.h"
#include "sagan/core/warning.h"
#include "sagan/kernels/cuda/conv_plan.h"
#include "sagan/kernels/cuda/cublas_api.h"

namespace sagan {

namespace cuda {

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // no driver, no device: not an error here
      return 0;
    }
    return n;
  }();
  return count;
}

CudaBackend& backend(int index) {
  const int n = device_count();
  SAGAN_CHECK(index >= 0 && index < n, "device cuda:{}: no such CUDA device ({} present)", index, n);
  static std::mutex mu;
  static std::vector<CudaBackend*> backends;
  std::lock_guard<std::mutex> lock(mu);
  if (backends.size() < static_cast<size_t>(n)) backends.resize(static_cast<size_t>(n), nullptr);
  if (!backends[static_cast<size_t>(index)]) backends[static_cast<size_t>(index)] = new CudaBackend(index);
  return *backends[static_cast<size_t>(index)];
}

}  // namespace cuda

std::string cuda_device_description(int index) {
  cuda::backend(index);  // validates the index
  cudaDeviceProp p{};
  SAGAN_CUDA_CHECK("cuda_device_description", cudaGetDeviceProperties(&p, index));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                     static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

CudaBackend::CudaBackend(int index) : Backend(Device::cuda(index)), index_(index), allocator_(index) {
#define SAGAN_CUDA_IMPLEMENT(name) implement<KernelId::name, &CudaBackend::name, cuda::KernelScope>();
  SAGAN_CUDA_KERNELS(SAGAN_CUDA_IMPLEMENT)
#undef SAGAN_CUDA_IMPLEMENT
  for (KernelId id : cuda_declined_kernels()) set_declined(id, true);
  cuda::DeviceGuard guard(index_);
  cuda::cublas_api();  // first: a missing cuBLAS throws before anything is created (a retry would leak it)
  SAGAN_CUDA_CHECK("cuda init", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  SAGAN_CUDA_CHECK("cuda init", cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, index_));
  SAGAN_CUBLAS_CHECK("cuda init", cuda::cublas_api().cublasCreate(&cublas_));
  SAGAN_CUBLAS_CHECK("cuda init", cuda::cublas_api().cublasSetStream(cublas_, stream_));
  SAGAN_CUBLAS_CHECK("cuda init", cuda::cublas_api().cublasSetMathMode(cublas_, cublas_math_));
  SAGAN_CUBLAS_CHECK("cuda init", cuda::cublas_api().cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
  // cuBLAS's own default workspace lives outside this allocator (since CUDA
  // 12.2 allocated stream-ordered, which a capture records as memory nodes
  // of the graph, and which can fail when this allocator's cache holds the
  // memory). A fixed one from the allocator is counted, reused by every
  // call, captured and plain alike; PyTorch does the same. 32 MiB is the
  // size cuBLAS's documentation recommends for Hopper.
  cublas_workspace_ = buffer(kCublasWorkspaceBytes);
  SAGAN_CUBLAS_CHECK("cuda init",
                     cuda::cublas_api().cublasSetWorkspace(cublas_, cublas_workspace_.get(), cublas_workspace_.size()));
}

CudaBackend::~CudaBackend() {
  conv_plans_.clear();
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_) cuda::cublas_api().cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

cublasHandle_t CudaBackend::cublas(bool allow_tf32) {
  const bool tf32 = cuda_tf32_enabled() || matmul_precision() == MatmulPrecision::Tf32;
  const cublasMath_t want = allow_tf32 && tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  if (want != cublas_math_) {
    SAGAN_CUBLAS_CHECK("cublas", cuda::cublas_api().cublasSetMathMode(cublas_, want));
    cublas_math_ = want;
  }
  return cublas_;
}

cudnnHandle_t CudaBackend::cudnn() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cudnn_) {
    cuda::DeviceGuard guard(index_);
    SAGAN_CUDNN_CHECK("cudnn init", cudnnCreate(&cudnn_));
    SAGAN_CUDNN_CHECK("cudnn init", cudnnSetStream(cudnn_, stream_));
    // A cuDNN built for another CUDA major (a cu12 wheel beside a CUDA 13
    // build) loads and creates its handle, then fails in the first
    // convolution with an error that names neither: said here, once.
    static std::once_flag said;
    std::call_once(said, [] {
      const size_t cudnn_cuda = cudnnGetCudartVersion(), loaded = cudnnGetVersion();
      if (cudnn_cuda / 1000 != CUDART_VERSION / 1000 || loaded / 10000 != CUDNN_MAJOR)
        warn(fmt::format("cuDNN {}.{}.{} (loaded) was built for CUDA {}.{}; this engine was built with CUDA {}.{} and "
                         "cuDNN {}.{}.{}: convolutions may fail; install the cuDNN of this CUDA major (e.g. "
                         "nvidia-cudnn-cu{})",
                         loaded / 10000, loaded / 100 % 100, loaded % 100, cudnn_cuda / 1000, cudnn_cuda % 1000 / 10,
                         CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, CUDNN_MAJOR, CUDNN_MINOR,
                         CUDNN_PATCHLEVEL, CUDART_VERSION / 1000));
    });
  }
  return cudnn_;
}

cuda::ConvPlan& CudaBackend::conv_plan(const cuda::ConvKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = conv_plans_[key];
  if (!slot) slot = std::make_unique<cuda::ConvPlan>();
  return *slot;
}

void CudaBackend::synchronize() {
  cuda::DeviceGuard guard(index_);
  SAGAN_CUDA_CHECK("synchronize", cudaStreamSynchronize(stream_));
}

// Host <-> device copies. cudaMemcpyDefault lets the driver infer the
// direction from the pointers (unified addressing), which also covers the
// cross-device case: Tensor::copy_ stages cuda:i -> cuda:j through
// copy_from_host with a source pointer on the other device, whose stream must
// first finish writing it.
namespace {
void wait_for_other_device(const void* p, int self) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  if (attr.type == cudaMemoryTypeDevice && attr.device != self) cuda::backend(attr.device).synchronize();
}
}  // namespace

void CudaBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  cuda::DeviceGuard guard(index_);
  wait_for_other_device(src, index_);
  SAGAN_CUDA_CHECK("copy_from_host", cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream_));
  // The caller may free or reuse src as soon as we return.
  SAGAN_CUDA_CHECK("copy_from_host", cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  cuda::DeviceGuard guard(index_);
  wait_for_other_device(dst, index_);
  SAGAN_CUDA_CHECK("copy_to_host", cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream_));
  // The host reads dst right after: wait for the kernels that wrote src and
  // for the copy itself.
  SAGAN_CUDA_CHECK("copy_to_host", cudaStreamSynchronize(stream_));
}

}  // namespace sagan

// Registration, at static initialisation. Nothing else refers to this file,
// so a linker pulling objects out of libsagan.a would drop it: the engine's
// CMake target makes every consumer link with
// -Wl,--undefined=sagan_cuda_backend, which keeps this definition.
// Core calls sagan_register_cuda_backend (weak) on first use when a
// program's own static initialiser comes before this one.
extern "C" {
void sagan_register_cuda_backend() {
  static const bool once = [] {
    sagan::register_backend({sagan::DeviceType::CUDA, &sagan::cuda::device_count,
                             [](int index) -> sagan::Backend& { return sagan::cuda::backend(index); }});
    return true;
  }();
  (void)once;
}
extern const bool sagan_cuda_backend;
const bool sagan_cuda_backend = (sagan_register_cuda_backend(), true);
}
