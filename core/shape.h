// Shapes and strides (in elements). Helpers shared by the front ends and the
// kernels of every backend.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sagan/core/error.h"

namespace sagan {

using Shape = std::vector<int64_t>;

inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

inline std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// Wraps a possibly negative dim into [0, ndim); names the op on failure.
inline int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
  SAGAN_CHECK(d >= -ndim && d < ndim, "{}: dim {} out of range for a {}-d tensor", op, d, ndim);
  return d < 0 ? d + ndim : d;
}
// The same for a dim of a tensor of this shape; the message shows the shape.
inline int64_t wrap_dim(int64_t d, const Shape& shape, const char* op) {
  const auto ndim = static_cast<int64_t>(shape.size());
  SAGAN_CHECK(d >= -ndim && d < ndim, "{}: dim {} out of range for a tensor of shape {} ({}-d)", op, d,
              shape_str(shape), ndim);
  return d < 0 ? d + ndim : d;
}

// For ops over dims (sum, mean, softmax, log_softmax): a 0-d tensor takes dim
// 0 or -1 as if it were 1-d, as in PyTorch; returns 0 for it.
inline int64_t wrap_dim_scalar_as_1d(int64_t d, const Shape& shape, const char* op) {
  if (!shape.empty()) return wrap_dim(d, shape, op);
  SAGAN_CHECK(d == 0 || d == -1, "{}: dim {} out of range for a 0-d tensor (it takes dim 0 or -1)", op, d);
  return 0;
}

// numpy broadcasting of two shapes; throws naming the op and both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SAGAN_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast", op, shape_str(a),
                shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace sagan
