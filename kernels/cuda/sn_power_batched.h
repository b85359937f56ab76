// Batched spectral-norm power iteration for float32 on CUDA: the host API that
// CudaBackend::power_iteration calls with every SN layer of a model at once.
// Plain device pointers, sizes and a stream; no engine types.
//
// For each matrix W (rows, cols), row-major contiguous, with persistent
// vectors u (rows) and v (cols), in place and in this order (the CPU
// backend's):  v = normalize(W^T u),  u = normalize(W v),
// normalize(x) = x / max(||x||, eps); and sigma = u^T W v of the updated
// vectors when `sigma` is given (for reporting: training recomputes sigma
// with autograd). Bitwise reproducible (no float atomics). Two versions:
//   Columns    three launches per 48 matrices; W^T u split over columns
//              only (a tall matrix gets one block per 256 columns).
//   RowChunks  two launches per 48 matrices; W^T u split over row chunks
//              and column tiles, 16-byte reads in both passes (candidate
//              until a GPU run has timed it).
// Design notes: docs/kernels.md.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace sagan::fused {

struct SnMatrixF32 {
  const float* w;  // (rows, cols) device
  float* u;        // (rows) device, updated in place
  float* v;        // (cols) device, updated in place
  int rows, cols;  // >= 1
};

enum class SnPowerVariant : int { Columns = 0, RowChunks = 1 };

// Device scratch for one call over `mats` (a host array); 0 when an entry is
// invalid (null pointer, non-positive size).
size_t sn_power_iteration_batched_workspace_bytes(const SnMatrixF32* mats, int count,
                                                  SnPowerVariant variant = SnPowerVariant::Columns);

// mats: host array of `count` entries. sigma: device array of `count` floats,
// or null. workspace: device, 16-byte aligned, at least the bytes above.
// Returns cudaErrorInvalidValue for invalid arguments, else the launch
// status. Asynchronous on `stream`; `mats` may be freed on return.
cudaError_t sn_power_iteration_batched_f32(const SnMatrixF32* mats, int count, float eps, float* sigma, void* workspace,
                                           size_t workspace_bytes, cudaStream_t stream,
                                           SnPowerVariant variant = SnPowerVariant::Columns);

}  // namespace sagan::fused
