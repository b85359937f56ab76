// Fused (flash-style) attention for float32 on CUDA: the host API that
// CudaBackend::attention_forward / attention_backward call. Plain device
// pointers, sizes and a stream; no engine types.
//
// out = softmax(q k^T) v per batch, NO 1/sqrt(d) scaling; lse = the natural
// log-sum-exp of each score row (the same lse the unfused path saves, so
// either forward pairs with either backward).
// q (B,N,d), k (B,S,d), v (B,S,dv), out (B,N,dv), lse (B,N); all contiguous
// float32 on the current device. Supported: 1 <= d <= 128, dv >= 1 (the
// tiled forward has no dv limit; the row-per-warp variant takes dv <= 512),
// S >= 1, any N, S and dv (partial tiles are masked). Design and error
// bounds: docs/kernels.md.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace sagan::fused {

// Whether the fused kernels take these head sizes; otherwise use the
// unfused path.
bool flash_attention_supported(int d, int dv);

enum class FlashForwardVariant : int {
  Tiled = 0,       // mainline: 64 x 64 tiles, 4 x 4 register blocks per thread
  RowWarp = 1,     // one warp per query row (baseline for benchmarks)
  TiledAsync = 2,  // Tiled with K/V tiles double-buffered by cp.async (candidate)
};

// Returns cudaErrorInvalidValue for unsupported sizes, else the launch
// status. Asynchronous on `stream`.
cudaError_t flash_attention_forward_f32(const float* q, const float* k, const float* v, float* out, float* lse, int B,
                                        int N, int S, int d, int dv, cudaStream_t stream,
                                        FlashForwardVariant variant = FlashForwardVariant::Tiled);

// Bytes of device scratch flash_attention_backward_f32 needs (B*N floats).
size_t flash_attention_backward_workspace_bytes(int B, int N, int S, int d, int dv);

// gq (B,N,d), gk (B,S,d), gv (B,S,dv) are overwritten (not accumulated).
// gout is dL/dout; out and lse are the forward's. deterministic: no float
// atomics, every sum in a fixed order, so two calls give bitwise equal
// gradients (dQ by a separate kernel that recomputes P and dP). Otherwise dQ
// is summed with float atomics, so gq (and, when the GPU has more
// multiprocessors than key tiles to fill them, gk and gv) vary between runs
// in the last bits.
cudaError_t flash_attention_backward_f32(const float* q, const float* k, const float* v, const float* out,
                                         const float* lse, const float* gout, float* gq, float* gk, float* gv, int B,
                                         int N, int S, int d, int dv, void* workspace, size_t workspace_bytes,
                                         cudaStream_t stream, bool deterministic);

}  // namespace sagan::fused
