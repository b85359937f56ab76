// fill and strided, converting copy.
#include <algorithm>

#include "sagan/kernels/convert_value.h"
#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/strided.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

void CpuBackend::fill(Tensor& out, double value) {
  dispatch_all(out.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(out.raw_data());
    const T v = convert_value<T>(value);
    cpu::for_each_row<1>(out.shape(), {out.strides()}, [&](auto off, int64_t n, auto st) {
      T* q = p + off[0];
      for (int64_t i = 0; i < n; ++i) q[i * st[0]] = v;
    });
  });
}

namespace {

// Copies where the destination's innermost dim is unit-stride but the
// source's unit-stride dim is another one (contiguous() of a transpose or
// permute): row by row, every source read would touch a new cache line.
// Square tiles of the (a, inner) plane keep both sides' lines in L1 instead;
// 16 (one line of floats) measured as fast as 8 and faster than 32, whose 32
// lines at a power-of-two stride fall into few L1 sets.
template <class D, class S>
void copy_tiled(const cpu::Geometry<2>& g, size_t a, D* d, const S* s) {
  constexpr int64_t B = 16;
  const size_t nd = g.shape.size();
  const int64_t rows = g.shape[a], cols = g.shape.back();
  const int64_t d_row = g.strides[0][a], s_col = g.strides[1].back();
  // Outer dims: everything but `a` and the innermost.
  std::vector<size_t> outer;
  for (size_t k = 0; k + 1 < nd; ++k)
    if (k != a) outer.push_back(k);
  int64_t n_outer = 1;
  for (size_t k : outer) n_outer *= g.shape[k];
  const int64_t row_tiles = (rows + B - 1) / B;
  const int64_t units = n_outer * row_tiles;
#pragma omp parallel for schedule(static) if (units > 1 && cpu::worth_parallel(n_outer * rows * cols))
  for (int64_t u = 0; u < units; ++u) {
    int64_t o = u / row_tiles, i0 = (u % row_tiles) * B;
    int64_t doff = 0, soff = 0;
    for (size_t k = outer.size(); k-- > 0;) {
      int64_t idx = o % g.shape[outer[k]];
      o /= g.shape[outer[k]];
      doff += idx * g.strides[0][outer[k]];
      soff += idx * g.strides[1][outer[k]];
    }
    const int64_t i1 = std::min(rows, i0 + B);
    for (int64_t j0 = 0; j0 < cols; j0 += B) {
      const int64_t j1 = std::min(cols, j0 + B);
      for (int64_t i = i0; i < i1; ++i) {
        D* dp = d + doff + i * d_row;
        const S* sp = s + soff + i;  // source stride along `a` is 1
        for (int64_t j = j0; j < j1; ++j) dp[j] = convert_value<D>(sp[j * s_col]);
      }
    }
  }
}

}  // namespace

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  SAGAN_CHECK(src.shape() == dst.shape(), "copy: source shape {} differs from destination shape {}",
              shape_str(src.shape()), shape_str(dst.shape()));
  dispatch_all(dst.dtype(), [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_all(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      const S* s = static_cast<const S*>(src.raw_data());
      D* d = static_cast<D*>(dst.raw_data());
      if (dst.numel() == 0) return;
      const cpu::Geometry<2> g = cpu::merge_dims<2>(dst.shape(), {dst.strides(), src.strides()});
      const size_t nd = g.shape.size();
      if (nd >= 2 && g.strides[0].back() == 1 && g.strides[1].back() != 1 && g.shape.back() >= 8) {
        for (size_t a = 0; a + 1 < nd; ++a)
          if (g.strides[1][a] == 1 && g.shape[a] >= 8) return copy_tiled<D, S>(g, a, d, s);
      }
      cpu::for_each_row<2>(dst.shape(), {dst.strides(), src.strides()}, [&](auto off, int64_t n, auto st) {
        D* dp = d + off[0];
        const S* sp = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) dp[i] = convert_value<D>(sp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert_value<D>(sp[i * st[1]]);
        }
      });
    });
  });
}

}  // namespace sagan
