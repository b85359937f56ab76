// The CUDA backend's process-wide settings, plain C++ (compiled by g++) and
// defined in every build (kernels/cuda/settings.cpp): without the CUDA
// backend they only record the setting, so tools and tests that set them
// compile and run unchanged.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace sagan {

enum class KernelId : int;  // core/backend.h

// TF32 tensor cores for float32 GEMM and convolution. Off by default so that
// float32 results keep full float32 precision; affects calls made after it.
void set_cuda_tf32(bool enabled);
bool cuda_tf32_enabled();

// Deterministic mode (on by default): every CUDA kernel the engine runs sums
// in a fixed order without float atomics, and cuDNN runs only deterministic
// algorithms, so two GPU runs from the same seed give bitwise equal results
// and a resumed run equals an uninterrupted one (on the same GPU model,
// driver and library versions). It changes: the fused attention's backward
// (dQ by a separate kernel instead of atomics; docs/benchmarks.md has its
// cost), index_add (the embeddings' backward: one thread per output column
// walks the indices in order), and cuDNN's algorithm choice (the first
// deterministic one in cuDNN's heuristic order, untimed, so that every
// process picks the same; where the heuristics list none, a fixed
// deterministic algorithm, conv2d.cu).
// Off: the faster atomic kernels and any cuDNN algorithm. Default from
// SAGAN_CUDA_DETERMINISTIC=1|0 (read once when first needed; unset or empty:
// 1; other values throw naming the variable); set_cuda_deterministic
// overrides it, process-wide, for calls made after it (the Trainer calls it
// with --deterministic's value). The tensor-core attention kernels are
// deterministic either way.
void set_cuda_deterministic(bool enabled);
bool cuda_deterministic();

// The CUDA path of the attention op (attention_forward and
// attention_backward, kernels/cuda/attention.cu) for float32:
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

// Fill every new CUDA tensor's memory with 0xFF bytes (NaN in float32 and
// float64, -1 in int64) on the backend's stream, so that an element a kernel
// fails to write reads as NaN instead of as whatever the cached block held
// (the CUDA parity suite turns it on for every test, tests/cuda/main.cpp).
// A debugging aid: one memset per allocation. Workspaces (CudaBackend::
// buffer) are not filled. Default from SAGAN_CUDA_FILL_ALLOCATIONS=1|0
// (unset or empty: 0; other values throw naming the variable), read once;
// set_cuda_fill_allocations overrides it, process-wide.
void set_cuda_fill_allocations(bool enabled);
bool cuda_fill_allocations();

// Bytes of the score workspace of the unfused attention (N*S per batch
// element; batches run in chunks that fit). 0 restores the default, 256 MiB.
// At least one batch element is always processed per chunk.
void set_cuda_attention_workspace_limit(size_t bytes);
size_t cuda_attention_workspace_limit();

// The kernels of core/kernels.def that every CUDA backend declines when it
// is created (Backend::set_declined: they run on the CPU on host copies),
// from SAGAN_CUDA_DECLINE=name,name (read once; spaces around names
// ignored; an unknown name, fill or copy throws naming the variable): to
// rule a CUDA kernel in or out when results look wrong.
std::vector<KernelId> cuda_declined_kernels();
// The list's parse: the kernels named, in order, `what` named in errors.
std::vector<KernelId> parse_declined_kernels(const std::string& text, const std::string& what);

}  // namespace sagan
