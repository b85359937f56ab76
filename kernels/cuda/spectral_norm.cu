// One power iteration per matrix, in place: v = normalize(W^T u), then
// u = normalize(W v), normalize(x) = x / max(|x|, eps) (the CPU backend's
// order).
//
// float32 matrices with unit-stride u and v go to the batched kernels of
// sn_power_batched.h: all of them in one call (three launches per 48
// matrices, or two with set_cuda_sn_power_impl(RowChunks)), workspace from
// the caching allocator. Everything else (float64,
// strided vectors, sizes past the batched kernels' int offsets, an eps that
// rounds to 0 in float32) takes the per-matrix path: two cuBLAS gemv calls
// and two single-block normalisation kernels per matrix. All of it is queued
// on the stream without host synchronisation.
//
// For gemv, w (out, in) row-major is, to column-major cuBLAS, the (in, out)
// matrix W^T with ld = in: W^T u is gemv(N) and W v is gemv(T) on it.
#include <climits>

#include "sagan/kernels/cuda/cublas_api.h"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/sn_power_batched.h"
#include "sagan/kernels/cuda/spectral_norm_kernels.cuh"

namespace sagan {

namespace {
using namespace cuda;

cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t t, int64_t m, int64_t n, const float* alpha, const float* a,
                    int64_t lda, const float* x, int64_t incx, const float* beta, float* y, int64_t incy) {
  return cublas_api().cublasSgemv_64(h, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t t, int64_t m, int64_t n, const double* alpha, const double* a,
                    int64_t lda, const double* x, int64_t incx, const double* beta, double* y, int64_t incy) {
  return cublas_api().cublasDgemv_64(h, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
}  // namespace

void CudaBackend::power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                                  double eps) {
  const char* op = "power_iteration";
  SAGAN_CHECK(w.size() == u.size() && w.size() == v.size(), "{}: {} weights, {} u vectors and {} v vectors", op,
              w.size(), u.size(), v.size());
  for (size_t i = 0; i < w.size(); ++i) {
    SAGAN_CHECK(w[i].dim() >= 1 && w[i].is_contiguous(), "{}: weight {} of shape {} must be contiguous (out, ...)", op,
                i, shape_str(w[i].shape()));
    const int64_t rows = w[i].size(0), cols = rows == 0 ? 0 : w[i].numel() / rows;
    SAGAN_CHECK(u[i].dim() == 1 && v[i].dim() == 1 && u[i].size(0) == rows && v[i].size(0) == cols &&
                    u[i].dtype() == w[i].dtype() && v[i].dtype() == w[i].dtype(),
                "{}: weight {} {} {} viewed ({}, {}) needs u ({}) and v ({}) of its dtype, got u {} {}, v {} {}", op, i,
                dtype_name(w[i].dtype()), shape_str(w[i].shape()), rows, cols, rows, cols, dtype_name(u[i].dtype()),
                shape_str(u[i].shape()), dtype_name(v[i].dtype()), shape_str(v[i].shape()));
  }

  // The batched float32 path. Each matrix's workspace is rows + cols floats
  // plus partial sums, addressed by int offsets, so a matrix qualifies when
  // rows + cols stays far from 2^31 and the calls are split where the sum
  // over a call would pass it.
  std::vector<bool> batched(w.size(), false);
  const float eps32 = static_cast<float>(eps);
  if (eps32 > 0.f) {
    constexpr int64_t kMaxVec = int64_t{1} << 28;
    constexpr size_t kMaxCallBytes = size_t{INT_MAX} / 2 * sizeof(float);
    const fused::SnPowerVariant variant = cuda_sn_power_impl() == SnPowerImpl::RowChunks
                                              ? fused::SnPowerVariant::RowChunks
                                              : fused::SnPowerVariant::Columns;
    std::vector<fused::SnMatrixF32> mats;
    size_t call_bytes = 0;
    auto flush = [&] {
      if (mats.empty()) return;
      const int count = static_cast<int>(mats.size());
      const size_t ws_bytes = fused::sn_power_iteration_batched_workspace_bytes(mats.data(), count, variant);
      SAGAN_CHECK(ws_bytes > 0, "{}: no workspace size for {} float32 matrices (invalid entry)", op, count);
      // Returned to the cache at scope exit while the kernels may still be
      // queued: safe, the block's next user is queued behind them on this
      // device's one stream. cudaMalloc'd blocks are 256-byte aligned.
      Buffer ws = buffer(ws_bytes);
      SAGAN_CHECK(reinterpret_cast<uintptr_t>(ws.get()) % 16 == 0, "{}: workspace is not 16-byte aligned", op);
      const cudaError_t err = fused::sn_power_iteration_batched_f32(mats.data(), count, eps32, nullptr, ws.get(),
                                                                    ws_bytes, stream_, variant);
      if (err != cudaSuccess) throw_cuda_error(op, "sn_power_iteration_batched_f32", err);
      check_launch(op, "sn_power_iteration_batched_f32", stream_);
      mats.clear();
      call_bytes = 0;
    };
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i].dtype() != DType::F32) continue;
      const int64_t rows = w[i].size(0), cols = rows == 0 ? 0 : w[i].numel() / rows;
      if (rows == 0 || cols == 0 || rows > kMaxVec || cols > kMaxVec) continue;
      if (u[i].strides()[0] != 1 || v[i].strides()[0] != 1) continue;
      const fused::SnMatrixF32 m{static_cast<const float*>(w[i].raw_data()), static_cast<float*>(u[i].raw_data()),
                                 static_cast<float*>(v[i].raw_data()), static_cast<int>(rows), static_cast<int>(cols)};
      const size_t bytes = fused::sn_power_iteration_batched_workspace_bytes(&m, 1, variant);
      if (call_bytes + bytes > kMaxCallBytes) flush();
      mats.push_back(m);
      call_bytes += bytes;
      batched[i] = true;
    }
    flush();
  }

  cublasHandle_t h = cublas(false);
  for (size_t i = 0; i < w.size(); ++i) {
    if (batched[i]) continue;
    const int64_t rows = w[i].size(0), cols = rows == 0 ? 0 : w[i].numel() / rows;
    if (rows == 0 || cols == 0) {  // an empty product: the other vector is zero, as on the CPU
      if (cols == 0) fill(u[i], 0.0);
      if (rows == 0) fill(v[i], 0.0);
      continue;
    }
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
