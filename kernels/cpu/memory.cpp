// CPU memory: 64-byte aligned so that Eigen and AVX loads never split lines.
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void* CpuBackend::allocate(size_t nbytes) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
  return p;
}

void CpuBackend::deallocate(void* ptr, size_t) { std::free(ptr); }

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }

CpuBackend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace sagan
