// Convolutions through cuDNN: forward, backward-data and backward-filter of
// conv2d (square kernels) and conv2d_rect (a kernel, stride and padding per
// axis), NCHW, cross-correlation like the CPU backend, dilation 1, float or
// double. Both ops share one path; a square convolution is the rectangular
// one with equal sides. The small kernels around cuDNN are
// conv2d_kernels.cuh's (bias) and bf16_convert.cuh's (bf16 conversions).
//
// Each geometry gets a ConvPlan (descriptors + one algorithm per direction),
// built on first use and cached by the backend. How the algorithm is chosen:
// - deterministic mode (kernels/cuda/settings.h, the default): the first
//   deterministic algorithm in cuDNN's heuristic order (cudnnGet*_v7) whose
//   workspace fits a fixed 1 GiB. No timing: timing noise and the free
//   memory of the moment would pick different (each deterministic but
//   differently rounding) algorithms in different processes, and a resumed
//   run must repeat an uninterrupted one bit for bit (PyTorch's
//   reproducibility notes say the same of cudnn.benchmark).
// - otherwise: the fastest by timing the candidates (cudnnFind*Ex) with a
//   workspace from the caching allocator sized by the heuristics, else the
//   heuristics' first.
// Either way only algorithms whose reported math type the precision allows
// (math_allowed) are taken, and the descriptor is set to that math type
// before the call. When none qualifies, a fixed deterministic algorithm
// cuDNN supports for the plan is used with a warning (fallback_algorithm).
// Workspaces of the calls come from the caching allocator, so steady-state
// steps make no cudaMalloc. A search needs the device synchronised, so a
// geometry first met inside a CUDA graph capture is refused with a message
// instead of invalidating the capture.
//
// float32 runs in FMA math unless set_cuda_tf32(true) or --precision tf32
// (core/matmul_precision.h). Under --precision bf16 a float32 convolution runs
// on bf16 copies of its operands (cuDNN's bf16 configuration: bf16 tensors,
// float32 compute, tensor-op math) and its bf16 result is widened back to
// float32 before the bias is added: what the CPU backend emulates. The
// precision and the deterministic switch are part of the plan key, so
// changing one chooses algorithms again.
#include <algorithm>
#include <climits>
#include <vector>

#include "sagan/core/matmul_precision.h"
#include "sagan/core/warning.h"
#include "sagan/kernels/cuda/conv2d_kernels.cuh"
#include "sagan/kernels/cuda/conv_plan.h"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

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
    a16 = narrowed(be, op, ta), b16 = narrowed(be, op, tb), out16 = bf16_buffer(be, tout.numel());
    a = a16.get(), b = b16.get(), out = out16.get();
  }

  // A bf16 plan's result into the float32 output; nothing otherwise.
  void widen(CudaBackend& be, const char* op, Tensor& tout) const {
    if (!out16.get()) return;
    const int64_t n = tout.numel();
    from_bf16_kernel<<<blocks_for(n), kBlock, 0, be.stream()>>>(static_cast<const uint16_t*>(out16.get()),
                                                                static_cast<float*>(tout.raw_data()), n);
    check_launch(op, "from_bf16_kernel", be.stream());
  }

 private:
  static Buffer narrowed(CudaBackend& be, const char* op, const Tensor& t) {
    return bf16_copy(be, op, static_cast<const float*>(t.raw_data()), t.numel());
  }
};

// The most workspace a convolution's algorithm may ask for. A deterministic
// choice uses this fixed bound alone, so that it does not depend on the
// memory free at the time.
constexpr size_t kMaxWorkspace = size_t(1) << 30;

// Workspace the heuristics ask for, bounded by what we are willing to spend
// on timing candidates: kMaxWorkspace and half the free memory.
size_t find_budget(size_t wanted) {
  size_t free_b = 0, total_b = 0;
  SAGAN_CUDA_CHECK("conv2d", cudaMemGetInfo(&free_b, &total_b));
  return std::min({wanted, kMaxWorkspace, free_b / 2});
}

// Whether an algorithm reported with math type m keeps the plan's
// precision: exact float32 (FMA math) takes FMA-only algorithms (default
// math would allow TF32); the others take any but the float32-to-half
// conversions.
bool math_allowed(cudnnMathType_t plan_math, cudnnMathType_t m) {
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return plan_math != CUDNN_FMA_MATH || m == CUDNN_FMA_MATH;
}

// The best result: successful, within the workspace, of an allowed math
// type, deterministic when asked, in cuDNN's order (fastest first for Find,
// most promising first for Get).
template <class Perf>
const Perf* choose(const std::vector<Perf>& perf, int count, size_t budget, bool deterministic,
                   cudnnMathType_t plan_math) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > budget || !math_allowed(plan_math, p.mathType)) continue;
    if (!deterministic || p.determinism == CUDNN_DETERMINISTIC) return &p;
  }
  return nullptr;
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
  const cudnnMathType_t math = bf16 ? CUDNN_TENSOR_OP_MATH : f32 && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
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
  p.math = math;
  return p;
}

// The three directions of a convolution for the generic choice and call
// below: each one's cuDNN entry points with the plan's descriptors in that
// direction's order, over the operands (a, b) -> out that ConvOperands holds
// (forward: x, w -> y; backward-data: w, dy -> dx; backward-filter:
// x, dy -> dw).
struct Forward {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr const char* name = "forward";
  static constexpr const char* call = "cudnnConvolutionForward";
  static ConvChoice<Algo>& choice(ConvPlan& p) { return p.fwd; }
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n); }
  static cudnnStatus_t get(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvOperands& o, int n, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, p.x, o.a, p.w, o.b, p.conv, p.y, o.out, n, got, perf, ws, bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, a, bytes);
  }
  static constexpr Algo kFallbacks[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
  static cudnnStatus_t run(cudnnHandle_t h, const void* one, const ConvPlan& p, const ConvOperands& o, Algo a, void* ws,
                           size_t bytes, const void* zero) {
    return cudnnConvolutionForward(h, one, p.x, o.a, p.w, o.b, p.conv, a, ws, bytes, zero, p.y, o.out);
  }
};

struct BackwardData {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr const char* name = "backward-data";
  static constexpr const char* call = "cudnnConvolutionBackwardData";
  static ConvChoice<Algo>& choice(ConvPlan& p) { return p.bwd_data; }
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t get(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvOperands& o, int n, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, o.a, p.y, o.b, p.conv, p.x, o.out, n, got, perf, ws,
                                                       bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, a, bytes);
  }
  static constexpr Algo kFallbacks[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
  static cudnnStatus_t run(cudnnHandle_t h, const void* one, const ConvPlan& p, const ConvOperands& o, Algo a, void* ws,
                           size_t bytes, const void* zero) {
    return cudnnConvolutionBackwardData(h, one, p.w, o.a, p.y, o.b, p.conv, a, ws, bytes, zero, p.x, o.out);
  }
};

struct BackwardFilter {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr const char* name = "backward-filter";
  static constexpr const char* call = "cudnnConvolutionBackwardFilter";
  static ConvChoice<Algo>& choice(ConvPlan& p) { return p.bwd_filter; }
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t get(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvOperands& o, int n, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, o.a, p.y, o.b, p.conv, p.w, o.out, n, got, perf, ws,
                                                         bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, a, bytes);
  }
  static constexpr Algo kFallbacks[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
  static cudnnStatus_t run(cudnnHandle_t h, const void* one, const ConvPlan& p, const ConvOperands& o, Algo a, void* ws,
                           size_t bytes, const void* zero) {
    return cudnnConvolutionBackwardFilter(h, one, p.x, o.a, p.y, o.b, p.conv, a, ws, bytes, zero, p.w, o.out);
  }
};

void check_cudnn(const char* op, const char* call, cudnnStatus_t st) {
  if (st != CUDNN_STATUS_SUCCESS) throw_cudnn_error(op, call, st);
}

// When the heuristics offer nothing the mode and precision allow (cuDNN may
// list no deterministic backward algorithm for bf16 or float64 on some
// architectures, or report float32 entries under another math type): the
// first of Dir's fixed deterministic algorithms (PyTorch's defaults without
// benchmarking) that cuDNN supports for the plan, in the plan's math type,
// with a workspace within kMaxWorkspace. The descriptor is in the plan's
// math type already.
template <class Dir>
bool fallback_algorithm(cudnnHandle_t h, const ConvPlan& p, typename Dir::Algo& algo) {
  for (const auto a : Dir::kFallbacks) {
    size_t bytes = 0;
    if (Dir::workspace(h, p, a, &bytes) == CUDNN_STATUS_SUCCESS && bytes <= kMaxWorkspace) {
      algo = a;
      return true;
    }
  }
  return false;
}

// Direction Dir's algorithm, math type and workspace size, chosen as the
// file's comment says; the descriptor is left in the chosen math type.
template <class Dir>
void choose_algorithm(CudaBackend& be, const char* op, ConvPlan& p, const ConvOperands& o) {
  using Perf = typename Dir::Perf;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  SAGAN_CUDA_CHECK(op, cudaStreamIsCapturing(be.stream(), &capture));
  SAGAN_CHECK(capture == cudaStreamCaptureStatusNone,
              "{}: a convolution geometry first met during CUDA graph capture ({}): choosing its algorithm needs "
              "the device synchronised; run these shapes once before capturing",
              op, Dir::name);
  cudnnHandle_t h = be.cudnn();
  SAGAN_CUDNN_CHECK(op, cudnnSetConvolutionMathType(p.conv, p.math));
  int max_count = 0;
  check_cudnn(op, "cudnnGetConvolution*AlgorithmMaxCount", Dir::max_count(h, &max_count));
  std::vector<Perf> heur(static_cast<size_t>(max_count));
  int got = 0;
  check_cudnn(op, "cudnnGetConvolution*Algorithm_v7", Dir::get(h, p, max_count, &got, heur.data()));
  const bool det = cuda_deterministic();
  const Perf* best = nullptr;
  if (det) {
    best = choose(heur, got, kMaxWorkspace, true, p.math);
  } else {
    size_t budget = find_budget(max_memory(heur, got));
    Buffer ws = find_workspace(be, budget);
    std::vector<Perf> found(heur.size());
    int nfound = 0;
    check_cudnn(op, "cudnnFindConvolution*AlgorithmEx",
                Dir::find(h, p, o, max_count, &nfound, found.data(), ws.get(), budget));
    best = choose(found, nfound, budget, false, p.math);
    if (!best) best = choose(heur, got, budget, false, p.math);
  }
  auto& c = Dir::choice(p);
  if (best != nullptr) {
    c.algo = best->algo, c.math = best->mathType;
  } else if (!fallback_algorithm<Dir>(h, p, c.algo)) {
    SAGAN_FAIL(
        "{}: cuDNN offers no {}{} algorithm for this geometry, and its fixed deterministic ones are not supported "
        "here either{}",
        op, det ? "deterministic " : "", Dir::name,
        det ? " (deterministic mode; --no-deterministic or SAGAN_CUDA_DETERMINISTIC=0 allows the others)" : "");
  } else {
    c.math = p.math;
    warn(
        fmt::format("{}: cuDNN's heuristics offer no {}{} algorithm of this precision for this geometry; using "
                    "its fixed algorithm {} (deterministic), as PyTorch does without benchmarking",
                    op, det ? "deterministic " : "", Dir::name, static_cast<int>(c.algo)));
  }
  SAGAN_CUDNN_CHECK(op, cudnnSetConvolutionMathType(p.conv, c.math));
  check_cudnn(op, "cudnnGetConvolution*WorkspaceSize", Dir::workspace(h, p, c.algo, &c.workspace));
  c.ready = true;
}

// Direction Dir over o, its algorithm chosen first if the plan has none yet.
// Scaling factors are float for float32 and bf16 tensors, double for double.
template <class Dir>
void run_direction(CudaBackend& be, const char* op, ConvPlan& p, const ConvOperands& o, DType dtype) {
  auto& c = Dir::choice(p);
  if (!c.ready) choose_algorithm<Dir>(be, op, p, o);
  Buffer ws = be.buffer(c.workspace);
  SAGAN_CUDNN_CHECK(op, cudnnSetConvolutionMathType(p.conv, c.math));
  dispatch_float(dtype, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T one = 1, zero = 0;
    check_cudnn(op, Dir::call, Dir::run(be.cudnn(), &one, p, o, c.algo, ws.get(), c.workspace, &zero));
  });
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
    run_direction<Forward>(*this, op, p, o, out.dtype());
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
  run_direction<BackwardData>(*this, op, p, o, gx.dtype());
  o.widen(*this, op, gx);
}

void CudaBackend::conv_backward_filter(const char* op, const Tensor& gy_in, const Tensor& x_in, Tensor& gw,
                                       Conv2dRectGeom g) {
  const Geometry s = geometry_of(x_in, gw, gy_in);
  if (gw.numel() == 0) return;
  // An empty input padded to a non-empty output (H = 0, pad > 0) gives a
  // zero gradient too; cuDNN rejects zero-sized descriptors.
  if (gy_in.numel() == 0 || x_in.numel() == 0) {
    fill(gw, 0.0);
    return;
  }
  const Tensor gy = dense(*this, gy_in), x = dense(*this, x_in);
  std::lock_guard<std::mutex> lock(plan_mutex_);
  ConvPlan& p = plan_for(*this, op, x, gw, gy, g, s);
  const ConvOperands o(*this, op, p.bf16, x, gy, gw);
  run_direction<BackwardFilter>(*this, op, p, o, gw.dtype());
  o.widen(*this, op, gw);
}

}  // namespace sagan
