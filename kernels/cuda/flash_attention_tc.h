// Fused attention on tensor cores (mma.sync) for float32 tensors, in three
// precisions chosen per call: the host API that CudaBackend's attention
// calls when a tensor-core implementation is selected (kernels/cuda/settings.h,
// AttentionImpl::Tc*). Plain device pointers, sizes and a stream; no engine
// types.
//
// out = softmax(q k^T) v per batch, NO 1/sqrt(d) scaling; lse = the natural
// log-sum-exp of each score row (the other paths' convention, so forwards
// and backwards of any path pair). q (B,N,d), k (B,S,d), v (B,S,dv),
// out (B,N,dv), lse (B,N); contiguous float32 on the current device.
// Supported: 1 <= d <= 128, dv >= 1, S >= 1, any N (partial tiles masked).
//
// Precisions (products on tensor cores; softmax statistics, accumulation
// and all inputs/outputs float32):
//   F32   3xTF32 (x = big + small, three TF32 products): float32-class,
//         ~1e-6 relative at order-one scores; the one for unscaled logits.
//   TF32  one TF32 product: ~1e-3 relative at order-one scores.
//   BF16  bfloat16 operands: ~1e-2 relative at order-one scores.
// The backward is deterministic (no atomics; fixed summation order).
// Design and error bounds: docs/kernels.md ("Tensor-core attention").
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace sagan::fused {

enum class TcPrecision : int { F32 = 0, TF32 = 1, BF16 = 2 };

bool flash_attention_tc_supported(int d, int dv);

// Returns cudaErrorInvalidValue for unsupported sizes, else the launch
// status. Asynchronous on `stream`.
cudaError_t flash_attention_tc_forward(const float* q, const float* k, const float* v, float* out, float* lse, int B,
                                       int N, int S, int d, int dv, TcPrecision precision, cudaStream_t stream);

// Bytes of device scratch flash_attention_tc_backward needs on the current
// device (D, and the partial sums that replace atomics; at most ~256 MiB:
// batches run in chunks, and the splits shrink where one batch element's
// partials would pass it).
size_t flash_attention_tc_backward_workspace_bytes(int B, int N, int S, int d, int dv);

// gq (B,N,d), gk (B,S,d), gv (B,S,dv) are overwritten. workspace: device,
// 16-byte aligned, at least the bytes above. Bitwise reproducible.
cudaError_t flash_attention_tc_backward(const float* q, const float* k, const float* v, const float* out,
                                        const float* lse, const float* gout, float* gq, float* gk, float* gv, int B,
                                        int N, int S, int d, int dv, TcPrecision precision, void* workspace,
                                        size_t workspace_bytes, cudaStream_t stream);

}  // namespace sagan::fused
