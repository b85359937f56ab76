// Row gather and scatter-add on (O, R, I) views: index_select copies rows
// idx of every outer slice; index_add adds them back, accumulating repeats.
#include <algorithm>
#include <cstring>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

namespace {
struct IndexDims {
  int64_t o, r, i, n;
};

IndexDims index_dims(const Tensor& full, const Tensor& rows, const Tensor& idx, const char* op) {
  SAGAN_CHECK(full.dim() == 3 && rows.dim() == 3 && idx.dim() == 1 && idx.dtype() == DType::I64,
              "{}: expected (O,R,I), (O,n,I) and int64 (n), got {}, {} and {} {}", op, shape_str(full.shape()),
              shape_str(rows.shape()), dtype_name(idx.dtype()), shape_str(idx.shape()));
  return {full.shape()[0], full.shape()[1], full.shape()[2], idx.shape()[0]};
}
}  // namespace

void CpuBackend::index_select(const Tensor& x, const Tensor& idx, Tensor& out) {
  const IndexDims d = index_dims(x, out, idx, "index_select");
  const int64_t* ip = static_cast<const int64_t*>(idx.raw_data());
  const size_t esz = dtype_size(x.dtype());
  const size_t row_bytes = static_cast<size_t>(d.i) * esz;
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const int64_t rows = d.o * d.n;
  // A row copy is a memcpy whatever the dtype, so int64 tensors work too.
#pragma omp parallel for schedule(static) if (rows > 1 && cpu::worth_parallel(out.numel()))
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t o = k / d.n, j = k % d.n;
    std::memcpy(op + static_cast<size_t>(k) * row_bytes, xp + static_cast<size_t>(o * d.r + ip[j]) * row_bytes,
                row_bytes);
  }
}

void CpuBackend::index_add(const Tensor& src, const Tensor& idx, Tensor& out) {
  const IndexDims d = index_dims(out, src, idx, "index_add");
  const int64_t* ip = static_cast<const int64_t*>(idx.raw_data());
  // Tasks are (outer slice, column block) pairs: each owns disjoint output
  // columns and walks idx in order, so repeated indices never race and the
  // summation order is fixed (deterministic results).
  constexpr int64_t kBlock = 256;
  const int64_t blocks = std::max<int64_t>((d.i + kBlock - 1) / kBlock, 1);
  const int64_t tasks = d.o * blocks;
  dispatch_float(out.dtype(), "index_add", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* sp = static_cast<const T*>(src.raw_data());
    T* op = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (tasks > 1 && cpu::worth_parallel(src.numel()))
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t o = t / blocks, c0 = (t % blocks) * kBlock, c1 = std::min(c0 + kBlock, d.i);
      for (int64_t j = 0; j < d.n; ++j) {
        const T* s = sp + (o * d.n + j) * d.i;
        T* r = op + (o * d.r + ip[j]) * d.i;
        for (int64_t c = c0; c < c1; ++c) r[c] += s[c];
      }
    }
  });
}

}  // namespace sagan
