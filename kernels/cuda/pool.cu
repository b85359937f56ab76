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

struct Planes {
  int64_t planes, H, W;
};

// Checks big (..., H, W) and small (..., h, w) agree on the leading dims and
// dtype, that (h, w) = small_hw(H, W), and that big and small are usable.
Planes check_pair(const char* op, const Tensor& big, const Tensor& small, const char* big_name, const char* small_name,
                  bool upsample) {
  SAGAN_CHECK(big.dim() >= 2 && small.dim() == big.dim(), "{}: {} {} and {} {} must be (..., H, W) of equal rank", op,
              big_name, shape_str(big.shape()), small_name, shape_str(small.shape()));
  bool ok = big.dtype() == small.dtype();
  for (int64_t d = 0; d + 2 < big.dim(); ++d) ok = ok && big.size(d) == small.size(d);
  const int64_t H = big.size(-2), W = big.size(-1);
  const int64_t h = upsample ? 2 * small.size(-2) : H / 2, w = upsample ? 2 * small.size(-1) : W / 2;
  ok = ok && (upsample ? (H == h && W == w) : (small.size(-2) == h && small.size(-1) == w));
  SAGAN_CHECK(ok, "{}: {} {} {} and {} {} {} do not match (2x2 {})", op, big_name, dtype_name(big.dtype()),
              shape_str(big.shape()), small_name, dtype_name(small.dtype()), shape_str(small.shape()),
              upsample ? "upsampling" : "pooling, odd sizes floor");
  return {H * W == 0 ? 0 : big.numel() / (H * W), H, W};
}

void check_out(const char* op, const Tensor& t, const char* what) {
  SAGAN_CHECK(t.is_contiguous(), "{}: {} of shape {} must be contiguous", op, what, shape_str(t.shape()));
}
}  // namespace

void CudaBackend::avg_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "avg_pool2x2";
  check_on(*this, op, x_in, "input");
  check_on(*this, op, out, "output");
  const Planes p = check_pair(op, x_in, out, "input", "output", false);
  check_out(op, out, "output");
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  DeviceGuard guard(device_);
  dispatch_float(out.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, false><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
  check_launch(op, "pool_kernel<avg>", stream_);
}

void CudaBackend::avg_pool2x2_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "avg_pool2x2_backward";
  check_on(*this, op, gy_in, "output gradient");
  check_on(*this, op, gx, "input gradient");
  const Planes p = check_pair(op, gx, gy_in, "input gradient", "output gradient", false);
  check_out(op, gx, "input gradient");
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  DeviceGuard guard(device_);
  dispatch_float(gx.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, false>
        <<<blocks_for(total), kBlock, 0, stream_>>>(nullptr, static_cast<const T*>(gy.raw_data()),
                                                    static_cast<T*>(gx.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
  check_launch(op, "pool_backward_kernel<avg>", stream_);
}

void CudaBackend::max_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "max_pool2x2";
  check_on(*this, op, x_in, "input");
  check_on(*this, op, out, "output");
  const Planes p = check_pair(op, x_in, out, "input", "output", false);
  check_out(op, out, "output");
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  DeviceGuard guard(device_);
  dispatch_float(out.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
  check_launch(op, "pool_kernel<max>", stream_);
}

void CudaBackend::max_pool2x2_backward(const Tensor& x_in, const Tensor& gy_in, Tensor& gx) {
  const char* op = "max_pool2x2_backward";
  check_on(*this, op, x_in, "input");
  check_on(*this, op, gy_in, "output gradient");
  check_on(*this, op, gx, "input gradient");
  const Planes p = check_pair(op, gx, gy_in, "input gradient", "output gradient", false);
  SAGAN_CHECK(x_in.shape() == gx.shape() && x_in.dtype() == gx.dtype(),
              "{}: input {} {} and input gradient {} {} must match", op, dtype_name(x_in.dtype()),
              shape_str(x_in.shape()), dtype_name(gx.dtype()), shape_str(gx.shape()));
  check_out(op, gx, "input gradient");
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in), gy = dense(*this, gy_in);
  DeviceGuard guard(device_);
  dispatch_float(gx.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H,
        p.W, p.H / 2, p.W / 2, total);
  });
  check_launch(op, "pool_backward_kernel<max>", stream_);
}

void CudaBackend::upsample_nearest2x(const Tensor& x_in, Tensor& out) {
  const char* op = "upsample_nearest2x";
  check_on(*this, op, x_in, "input");
  check_on(*this, op, out, "output");
  const Planes p = check_pair(op, out, x_in, "output", "input", true);
  check_out(op, out, "output");
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  DeviceGuard guard(device_);
  dispatch_float(out.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H / 2, p.W / 2, total);
  });
  check_launch(op, "upsample_kernel", stream_);
}

void CudaBackend::upsample_nearest2x_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "upsample_nearest2x_backward";
  check_on(*this, op, gy_in, "output gradient");
  check_on(*this, op, gx, "input gradient");
  const Planes p = check_pair(op, gy_in, gx, "output gradient", "input gradient", true);
  check_out(op, gx, "input gradient");
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  DeviceGuard guard(device_);
  dispatch_float(gx.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_backward_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H / 2, p.W / 2, total);
  });
  check_launch(op, "upsample_backward_kernel", stream_);
}

}  // namespace sagan
