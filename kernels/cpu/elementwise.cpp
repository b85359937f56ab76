// Unary, unary-backward and broadcasting binary kernels. The per-element
// formulas live in kernels/elementwise_math.h so the CUDA backend computes
// exactly the same expressions.
#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/strided.h"
#include "sagan/kernels/elementwise_math.h"

namespace sagan {

namespace {
template <class T, class F>
void map1(const Tensor& x, Tensor& out, F f) {
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  cpu::for_each_row<2>(out.shape(), {out.strides(), x.strides()}, [&](auto off, int64_t n, auto st) {
    T* o = op + off[0];
    const T* a = xp + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]]);
    }
  });
}

template <class T, class F>
void map2(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* ap = static_cast<const T*>(a.raw_data());
  const T* bp = static_cast<const T*>(b.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  cpu::for_each_row<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, [&](auto off, int64_t n, auto st) {
    T* o = op + off[0];
    const T* x = ap + off[1];
    const T* y = bp + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T yv = y[0];
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]], y[i * st[2]]);
    }
  });
}

template <class T, class F>
void map3(const Tensor& a, const Tensor& b, const Tensor& c, Tensor& out, F f) {
  const T* ap = static_cast<const T*>(a.raw_data());
  const T* bp = static_cast<const T*>(b.raw_data());
  const T* cp = static_cast<const T*>(c.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  cpu::for_each_row<4>(
      out.shape(), {out.strides(), a.strides(), b.strides(), c.strides()}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i)
          op[off[0] + i * st[0]] = f(ap[off[1] + i * st[1]], bp[off[2] + i * st[2]], cp[off[3] + i * st[3]]);
      });
}
}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  dispatch_float(out.dtype(), unary_op_name(op), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T a = static_cast<T>(alpha);
    math::with_unary<T>(op, [&](auto f) { map1<T>(x, out, [&](T v) { return f(v, a); }); });
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                double alpha) {
  dispatch_float(gx.dtype(), unary_op_name(op), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T a = static_cast<T>(alpha);
    math::with_unary_grad<T>(
        op, [&](auto df) { map3<T>(x, y, gy, gx, [&](T xv, T yv, T g) { return df(xv, yv, a, g); }); });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_float(out.dtype(), binary_op_name(op), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    math::with_binary<T>(op, [&](auto f) { map2<T>(a, b, out, f); });
  });
}

}  // namespace sagan
