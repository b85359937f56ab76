// SAGAN_HD marks a function that both backends compile: __host__ __device__
// under nvcc, plain inline for g++ (the CPU backend, and the CPU emulator of
// the CUDA kernels, tests/cuda/emu/cuda_emu.h).
#pragma once

#if defined(__CUDACC__)
#define SAGAN_HD __host__ __device__ __forceinline__
#else
#define SAGAN_HD inline
#endif
