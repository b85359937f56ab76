// 2x2 average and max pooling (stride 2, odd sizes floor: the last row or
// column of an odd input is not pooled and gets a zero gradient) and nearest
// 2x upsampling, with backward. Tensors are (..., H, W) contiguous: every
// leading dim is a plane. One thread per output element (per input element
// for the backward kernels, which therefore write every gx element once,
// without atomics).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

// The running maximum is replaced by a larger value or by a NaN, so NaNs
// propagate (PyTorch's rule, and the CPU backend's).
template <class T>
__device__ __forceinline__ bool replaces(T v, T m) {
  return v > m || v != v;
}
template <class T>
__device__ __forceinline__ T max4(T a, T b, T c, T d) {
  T m = replaces(b, a) ? b : a;
  m = replaces(c, m) ? c : m;
  return replaces(d, m) ? d : m;
}

// out (P, Ho, Wo) from x (P, H, W).
template <class T, bool kMax>
__global__ void __launch_bounds__(kBlock)
    pool_kernel(const T* x, T* out, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t ow = i % Wo, rest = i / Wo, oh = rest % Ho, p = rest / Ho;
    const T* q = x + (p * H + 2 * oh) * W + 2 * ow;
    const T a = q[0], b = q[1], c = q[W], d = q[W + 1];
    if constexpr (kMax) {
      out[i] = max4(a, b, c, d);
    } else {
      out[i] = ((a + b) + (c + d)) * T(0.25);
    }
  }
}

// gx (P, H, W) from gy (P, Ho, Wo); for max, x picks the winner of each window.
template <class T, bool kMax>
__global__ void __launch_bounds__(kBlock)
    pool_backward_kernel(const T* x, const T* gy, T* gx, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, p = rest / H;
    const int64_t oh = h >> 1, ow = w >> 1;
    if (oh >= Ho || ow >= Wo) {
      gx[i] = T(0);
      continue;
    }
    const T g = gy[(p * Ho + oh) * Wo + ow];
    if constexpr (kMax) {
      // The first cell (window order 0 1 / 2 3) equal to the maximum, or the
      // first NaN, takes the gradient: the lowest index on ties.
      const T* q = x + (p * H + 2 * oh) * W + 2 * ow;
      const T cell[4] = {q[0], q[1], q[W], q[W + 1]};
      const T m = max4(cell[0], cell[1], cell[2], cell[3]);
      int win = 3;
      for (int c = 2; c >= 0; --c)
        if (cell[c] == m || cell[c] != cell[c]) win = c;
      const int mine = static_cast<int>((h & 1) * 2 + (w & 1));
      gx[i] = mine == win ? g : T(0);
    } else {
      gx[i] = g * T(0.25);
    }
  }
}

// out (P, 2H, 2W) = x (P, H, W) repeated.
template <class T>
__global__ void __launch_bounds__(kBlock) upsample_kernel(const T* x, T* out, int64_t H, int64_t W, int64_t total) {
  const int64_t W2 = 2 * W, H2 = 2 * H;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W2, rest = i / W2, h = rest % H2, p = rest / H2;
    out[i] = x[(p * H + (h >> 1)) * W + (w >> 1)];
  }
}

// gx (P, H, W) = sum of the 2x2 block of gy (P, 2H, 2W).
template <class T>
__global__ void __launch_bounds__(kBlock)
    upsample_backward_kernel(const T* gy, T* gx, int64_t H, int64_t W, int64_t total) {
  const int64_t W2 = 2 * W;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, p = rest / H;
    const T* q = gy + (p * 2 * H + 2 * h) * W2 + 2 * w;
    gx[i] = (q[0] + q[1]) + (q[W2] + q[W2 + 1]);
  }
}

// The full-resolution side's planes, (..., H, W): the input of a pool, the
// output of an upsampling.
struct Plane {
  int64_t H, W;
};
Plane plane_of(const Tensor& big) { return {big.size(-2), big.size(-1)}; }
}  // namespace

void CudaBackend::avg_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "avg_pool2x2";
  const Plane p = plane_of(x_in);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "pool_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, false><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::avg_pool2x2_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "avg_pool2x2_backward";
  const Plane p = plane_of(gx);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "pool_backward_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, false>
        <<<blocks_for(total), kBlock, 0, stream_>>>(nullptr, static_cast<const T*>(gy.raw_data()),
                                                    static_cast<T*>(gx.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::max_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "max_pool2x2";
  const Plane p = plane_of(x_in);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "pool_kernel<max>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::max_pool2x2_backward(const Tensor& x_in, const Tensor& gy_in, Tensor& gx) {
  const char* op = "max_pool2x2_backward";
  const Plane p = plane_of(gx);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in), gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "pool_backward_kernel<max>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H,
        p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::upsample_nearest2x(const Tensor& x_in, Tensor& out) {
  const char* op = "upsample_nearest2x";
  const Plane p = plane_of(out);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "upsample_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::upsample_nearest2x_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "upsample_nearest2x_backward";
  const Plane p = plane_of(gy_in);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "upsample_backward_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_backward_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H / 2, p.W / 2, total);
  });
}

}  // namespace sagan
