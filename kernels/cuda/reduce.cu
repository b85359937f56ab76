// Sum over dims and softmax over the last dim.
//
// sum: the kept dims index outputs, the reduced dims are walked per output;
// both are merged strided geometries, so any input view works. Accumulation
// is in double for float and double alike. The launch shape follows the
// amount of work per output: a thread, a warp or a block per output, or, for
// few outputs with very long reductions, a block per slice of one output plus
// a second pass over the partial sums (deterministic, no atomics).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/softmax.cuh"
#include "kernels/cuda/strided.cuh"

namespace sagan {

namespace {
using namespace cuda;

// kg offsets: [0] x, [1] out. rg offsets: [0] x.
template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_thread_kernel(const T* x, T* out, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r) {
  for (int64_t o = thread_index(); o < outputs; o += thread_count()) {
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t j = 0; j < r; ++j) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    out[ko[1]] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_warp_kernel(const T* x, T* out, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = thread_count() >> 5;
  for (int64_t o = thread_index() >> 5; o < outputs; o += warps) {  // uniform per warp
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t j = lane; j < r; j += 32) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    acc = warp_sum(acc);
    if (lane == 0) out[ko[1]] = static_cast<T>(acc);
  }
}

// Block t covers slice (t % parts) of output (t / parts): elements
// [slice * chunk, min(r, (slice + 1) * chunk)). With parts == 1 it writes the
// output itself, else partial[t].
template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_block_kernel(const T* x, T* out, double* partial, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r,
                     int64_t parts, int64_t chunk) {
  __shared__ double smem[32];
  for (int64_t t = blockIdx.x; t < outputs * parts; t += gridDim.x) {
    const int64_t o = t / parts, slice = t - o * parts;
    int64_t ko[2];
    kg.offsets(o, ko);
    const int64_t begin = slice * chunk;
    const int64_t end = begin + chunk < r ? begin + chunk : r;
    double acc = 0;
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) {
      if (parts == 1)
        out[ko[1]] = static_cast<T>(acc);
      else
        partial[t] = acc;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_partials_kernel(const double* partial, T* out, Strided<2> kg, int64_t outputs, int64_t parts) {
  for (int64_t o = thread_index(); o < outputs; o += thread_count()) {
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t p = 0; p < parts; ++p) acc += partial[o * parts + p];
    out[ko[1]] = static_cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::sum(const Tensor& x, Tensor& out) {
  const Shape& xs = x.shape();
  const Shape& os = out.shape();
  SAGAN_CHECK(xs.size() == os.size() && x.dtype() == out.dtype(),
              "sum: output {} {} must have the rank and dtype of input {} {}", dtype_name(out.dtype()), shape_str(os),
              dtype_name(x.dtype()), shape_str(xs));
  Shape kshape, kxst, kost, rshape, rst;
  for (size_t i = 0; i < xs.size(); ++i) {
    SAGAN_CHECK(os[i] == xs[i] || os[i] == 1, "sum: output shape {} does not reduce input shape {} (dim {})",
                shape_str(os), shape_str(xs), i);
    if (os[i] == xs[i]) {
      kshape.push_back(xs[i]), kxst.push_back(x.strides()[i]), kost.push_back(out.strides()[i]);
    } else {
      rshape.push_back(xs[i]), rst.push_back(x.strides()[i]);
    }
  }
  const int64_t outputs = out.numel();
  if (outputs == 0) return;
  const int64_t r = numel_of(rshape);
  if (r == 0) {
    fill(out, 0.0);
    return;
  }
  auto kg = make_strided<2>("sum", kshape, {&kxst, &kost});
  auto rg = make_strided<1>("sum", rshape, {&rst});
  dispatch_float(x.dtype(), "sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    const int64_t busy_blocks = 4LL * sm_count_;
    if (r <= 32) {
      sum_thread_kernel<T><<<blocks_for(outputs), kBlock, 0, stream_>>>(xp, op, kg, rg, outputs, r);
      check_launch("sum", "sum_thread_kernel", stream_);
    } else if (r <= 4096 || outputs >= busy_blocks * (kBlock / 32)) {
      sum_warp_kernel<T><<<blocks_for(outputs * 32), kBlock, 0, stream_>>>(xp, op, kg, rg, outputs, r);
      check_launch("sum", "sum_warp_kernel", stream_);
    } else {
      // Long reductions: split each output over enough blocks to fill the GPU,
      // each slice at least 16 elements per thread.
      int64_t parts = std::max<int64_t>(1, busy_blocks / outputs);
      parts = std::min<int64_t>(parts, (r + 16 * kBlock - 1) / (16 * kBlock));
      const int64_t chunk = (r + parts - 1) / parts;
      parts = (r + chunk - 1) / chunk;
      Buffer partial;
      if (parts > 1) partial = buffer(static_cast<size_t>(outputs * parts) * sizeof(double));
      sum_block_kernel<T><<<grid_for_rows(outputs * parts), kBlock, 0, stream_>>>(xp, op, partial.get<double>(), kg, rg,
                                                                                  outputs, r, parts, chunk);
      check_launch("sum", "sum_block_kernel", stream_);
      if (parts > 1) {
        sum_partials_kernel<T>
            <<<blocks_for(outputs), kBlock, 0, stream_>>>(partial.get<double>(), op, kg, outputs, parts);
        check_launch("sum", "sum_partials_kernel", stream_);
      }
    }
  });
}

void CudaBackend::softmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.shape().empty() ? 1 : x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  launch_float(x.dtype(), "softmax", "softmax_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), nullptr, rows, n);
  });
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  const int64_t n = y.shape().empty() ? 1 : y.shape().back();
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  if (rows == 0) return;
  launch_float(y.dtype(), "softmax_backward", "softmax_backward_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_backward_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows,
        n);
  });
}

}  // namespace sagan
