// The CUDA backend's plain C++ face: what core/backend.cpp, the tests and the
// tools may call without seeing a CUDA type (this header is compiled by g++).
//
// The switches (set_cuda_tf32, set_cuda_attention_impl, set_cuda_sn_power_impl
// and their getters, names and parsers) exist in every build: without
// the CUDA backend they only record the setting (core/backend.cpp), so callers
// compile and run unchanged. Everything else here is defined only when the
// engine is built with CUDA (SAGAN_WITH_CUDA).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/backend.h"

namespace sagan {

// Number of CUDA devices; 0, never a throw, when there is no driver or device.
int cuda_runtime_device_count();

// The backend of device `index` (created on first use; lives until exit).
// Throws naming the device when it does not exist.
Backend& cuda_backend(int index);

// TF32 tensor cores for float32 GEMM and convolution. Off by default so that
// float32 results keep full float32 precision; affects calls made after it.
void set_cuda_tf32(bool enabled);
bool cuda_tf32_enabled();

// The CUDA path of the attention op (CudaBackend::attention_forward and
// attention_backward) for float32:
//   Fused    (default) the flash-style kernels of flash_attention.h: no N x S
//            score matrix in memory; used when the head sizes are supported
//            (flash_attention_supported(d, dv): 1 <= d <= 128) and no
//            attention map is requested;
//   Unfused  cuBLAS GEMMs around a materialised score matrix (attention.cu);
//   TcF32, TcTf32, TcBf16  the tensor-core kernels of flash_attention_tc.h
//            (mma.sync) with products in 3xTF32 (float32-class), TF32 or
//            bf16, float32 softmax and accumulation, a deterministic
//            backward; under the same conditions as Fused (1 <= d <= 128, no
//            map). Candidates: not the default until a GPU run has checked
//            and timed them (docs/kernels.md).
// float64, a requested attention map and unsupported head sizes always take
// the unfused path. All paths save the same lse, so a forward of one pairs
// with a backward of another. The default comes from the environment
// variable SAGAN_CUDA_ATTENTION=fused|unfused|tc-fp32|tc-tf32|tc-bf16, read
// once, when the setting is first needed (unset or empty: fused; any other
// value throws naming the variable and the value); set_cuda_attention_impl
// overrides it for calls made after it, process-wide.
enum class AttentionImpl { Fused, Unfused, TcF32, TcTf32, TcBf16 };
void set_cuda_attention_impl(AttentionImpl impl);
AttentionImpl cuda_attention_impl();
// "fused", "unfused", "tc-fp32", "tc-tf32", "tc-bf16".
const char* attention_impl_name(AttentionImpl impl);
// The inverse of attention_impl_name; other text throws naming `what` (an
// option or variable name) and the text.
AttentionImpl parse_attention_impl(const std::string& text, const std::string& what);

// The batched float32 spectral-norm power iteration (CudaBackend::
// power_iteration, sn_power_batched.h):
//   Columns    (default) three launches per 48 matrices, W^T u split over
//              columns;
//   RowChunks  two launches per 48 matrices, W^T u split over row chunks
//              too (candidate until a GPU run has checked and timed it).
// Default from SAGAN_CUDA_SN_POWER=columns|row-chunks, read once when first
// needed (unset or empty: columns; other values throw naming the variable);
// set_cuda_sn_power_impl overrides it, process-wide.
enum class SnPowerImpl { Columns, RowChunks };
void set_cuda_sn_power_impl(SnPowerImpl impl);
SnPowerImpl cuda_sn_power_impl();
// "columns" / "row-chunks", and the inverse (other text throws naming `what`).
const char* sn_power_impl_name(SnPowerImpl impl);
SnPowerImpl parse_sn_power_impl(const std::string& text, const std::string& what);

// Bytes of the score workspace of the unfused attention (N*S per batch
// element; batches run in chunks that fit). 0 restores the default, 256 MiB.
// At least one batch element is always processed per chunk.
void set_cuda_attention_workspace_limit(size_t bytes);

// The caching allocator of one device, for tests and logs.
struct CudaMemoryStats {
  int64_t malloc_calls = 0;  // cudaMalloc calls made so far
  int64_t cache_hits = 0;    // allocations served from the free lists
  int64_t bytes_in_use = 0;  // held by live tensors and workspaces
  int64_t bytes_cached = 0;  // in the free lists, ready for reuse
  int64_t peak_bytes_in_use = 0;
};
CudaMemoryStats cuda_memory_stats(int device = 0);
// Returns every cached (free) block to the driver.
void cuda_empty_cache(int device = 0);

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"; throws like cuda_backend.
std::string cuda_device_description(int index);

}  // namespace sagan
