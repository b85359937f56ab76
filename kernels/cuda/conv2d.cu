// Convolutions through cuDNN: forward, backward-data and backward-filter of
// conv2d (square kernels) and conv2d_rect (a kernel, stride and padding per
// axis), NCHW, cross-correlation like the CPU backend, dilation 1, float or
// double. Both ops share one path; a square convolution is the rectangular
// one with equal sides.
//
// Each geometry gets a ConvPlan (descriptors + one algorithm per direction),
// built on first use and cached by the backend. The algorithm is chosen by
// timing the candidates (cudnnFind*Ex) with a workspace from the caching
// allocator sized by the heuristics (cudnnGet*_v7): the fastest deterministic
// one in deterministic mode (kernels/cuda/settings.h, the default) so that
// training runs repeat exactly, else the fastest. Workspaces of the
// calls themselves come from the caching allocator too, so steady-state steps
// make no cudaMalloc.
//
// float32 runs in FMA math unless set_cuda_tf32(true) or --precision tf32
// (core/matmul_precision.h). Under --precision bf16 a float32 convolution runs
// on bf16 copies of its operands (cuDNN's bf16 configuration: bf16 tensors,
// float32 compute, tensor-op math) and its bf16 result is widened back to
// float32 before the bias is added: what the CPU backend emulates. The
// precision and the deterministic switch are part of the plan key, so
// changing one picks (and times) algorithms again.
#include <cuda_bf16.h>

#include <climits>
#include <vector>

#include "core/matmul_precision.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

// Bias added after the convolution: out (B, C, hw) += bias[c].
template <class T>
__global__ void __launch_bounds__(kBlock)
    add_bias_kernel(T* out, const T* bias, int64_t bias_stride, int64_t channels, int64_t hw, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] += bias[((i / hw) % channels) * bias_stride];
}

__global__ void __launch_bounds__(kBlock) to_bf16_kernel(const float* in, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void __launch_bounds__(kBlock) from_bf16_kernel(const __nv_bfloat16* in, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = __bfloat162float(in[i]);
}

Buffer bf16_buffer(CudaBackend& be, const Tensor& like) {
  return be.buffer(static_cast<size_t>(std::max<int64_t>(like.numel(), 1)) * sizeof(__nv_bfloat16));
}

// What one cuDNN call reads and writes: two dense input tensors and an
// output, or, for a bf16 plan, bf16 copies of the inputs (round to nearest
// even) and a bf16 result that widen() copies into the float32 output.
struct ConvOperands {
  const void* a;
  const void* b;
  void* out;
  Buffer a16, b16, out16;

  ConvOperands(CudaBackend& be, const char* op, bool bf16, const Tensor& ta, const Tensor& tb, Tensor& tout)
      : a(ta.raw_data()), b(tb.raw_data()), out(tout.raw_data()) {
    if (!bf16) return;
    a16 = narrowed(be, op, ta), b16 = narrowed(be, op, tb), out16 = bf16_buffer(be, tout);
    a = a16.get(), b = b16.get(), out = out16.get();
  }

  // A bf16 plan's result into the float32 output; nothing otherwise.
  void widen(CudaBackend& be, const char* op, Tensor& tout) const {
    if (!out16.get()) return;
    const int64_t n = tout.numel();
    from_bf16_kernel<<<blocks_for(n), kBlock, 0, be.stream()>>>(static_cast<const __nv_bfloat16*>(out16.get()),
                                                                static_cast<float*>(tout.raw_data()), n);
    check_launch(op, "from_bf16_kernel", be.stream());
  }

 private:
  static Buffer narrowed(CudaBackend& be, const char* op, const Tensor& t) {
    const int64_t n = t.numel();
    Buffer buf = bf16_buffer(be, t);
    to_bf16_kernel<<<blocks_for(n), kBlock, 0, be.stream()>>>(static_cast<const float*>(t.raw_data()),
                                                              static_cast<__nv_bfloat16*>(buf.get()), n);
    check_launch(op, "to_bf16_kernel", be.stream());
    return buf;
  }
};

// Workspace the heuristics ask for, bounded by what we are willing to spend
// on timing candidates.
size_t find_budget(CudaBackend& be, size_t wanted) {
  size_t free_b = 0, total_b = 0;
  SAGAN_CUDA_CHECK("conv2d", cudaMemGetInfo(&free_b, &total_b));
  const size_t cap = std::min<size_t>(size_t(1) << 30, free_b / 2);
  return std::min(wanted, cap);
}

// The best result: successful, within the workspace, deterministic when
// asked, in cuDNN's order (fastest first for Find, most promising for Get).
template <class Perf>
const Perf* choose(const std::vector<Perf>& perf, int count, size_t budget, bool deterministic) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > budget) continue;
    if (!deterministic || p.determinism == CUDNN_DETERMINISTIC) return &p;
  }
  return nullptr;
}

// Find's choice, else the heuristics', else an error naming the direction.
template <class Perf>
const Perf& choose_or_fail(const std::vector<Perf>& found, int nfound, const std::vector<Perf>& heur, int got,
                           size_t budget, const char* op, const char* direction) {
  const bool det = cuda_deterministic();
  const Perf* best = choose(found, nfound, budget, det);
  if (!best) best = choose(heur, got, budget, det);
  SAGAN_CHECK(best != nullptr,
              "{}: cuDNN offers no {}{} algorithm for this geometry{}", op, det ? "deterministic " : "", direction,
              det ? " (deterministic mode; --no-deterministic or SAGAN_CUDA_DETERMINISTIC=0 allows the others)" : "");
  return *best;
}

// The timing workspace: the budget, halved until the allocator can serve it
// (timing fewer candidates beats failing the convolution).
Buffer find_workspace(CudaBackend& be, size_t& budget) {
  for (;;) {
    try {
      return be.buffer(budget);
    } catch (const Error&) {
      if (budget == 0) throw;
      budget = budget < 4096 ? 0 : budget / 2;
    }
  }
}

template <class Perf>
size_t max_memory(const std::vector<Perf>& perf, int count) {
  size_t m = 0;
  for (int i = 0; i < count; ++i)
    if (perf[static_cast<size_t>(i)].status == CUDNN_STATUS_SUCCESS)
      m = std::max(m, perf[static_cast<size_t>(i)].memory);
  return m;
}

int to_int(int64_t v, const char* op, const Tensor& t, const char* what) {
  SAGAN_CHECK(v <= INT_MAX && t.numel() <= INT_MAX,
              "{}: {} of shape {} is too large for the cuDNN convolution path (at most 2^31-1 elements)", op, what,
              shape_str(t.shape()));
  return static_cast<int>(v);
}

// x (B,Ci,H,W), w (Co,Ci,kh,kw), y (B,Co,Ho,Wo), as the op front end
// (core/ops/conv2d.cpp, conv2d_rect.cpp) checked and allocated them.
struct Geometry {
  int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
};

Geometry geometry_of(const Tensor& x, const Tensor& w, const Tensor& y) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), y.size(2), y.size(3)};
}

Conv2dRectGeom rect(Conv2dGeom g) { return {g.stride, g.stride, g.pad, g.pad}; }

}  // namespace

namespace {

// The plan of a geometry, its descriptors set on first use.
ConvPlan& plan_for(CudaBackend& be, const char* op, const Tensor& x, const Tensor& w, const Tensor& y, Conv2dRectGeom g,
                   const Geometry& s) {
  const bool f32 = x.dtype() == DType::F32;
  const bool bf16 = f32 && matmul_precision() == MatmulPrecision::Bf16;
  const bool tf32 = f32 && !bf16 && (cuda_tf32_enabled() || matmul_precision() == MatmulPrecision::Tf32);
  // clang-format off
  ConvKey key{static_cast<int64_t>(x.dtype()), s.B, s.Ci, s.H, s.W, s.Co, s.kh, s.kw,
              g.stride_h, g.stride_w, g.pad_h, g.pad_w, bf16 ? 2 : tf32 ? 1 : 0, cuda_deterministic() ? 1 : 0};
  // clang-format on
  ConvPlan& p = be.conv_plan(key);
  if (p.conv) return p;
  // Tensors in bf16 for bf16 precision; the convolution computes in float.
  const cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  const cudnnDataType_t compute = f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  const int B = to_int(s.B, op, x, "input"), Ci = to_int(s.Ci, op, x, "input"), H = to_int(s.H, op, x, "input"),
            W = to_int(s.W, op, x, "input"), Co = to_int(s.Co, op, w, "weight"), kh = to_int(s.kh, op, w, "weight"),
            kw = to_int(s.kw, op, w, "weight"), Ho = to_int(s.Ho, op, y, "output"), Wo = to_int(s.Wo, op, y, "output");
  const int stride_h = static_cast<int>(g.stride_h), stride_w = static_cast<int>(g.stride_w),
            pad_h = static_cast<int>(g.pad_h), pad_w = static_cast<int>(g.pad_w);
  ConvPlan fresh;
  SAGAN_CUDNN_CHECK(op, cudnnCreateTensorDescriptor(&fresh.x));
  SAGAN_CUDNN_CHECK(op, cudnnCreateTensorDescriptor(&fresh.y));
  SAGAN_CUDNN_CHECK(op, cudnnCreateFilterDescriptor(&fresh.w));
  SAGAN_CUDNN_CHECK(op, cudnnCreateConvolutionDescriptor(&fresh.conv));
  SAGAN_CUDNN_CHECK(op, cudnnSetTensor4dDescriptor(fresh.x, CUDNN_TENSOR_NCHW, dt, B, Ci, H, W));
  SAGAN_CUDNN_CHECK(op, cudnnSetTensor4dDescriptor(fresh.y, CUDNN_TENSOR_NCHW, dt, B, Co, Ho, Wo));
  SAGAN_CUDNN_CHECK(op, cudnnSetFilter4dDescriptor(fresh.w, dt, CUDNN_TENSOR_NCHW, Co, Ci, kh, kw));
  SAGAN_CUDNN_CHECK(op, cudnnSetConvolution2dDescriptor(fresh.conv, pad_h, pad_w, stride_h, stride_w, 1, 1,
                                                        CUDNN_CROSS_CORRELATION, compute));
  // FMA math keeps float32 exact to float32 rounding; TF32 only on request.
  const cudnnMathType_t math = bf16                  ? CUDNN_TENSOR_OP_MATH
                               : f32 && !tf32 ? CUDNN_FMA_MATH
                                              : CUDNN_DEFAULT_MATH;
  SAGAN_CUDNN_CHECK(op, cudnnSetConvolutionMathType(fresh.conv, math));
  int n = 0, c = 0, h = 0, ww = 0;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolution2dForwardOutputDim(fresh.conv, fresh.x, fresh.w, &n, &c, &h, &ww));
  SAGAN_CHECK(n == B && c == Co && h == Ho && ww == Wo, "{}: cuDNN computes output [{}, {}, {}, {}], expected {}", op,
              n, c, h, ww, shape_str(y.shape()));
  std::swap(p.x, fresh.x);
  std::swap(p.y, fresh.y);
  std::swap(p.w, fresh.w);
  std::swap(p.conv, fresh.conv);
  p.bf16 = bf16;
  return p;
}

void find_forward(CudaBackend& be, const char* op, ConvPlan& p, const void* x, const void* w, void* y) {
  cudnnHandle_t h = be.cudnn();
  int max_count = 0, got = 0;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> heur(static_cast<size_t>(max_count)), found(heur.size());
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, max_count, &got, heur.data()));
  size_t budget = find_budget(be, max_memory(heur, got));
  Buffer ws = find_workspace(be, budget);
  int nfound = 0;
  SAGAN_CUDNN_CHECK(op, cudnnFindConvolutionForwardAlgorithmEx(h, p.x, x, p.w, w, p.conv, p.y, y, max_count, &nfound,
                                                               found.data(), ws.get(), budget));
  p.fwd_algo = choose_or_fail(found, nfound, heur, got, budget, op, "forward").algo;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, p.fwd_algo, &p.fwd_ws));
  p.fwd_ready = true;
}

void find_backward_data(CudaBackend& be, const char* op, ConvPlan& p, const void* w, const void* gy, void* gx) {
  cudnnHandle_t h = be.cudnn();
  int max_count = 0, got = 0;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> heur(static_cast<size_t>(max_count)), found(heur.size());
  SAGAN_CUDNN_CHECK(
      op, cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, max_count, &got, heur.data()));
  size_t budget = find_budget(be, max_memory(heur, got));
  Buffer ws = find_workspace(be, budget);
  int nfound = 0;
  SAGAN_CUDNN_CHECK(op, cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, w, p.y, gy, p.conv, p.x, gx, max_count,
                                                                    &nfound, found.data(), ws.get(), budget));
  p.bwd_data_algo = choose_or_fail(found, nfound, heur, got, budget, op, "backward-data").algo;
  SAGAN_CUDNN_CHECK(
      op, cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, p.bwd_data_algo, &p.bwd_data_ws));
  p.bwd_data_ready = true;
}

void find_backward_filter(CudaBackend& be, const char* op, ConvPlan& p, const void* x, const void* gy, void* gw) {
  cudnnHandle_t h = be.cudnn();
  int max_count = 0, got = 0;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> heur(static_cast<size_t>(max_count)), found(heur.size());
  SAGAN_CUDNN_CHECK(
      op, cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, max_count, &got, heur.data()));
  size_t budget = find_budget(be, max_memory(heur, got));
  Buffer ws = find_workspace(be, budget);
  int nfound = 0;
  SAGAN_CUDNN_CHECK(op, cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, x, p.y, gy, p.conv, p.w, gw, max_count,
                                                                      &nfound, found.data(), ws.get(), budget));
  p.bwd_filter_algo = choose_or_fail(found, nfound, heur, got, budget, op, "backward-filter").algo;
  SAGAN_CUDNN_CHECK(op, cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, p.bwd_filter_algo,
                                                                       &p.bwd_filter_ws));
  p.bwd_filter_ready = true;
}

}  // namespace

void CudaBackend::conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                         Conv2dGeom g) {
  conv_forward("conv2d", x, w, bias, out, rect(g));
}
void CudaBackend::conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dGeom g) {
  conv_backward_data("conv2d_backward_input", gy, w, gx, rect(g));
}
void CudaBackend::conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dGeom g) {
  conv_backward_filter("conv2d_backward_weight", gy, x, gw, rect(g));
}
void CudaBackend::conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                              Conv2dRectGeom g) {
  conv_forward("conv2d_rect", x, w, bias, out, g);
}
void CudaBackend::conv2d_rect_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dRectGeom g) {
  conv_backward_data("conv2d_rect_backward_input", gy, w, gx, g);
}
void CudaBackend::conv2d_rect_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dRectGeom g) {
  conv_backward_filter("conv2d_rect_backward_weight", gy, x, gw, g);
}

void CudaBackend::conv_forward(const char* op, const Tensor& x_in, const Tensor& w_in,
                               const std::optional<Tensor>& bias, Tensor& out, Conv2dRectGeom g) {
  const Geometry s = geometry_of(x_in, w_in, out);
  if (out.numel() == 0) return;
  if (x_in.numel() == 0 || s.Ci == 0) {
    fill(out, 0.0);
  } else {
    const Tensor x = dense(*this, x_in), w = dense(*this, w_in);
    std::lock_guard<std::mutex> lock(plan_mutex_);
    ConvPlan& p = plan_for(*this, op, x, w, out, g, s);
    const ConvOperands o(*this, op, p.bf16, x, w, out);
    if (!p.fwd_ready) find_forward(*this, op, p, o.a, o.b, o.out);
    Buffer ws = buffer(p.fwd_ws);
    dispatch_float(out.dtype(), op, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;  // float scaling factors for bf16 tensors too
      const T one = 1, zero = 0;
      SAGAN_CUDNN_CHECK(op, cudnnConvolutionForward(cudnn(), &one, p.x, o.a, p.w, o.b, p.conv, p.fwd_algo, ws.get(),
                                                    p.fwd_ws, &zero, p.y, o.out));
    });
    o.widen(*this, op, out);
  }
  if (bias) {
    const int64_t n = out.numel();
    launch_float(out.dtype(), op, "add_bias_kernel", [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      add_bias_kernel<T><<<blocks_for(n), kBlock, 0, stream_>>>(static_cast<T*>(out.raw_data()),
                                                                static_cast<const T*>(bias->raw_data()),
                                                                bias->strides()[0], s.Co, s.Ho * s.Wo, n);
    });
  }
}

void CudaBackend::conv_backward_data(const char* op, const Tensor& gy_in, const Tensor& w_in, Tensor& gx,
                                     Conv2dRectGeom g) {
  const Geometry s = geometry_of(gx, w_in, gy_in);
  if (gx.numel() == 0) return;
  if (gy_in.numel() == 0 || s.Co == 0) {
    fill(gx, 0.0);
    return;
  }
  const Tensor gy = dense(*this, gy_in), w = dense(*this, w_in);
  std::lock_guard<std::mutex> lock(plan_mutex_);
  ConvPlan& p = plan_for(*this, op, gx, w, gy, g, s);
  const ConvOperands o(*this, op, p.bf16, w, gy, gx);
  if (!p.bwd_data_ready) find_backward_data(*this, op, p, o.a, o.b, o.out);
  Buffer ws = buffer(p.bwd_data_ws);
  dispatch_float(gx.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T one = 1, zero = 0;
    SAGAN_CUDNN_CHECK(op, cudnnConvolutionBackwardData(cudnn(), &one, p.w, o.a, p.y, o.b, p.conv, p.bwd_data_algo,
                                                       ws.get(), p.bwd_data_ws, &zero, p.x, o.out));
  });
  o.widen(*this, op, gx);
}

void CudaBackend::conv_backward_filter(const char* op, const Tensor& gy_in, const Tensor& x_in, Tensor& gw,
                                       Conv2dRectGeom g) {
  const Geometry s = geometry_of(x_in, gw, gy_in);
  if (gw.numel() == 0) return;
  if (gy_in.numel() == 0) {
    fill(gw, 0.0);
    return;
  }
  const Tensor gy = dense(*this, gy_in), x = dense(*this, x_in);
  std::lock_guard<std::mutex> lock(plan_mutex_);
  ConvPlan& p = plan_for(*this, op, x, gw, gy, g, s);
  const ConvOperands o(*this, op, p.bf16, x, gy, gw);
  if (!p.bwd_filter_ready) find_backward_filter(*this, op, p, o.a, o.b, o.out);
  Buffer ws = buffer(p.bwd_filter_ws);
  dispatch_float(gw.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T one = 1, zero = 0;
    SAGAN_CUDNN_CHECK(op, cudnnConvolutionBackwardFilter(cudnn(), &one, p.x, o.a, p.y, o.b, p.conv, p.bwd_filter_algo,
                                                         ws.get(), p.bwd_filter_ws, &zero, p.w, o.out));
  });
  o.widen(*this, op, gw);
}

}  // namespace sagan
