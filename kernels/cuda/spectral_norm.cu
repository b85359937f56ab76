// One power iteration per matrix, in place, the simple way: per matrix two
// cuBLAS gemv calls and two single-block normalisation kernels, all queued on
// the stream without host synchronisation. (A batched, fused kernel over all
// of a model's matrices is the planned optimisation.)
//
// w (out, in) row-major is, to column-major cuBLAS, the (in, out) matrix W^T
// with ld = in: W^T u is gemv(N) and W v is gemv(T) on it.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

// x <- x / max(|x|, eps) for a strided vector, in one block.
template <class T>
__global__ void __launch_bounds__(kBlock) normalize_kernel(T* x, int64_t n, int64_t inc, double eps) {
  __shared__ double smem[32];
  double ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = static_cast<double>(x[i * inc]);
    ss += v * v;
  }
  ss = block_sum(ss, smem);
  const double norm = sqrt(ss);
  const T scale = static_cast<T>(1.0 / (norm > eps ? norm : eps));
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[i * inc] *= scale;
}

cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t t, int64_t m, int64_t n, const float* alpha, const float* a,
                    int64_t lda, const float* x, int64_t incx, const float* beta, float* y, int64_t incy) {
  return cublasSgemv_v2_64(h, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t t, int64_t m, int64_t n, const double* alpha, const double* a,
                    int64_t lda, const double* x, int64_t incx, const double* beta, double* y, int64_t incy) {
  return cublasDgemv_v2_64(h, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
}  // namespace

void CudaBackend::power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                                  double eps) {
  const char* op = "power_iteration";
  SAGAN_CHECK(w.size() == u.size() && w.size() == v.size(), "{}: {} weights, {} u vectors and {} v vectors", op,
              w.size(), u.size(), v.size());
  for (size_t i = 0; i < w.size(); ++i) {
    check_on(*this, op, w[i], "weight");
    check_on(*this, op, u[i], "u");
    check_on(*this, op, v[i], "v");
    SAGAN_CHECK(w[i].dim() >= 1 && w[i].is_contiguous(), "{}: weight {} of shape {} must be contiguous (out, ...)", op,
                i, shape_str(w[i].shape()));
    const int64_t rows = w[i].size(0), cols = rows == 0 ? 0 : w[i].numel() / rows;
    SAGAN_CHECK(u[i].dim() == 1 && v[i].dim() == 1 && u[i].size(0) == rows && v[i].size(0) == cols &&
                    u[i].dtype() == w[i].dtype() && v[i].dtype() == w[i].dtype(),
                "{}: weight {} {} {} viewed ({}, {}) needs u ({}) and v ({}) of its dtype, got u {} {}, v {} {}", op, i,
                dtype_name(w[i].dtype()), shape_str(w[i].shape()), rows, cols, rows, cols, dtype_name(u[i].dtype()),
                shape_str(u[i].shape()), dtype_name(v[i].dtype()), shape_str(v[i].shape()));
  }
  DeviceGuard guard(device_);
  cublasHandle_t h = cublas(false);
  for (size_t i = 0; i < w.size(); ++i) {
    const int64_t rows = w[i].size(0), cols = rows == 0 ? 0 : w[i].numel() / rows;
    if (rows == 0 || cols == 0) continue;
    const int64_t incu = u[i].strides()[0], incv = v[i].strides()[0];
    SAGAN_CHECK(incu > 0 && incv > 0, "{}: u and v of weight {} must not be broadcast views", op, i);
    dispatch_float(w[i].dtype(), op, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      const T one = 1, zero = 0;
      const T* wp = static_cast<const T*>(w[i].raw_data());
      T* up = static_cast<T*>(u[i].raw_data());
      T* vp = static_cast<T*>(v[i].raw_data());
      // v = normalize(W^T u)
      const cublasStatus_t s1 = gemv(h, CUBLAS_OP_N, cols, rows, &one, wp, cols, up, incu, &zero, vp, incv);
      if (s1 != CUBLAS_STATUS_SUCCESS) cuda::throw_cublas_error(op, "cublas<T>gemv_v2_64(W^T u)", s1);
      normalize_kernel<T><<<1, kBlock, 0, stream_>>>(vp, cols, incv, eps);
      check_launch(op, "normalize_kernel", stream_);
      // u = normalize(W v)
      const cublasStatus_t s2 = gemv(h, CUBLAS_OP_T, cols, rows, &one, wp, cols, vp, incv, &zero, up, incu);
      if (s2 != CUBLAS_STATUS_SUCCESS) cuda::throw_cublas_error(op, "cublas<T>gemv_v2_64(W v)", s2);
      normalize_kernel<T><<<1, kBlock, 0, stream_>>>(up, rows, incu, eps);
      check_launch(op, "normalize_kernel", stream_);
    });
  }
}

}  // namespace sagan
