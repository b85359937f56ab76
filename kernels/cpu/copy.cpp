// fill and strided, converting copy.
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/strided.h"

namespace sagan {

void CpuBackend::fill(Tensor& out, double value) {
  dispatch_all(out.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(out.raw_data());
    const T v = static_cast<T>(value);
    cpu::for_each_row<1>(out.shape(), {out.strides()}, [&](auto off, int64_t n, auto st) {
      T* q = p + off[0];
      for (int64_t i = 0; i < n; ++i) q[i * st[0]] = v;
    });
  });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  SAGAN_CHECK(src.shape() == dst.shape(), "copy: source shape {} differs from destination shape {}",
              shape_str(src.shape()), shape_str(dst.shape()));
  dispatch_all(dst.dtype(), [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_all(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      const S* s = static_cast<const S*>(src.raw_data());
      D* d = static_cast<D*>(dst.raw_data());
      cpu::for_each_row<2>(dst.shape(), {dst.strides(), src.strides()}, [&](auto off, int64_t n, auto st) {
        D* dp = d + off[0];
        const S* sp = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<D>(sp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = static_cast<D>(sp[i * st[1]]);
        }
      });
    });
  });
}

}  // namespace sagan
