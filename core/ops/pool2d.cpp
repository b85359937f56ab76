// General k x k pooling (stride, padding, max or average with either padding
// rule) and adaptive average pooling on NCHW tensors: the pools of
// Inception-v3 (3x3 stride-2 max, 3x3 stride-1 padded average without the
// padding in the count, the final adaptive average); see core/ops_vision.h.
// The 2x2 pools SAGAN trains with are in core/ops/pool.cpp.
#include "sagan/core/ops/common.h"
#include "sagan/core/ops_vision.h"

namespace sagan {

using detail::backend_of;
using detail::check_nchw;
using detail::raw_contiguous;
using detail::saved;

namespace {
Tensor pool(const char* op, const Tensor& x, Pool2dGeom g) {
  check_nchw(op, x);
  const int64_t k = g.kernel, stride = g.stride, pad = g.pad;
  SAGAN_CHECK(k >= 1 && stride >= 1, "{}: need kernel >= 1 and stride >= 1, got kernel {} stride {}", op, k, stride);
  SAGAN_CHECK(pad >= 0 && pad <= k / 2, "{}: pad must be in [0, kernel/2] = [0, {}], got {}", op, k / 2, pad);
  const int64_t h = x.size(2), w = x.size(3);
  // Padding would give an empty plane windows without one real element.
  SAGAN_CHECK(h >= 1 && w >= 1, "{}: input {} has an empty plane", op, shape_str(x.shape()));
  SAGAN_CHECK(h + 2 * pad >= k && w + 2 * pad >= k, "{}: input {} is smaller than the {}x{} window (pad {})", op,
              shape_str(x.shape()), k, k, pad);
  const int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  Tensor xc = raw_contiguous(x);
  Tensor out = Tensor::empty({x.size(0), x.size(1), ho, wo}, x.dtype(), x.device());
  if (out.numel() > 0) backend_of(x).pool2d(xc, out, g);
  // Max pooling re-derives each window's argmax from x in the backward.
  record(op, out, {x}, [xc = saved(xc), g](const Tensor& gy, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(xc.shape(), gy.dtype(), gy.device());
    if (gx.numel() > 0) backend_of(gy).pool2d_backward(xc, raw_contiguous(gy), gx, g);
    return std::vector<Tensor>{gx};
  });
  return out;
}
}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad) {
  return pool("max_pool2d", x, {PoolMode::Max, kernel, stride, pad});
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad, bool count_include_pad) {
  const PoolMode mode = count_include_pad ? PoolMode::AvgIncludePad : PoolMode::AvgExcludePad;
  return pool("avg_pool2d", x, {mode, kernel, stride, pad});
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  const char* op = "adaptive_avg_pool2d";
  check_nchw(op, x);
  SAGAN_CHECK(out_h >= 1 && out_w >= 1, "{}: output size must be positive, got {}x{}", op, out_h, out_w);
  SAGAN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "{}: input {} has an empty plane", op, shape_str(x.shape()));
  Tensor out = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  if (out.numel() > 0) backend_of(x).adaptive_avg_pool2d(raw_contiguous(x), out);
  const Shape in_shape = x.shape();
  record(op, out, {x}, [in_shape](const Tensor& gy, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(in_shape, gy.dtype(), gy.device());
    if (gx.numel() > 0) backend_of(gy).adaptive_avg_pool2d_backward(raw_contiguous(gy), gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace sagan
