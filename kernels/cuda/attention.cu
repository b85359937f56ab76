// Attention: O = softmax(Q K^T) V per batch, no scaling, and its backward.
//
// Paths (kernels/cuda/settings.h, AttentionImpl):
// - FUSED (the default for float32): the flash-style kernels of
//   flash_attention.h; the N x S score matrix never reaches global memory.
//   Taken when the dtype is float32, no attention map is requested, the head
//   sizes are supported (flash_attention_supported) and the sizes fit the
//   kernels' int parameters and grids; the backward's scratch (one float per
//   query row) comes from the caching allocator.
// - TENSOR CORES (TcF32 / TcTf32 / TcBf16, selected only): the mma.sync
//   kernels of flash_attention_tc.h in that precision, under the same
//   conditions; deterministic backward, scratch from the caching allocator.
// - UNFUSED: everything else (float64, the attention map, d > 128, or
//   set_cuda_attention_impl(AttentionImpl::Unfused) / SAGAN_CUDA_ATTENTION=
//   unfused). Scores are materialised: a cuBLAS batched GEMM writes
//   S = Q K^T (B,N,S) into a workspace (or into the caller's map), the row
//   softmax runs in place and records lse, and a second GEMM applies V. The
//   backward recomputes P = exp(S - lse) the same way.
// Both save the natural-log lse of each score row, so either forward pairs
// with either backward (the op front end may see the setting change between
// its forward and its backward).
//
// The score workspace is N*S per batch element; batches are processed in
// chunks so that it stays under a budget (256 MiB unless
// set_cuda_attention_workspace_limit says otherwise; at least one batch
// element per chunk).
//
// Backward, with D = rowsum(dO * O):
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQ = dS K,  dK = dS^T Q.
#include <climits>

#include "sagan/core/matmul_precision.h"
#include "sagan/kernels/cuda/attention_kernels.cuh"
#include "sagan/kernels/cuda/blas.h"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/flash_attention.h"
#include "sagan/kernels/cuda/flash_attention_tc.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/softmax.cuh"

namespace sagan {

namespace {
using namespace cuda;

struct Dims {
  int64_t B, N, S, d, dv;
};

Dims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  SAGAN_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && k.size(0) == q.size(0) && v.size(0) == q.size(0) &&
                  k.size(2) == q.size(2) && v.size(1) == k.size(1),
              "{}: expected q (B,N,d), k (B,S,d), v (B,S,dv), got {}, {}, {}", op, shape_str(q.shape()),
              shape_str(k.shape()), shape_str(v.shape()));
  SAGAN_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "{}: dtypes of q {}, k {}, v {} differ", op,
              dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype()));
  return {q.size(0), q.size(1), k.size(1), q.size(2), v.size(2)};
}

void check_out(const char* op, const Tensor& t, const Shape& shape, DType dtype, const char* what) {
  SAGAN_CHECK(t.shape() == shape && t.dtype() == dtype && t.is_contiguous(),
              "{}: {} must be a contiguous {} tensor of shape {}, got {} {}", op, what, dtype_name(dtype),
              shape_str(shape), dtype_name(t.dtype()), shape_str(t.shape()));
}

// Whether the fused kernels take this problem: float32 chosen, supported
// head sizes, and sizes within the kernels' int parameters and grid limits:
// B * ceil(N/64), B * ceil(S/64) and B * N / 8 blocks in grid.x, at most
// ceil(dv/64) <= 65535 column tiles in grid.y, and int row/column indices
// that run up to a tile (64) past N, S and dv. Offsets inside the kernels are
// 64-bit, so B*N*d etc. may exceed 2^31.
bool fused_sizes_ok(const Dims& s) {
  constexpr int64_t kLimit = int64_t{INT_MAX} - 256;
  if (s.B > kLimit || s.N > kLimit || s.S > kLimit || s.d > kLimit || s.dv > kLimit) return false;
  return s.B * s.N <= kLimit && s.B * s.S <= kLimit && s.dv <= int64_t{65535} * 64;
}

// The selected path; --precision tf32|bf16 (core/matmul_precision.h) turns
// the default fused path into the tensor-core kernels of that precision (the
// unfused path's GEMMs follow the precision through cuBLAS).
AttentionImpl effective_impl() {
  const AttentionImpl impl = cuda_attention_impl();
  if (impl != AttentionImpl::Fused) return impl;
  switch (matmul_precision()) {
    case MatmulPrecision::Tf32:
      return AttentionImpl::TcTf32;
    case MatmulPrecision::Bf16:
      return AttentionImpl::TcBf16;
    case MatmulPrecision::Fp32:
      break;
  }
  return impl;
}

bool use_fused(const Dims& s, DType dt) {
  if (dt != DType::F32 || effective_impl() != AttentionImpl::Fused) return false;
  return fused_sizes_ok(s) && fused::flash_attention_supported(static_cast<int>(s.d), static_cast<int>(s.dv));
}

// The tensor-core precision when a Tc* implementation is selected and takes
// this problem (the same size conditions as the fused path).
bool use_tc(const Dims& s, DType dt, fused::TcPrecision& prec) {
  if (dt != DType::F32 || !fused_sizes_ok(s)) return false;
  if (!fused::flash_attention_tc_supported(static_cast<int>(s.d), static_cast<int>(s.dv))) return false;
  switch (effective_impl()) {
    case AttentionImpl::TcF32:
      prec = fused::TcPrecision::F32;
      return true;
    case AttentionImpl::TcTf32:
      prec = fused::TcPrecision::TF32;
      return true;
    case AttentionImpl::TcBf16:
      prec = fused::TcPrecision::BF16;
      return true;
    default:
      return false;
  }
}

// A fused entry point's status (invalid sizes or the launch) and, with
// SAGAN_CUDA_SYNC=1, the kernels' completion.
void check_fused(const char* op, const char* call, cudaError_t err, cudaStream_t stream) {
  if (err != cudaSuccess) throw_cuda_error(op, call, err);
  check_launch(op, call, stream);
}

int64_t chunk_for(const Dims& s, size_t elem) {
  const size_t per = static_cast<size_t>(s.N) * static_cast<size_t>(s.S) * elem;
  const size_t budget = cuda_attention_workspace_limit();
  return std::clamp<int64_t>(per == 0 ? s.B : static_cast<int64_t>(budget / per), 1, std::max<int64_t>(s.B, 1));
}
}  // namespace

void CudaBackend::attention_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, Tensor& out,
                                    Tensor& lse, Tensor* map) {
  const char* op = "attention_forward";
  const Dims s = check_qkv(op, q_in, k_in, v_in);
  const DType dt = q_in.dtype();
  check_out(op, out, {s.B, s.N, s.dv}, dt, "out");
  check_out(op, lse, {s.B, s.N}, dt, "lse");
  if (map) {
    check_out(op, *map, {s.B, s.N, s.S}, dt, "map");
  }
  if (s.B * s.N == 0) return;
  SAGAN_CHECK(s.S > 0, "{}: no keys (k has shape {}): the softmax over keys is undefined", op, shape_str(k_in.shape()));
  const Tensor q = dense(*this, q_in), k = dense(*this, k_in), v = dense(*this, v_in);
  if (!map && use_fused(s, dt)) {
    check_fused(op, "flash_attention_forward_f32",
                fused::flash_attention_forward_f32(
                    static_cast<const float*>(q.raw_data()), static_cast<const float*>(k.raw_data()),
                    static_cast<const float*>(v.raw_data()), static_cast<float*>(out.raw_data()),
                    static_cast<float*>(lse.raw_data()), static_cast<int>(s.B), static_cast<int>(s.N),
                    static_cast<int>(s.S), static_cast<int>(s.d), static_cast<int>(s.dv), stream_),
                stream_);
    return;
  }
  if (fused::TcPrecision prec{}; !map && use_tc(s, dt, prec)) {
    check_fused(op, "flash_attention_tc_forward",
                fused::flash_attention_tc_forward(
                    static_cast<const float*>(q.raw_data()), static_cast<const float*>(k.raw_data()),
                    static_cast<const float*>(v.raw_data()), static_cast<float*>(out.raw_data()),
                    static_cast<float*>(lse.raw_data()), static_cast<int>(s.B), static_cast<int>(s.N),
                    static_cast<int>(s.S), static_cast<int>(s.d), static_cast<int>(s.dv), prec, stream_),
                stream_);
    return;
  }
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* qp = static_cast<const T*>(q.raw_data());
    const T* kp = static_cast<const T*>(k.raw_data());
    const T* vp = static_cast<const T*>(v.raw_data());
    T* op_ = static_cast<T*>(out.raw_data());
    T* lp = static_cast<T*>(lse.raw_data());
    const int64_t bc = map ? s.B : chunk_for(s, sizeof(T));
    Buffer scores;
    if (!map) scores = buffer(static_cast<size_t>(bc * s.N * s.S) * sizeof(T));
    for (int64_t b0 = 0; b0 < s.B; b0 += bc) {
      const int64_t nb = std::min(bc, s.B - b0);
      T* sp = map ? static_cast<T*>(map->raw_data()) + b0 * s.N * s.S : scores.get<T>();
      // S = Q K^T: (N,d) @ (S,d)^T
      gemm<T>(*this, op, false, true, s.N, s.S, s.d, T(1), qp + b0 * s.N * s.d, s.d, s.N * s.d, kp + b0 * s.S * s.d,
              s.d, s.S * s.d, T(0), sp, s.S, s.N * s.S, nb);
      const int64_t rows = nb * s.N;
      softmax_rows_kernel<T><<<grid_for_rows(rows), block_for_row(s.S), 0, stream_>>>(sp, sp, lp + b0 * s.N, rows, s.S);
      check_launch(op, "softmax_rows_kernel", stream_);
      // O = P V: (N,S) @ (S,dv)
      gemm<T>(*this, op, false, false, s.N, s.dv, s.S, T(1), sp, s.S, s.N * s.S, vp + b0 * s.S * s.dv, s.dv, s.S * s.dv,
              T(0), op_ + b0 * s.N * s.dv, s.dv, s.N * s.dv, nb);
    }
  });
}

void CudaBackend::attention_backward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& out_in,
                                     const Tensor& lse_in, const Tensor& gout_in, Tensor& gq, Tensor& gk, Tensor& gv) {
  const char* op = "attention_backward";
  const Dims s = check_qkv(op, q_in, k_in, v_in);
  const DType dt = q_in.dtype();
  SAGAN_CHECK(out_in.shape() == Shape({s.B, s.N, s.dv}) && gout_in.shape() == out_in.shape() &&
                  lse_in.shape() == Shape({s.B, s.N}) && out_in.dtype() == dt && gout_in.dtype() == dt &&
                  lse_in.dtype() == dt,
              "{}: out {} {}, out gradient {} {} and lse {} {} do not fit q {}, v {}", op, dtype_name(out_in.dtype()),
              shape_str(out_in.shape()), dtype_name(gout_in.dtype()), shape_str(gout_in.shape()),
              dtype_name(lse_in.dtype()), shape_str(lse_in.shape()), shape_str(q_in.shape()), shape_str(v_in.shape()));
  check_out(op, gq, q_in.shape(), dt, "q gradient");
  check_out(op, gk, k_in.shape(), dt, "k gradient");
  check_out(op, gv, v_in.shape(), dt, "v gradient");
  if (s.B == 0) return;
  if (s.N == 0 || s.S == 0) {  // empty sums: gradients are zero
    fill(gq, 0.0);
    fill(gk, 0.0);
    fill(gv, 0.0);
    return;
  }
  const Tensor q = dense(*this, q_in), k = dense(*this, k_in), v = dense(*this, v_in), out = dense(*this, out_in),
               lse = dense(*this, lse_in), gout = dense(*this, gout_in);
  if (use_fused(s, dt)) {
    const int B = static_cast<int>(s.B), N = static_cast<int>(s.N), S = static_cast<int>(s.S),
              d = static_cast<int>(s.d), dv = static_cast<int>(s.dv);
    // D = rowsum(dO * O), one float per query row. Returned to the cache at
    // scope exit while the kernels may still be queued: safe, because the
    // block's next user is queued behind them on this device's one stream.
    const size_t ws_bytes = fused::flash_attention_backward_workspace_bytes(B, N, S, d, dv);
    Buffer ws = buffer(ws_bytes);
    check_fused(op, "flash_attention_backward_f32",
                fused::flash_attention_backward_f32(
                    static_cast<const float*>(q.raw_data()), static_cast<const float*>(k.raw_data()),
                    static_cast<const float*>(v.raw_data()), static_cast<const float*>(out.raw_data()),
                    static_cast<const float*>(lse.raw_data()), static_cast<const float*>(gout.raw_data()),
                    static_cast<float*>(gq.raw_data()), static_cast<float*>(gk.raw_data()),
                    static_cast<float*>(gv.raw_data()), B, N, S, d, dv, ws.get(), ws_bytes, stream_,
                    cuda_deterministic()),
                stream_);
    return;
  }
  if (fused::TcPrecision prec{}; use_tc(s, dt, prec)) {
    const int B = static_cast<int>(s.B), N = static_cast<int>(s.N), S = static_cast<int>(s.S),
              d = static_cast<int>(s.d), dv = static_cast<int>(s.dv);
    // D and the partial sums; returned to the cache while the kernels may
    // be queued (safe for the same reason as above).
    const size_t ws_bytes = fused::flash_attention_tc_backward_workspace_bytes(B, N, S, d, dv);
    Buffer ws = buffer(ws_bytes);
    check_fused(op, "flash_attention_tc_backward",
                fused::flash_attention_tc_backward(
                    static_cast<const float*>(q.raw_data()), static_cast<const float*>(k.raw_data()),
                    static_cast<const float*>(v.raw_data()), static_cast<const float*>(out.raw_data()),
                    static_cast<const float*>(lse.raw_data()), static_cast<const float*>(gout.raw_data()),
                    static_cast<float*>(gq.raw_data()), static_cast<float*>(gk.raw_data()),
                    static_cast<float*>(gv.raw_data()), B, N, S, d, dv, prec, ws.get(), ws_bytes, stream_),
                stream_);
    return;
  }
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* qp = static_cast<const T*>(q.raw_data());
    const T* kp = static_cast<const T*>(k.raw_data());
    const T* vp = static_cast<const T*>(v.raw_data());
    const T* outp = static_cast<const T*>(out.raw_data());
    const T* lp = static_cast<const T*>(lse.raw_data());
    const T* gop = static_cast<const T*>(gout.raw_data());
    T* gqp = static_cast<T*>(gq.raw_data());
    T* gkp = static_cast<T*>(gk.raw_data());
    T* gvp = static_cast<T*>(gv.raw_data());
    const int64_t bc = chunk_for(s, sizeof(T));
    Buffer pbuf = buffer(static_cast<size_t>(bc * s.N * s.S) * sizeof(T));
    Buffer dpbuf = buffer(static_cast<size_t>(bc * s.N * s.S) * sizeof(T));
    Buffer dbuf = buffer(static_cast<size_t>(bc * s.N) * sizeof(T));
    T* P = pbuf.get<T>();
    T* dP = dpbuf.get<T>();
    T* D = dbuf.get<T>();
    for (int64_t b0 = 0; b0 < s.B; b0 += bc) {
      const int64_t nb = std::min(bc, s.B - b0);
      const int64_t rows = nb * s.N, total = rows * s.S;
      const T* qb = qp + b0 * s.N * s.d;
      const T* kb = kp + b0 * s.S * s.d;
      const T* vb = vp + b0 * s.S * s.dv;
      const T* gob = gop + b0 * s.N * s.dv;
      // P = exp(Q K^T - lse)
      gemm<T>(*this, op, false, true, s.N, s.S, s.d, T(1), qb, s.d, s.N * s.d, kb, s.d, s.S * s.d, T(0), P, s.S,
              s.N * s.S, nb);
      exp_minus_lse_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(P, lp + b0 * s.N, s.S, total);
      check_launch(op, "exp_minus_lse_kernel", stream_);
      // D = rowsum(dO * O)
      row_dot_kernel<T><<<blocks_for(rows * 32), kBlock, 0, stream_>>>(gob, outp + b0 * s.N * s.dv, D, rows, s.dv);
      check_launch(op, "row_dot_kernel", stream_);
      // dV = P^T dO: (S,N) @ (N,dv)
      gemm<T>(*this, op, true, false, s.S, s.dv, s.N, T(1), P, s.S, s.N * s.S, gob, s.dv, s.N * s.dv, T(0),
              gvp + b0 * s.S * s.dv, s.dv, s.S * s.dv, nb);
      // dP = dO V^T: (N,dv) @ (S,dv)^T
      gemm<T>(*this, op, false, true, s.N, s.S, s.dv, T(1), gob, s.dv, s.N * s.dv, vb, s.dv, s.S * s.dv, T(0), dP, s.S,
              s.N * s.S, nb);
      // dS = P * (dP - D)
      softmax_grad_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(P, dP, D, s.S, total);
      check_launch(op, "softmax_grad_kernel", stream_);
      // dQ = dS K: (N,S) @ (S,d)
      gemm<T>(*this, op, false, false, s.N, s.d, s.S, T(1), dP, s.S, s.N * s.S, kb, s.d, s.S * s.d, T(0),
              gqp + b0 * s.N * s.d, s.d, s.N * s.d, nb);
      // dK = dS^T Q: (S,N) @ (N,d)
      gemm<T>(*this, op, true, false, s.S, s.d, s.N, T(1), dP, s.S, s.N * s.S, qb, s.d, s.N * s.d, T(0),
              gkp + b0 * s.S * s.d, s.d, s.S * s.d, nb);
    }
  });
}

}  // namespace sagan
