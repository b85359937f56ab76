// cuBLAS, opened with dlopen on the first CUDA backend's creation instead of
// linked. Linking it costs every process that loads the engine, GPU or not,
// about 70 ms and 215 MB resident before main (cuBLASLt's static
// initialisers: an empty program linked with -lcublas measures so on the
// development machine, against 1 MB without); the CPU tests, the tools on a
// CPU and programs embedding the engine paid that for nothing. cuDNN, NCCL
// and MPI cost under 3 MB each and stay linked.
//
// Each entry has the type of its declaration in cublas_v2.h (decltype), so
// a call through the table is checked as if linked. Entries are named as the
// header's macros expand them (cublasCreate is cublasCreate_v2), so
// `cublas_api().cublasCreate(&h)` is written like the linked call.
#pragma once
#include <cublas_v2.h>

#include <string>

// Every cuBLAS function the engine calls; add one here to call it.
// clang-format off
#define SAGAN_CUBLAS_FUNCTIONS(X) \
  X(cublasCreate)                 \
  X(cublasDestroy)                \
  X(cublasSetStream)              \
  X(cublasSetMathMode)            \
  X(cublasSetPointerMode)         \
  X(cublasSetWorkspace)           \
  X(cublasGetStatusString)        \
  X(cublasGetStatusName)          \
  X(cublasSgemmStridedBatched_64) \
  X(cublasDgemmStridedBatched_64) \
  X(cublasGemmStridedBatchedEx_64)\
  X(cublasSgemv_64)               \
  X(cublasDgemv_64)
// clang-format on

namespace sagan::cuda {

struct CublasApi {
#define SAGAN_CUBLAS_ENTRY(name) decltype(&::name) name = nullptr;
  SAGAN_CUBLAS_FUNCTIONS(SAGAN_CUBLAS_ENTRY)
#undef SAGAN_CUBLAS_ENTRY
};

// The table, loaded on the first call (thread-safe; every later call returns
// it). When the library or a symbol cannot be found it throws a sagan::Error
// naming the files tried and the loader's message, and the next call tries
// again.
const CublasApi& cublas_api();

// The file name dlopen is given first: libcublas.so.<the headers' major
// version>, found through LD_LIBRARY_PATH, the program's RUNPATH and the
// system's library cache; then the same name in the folder cuBLAS was found
// in at build time.
const char* cublas_library_name();

// The file the table's functions were found in (loading it if need be), for
// reports of what a run used.
std::string cublas_loaded_path();

}  // namespace sagan::cuda
