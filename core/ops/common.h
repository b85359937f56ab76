// Checks shared by the op front ends. Messages name the op and the shapes.
#pragma once
#include "core/autograd.h"
#include "core/backend.h"
#include "core/tensor.h"

namespace sagan::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
  SAGAN_CHECK(t.defined(), "{}: {} is an undefined tensor", op, what);
}

inline void check_float(const char* op, const Tensor& t) {
  check_defined(op, t);
  SAGAN_CHECK(is_floating(t.dtype()), "{}: expected a floating tensor, got {} of shape {}", op, dtype_name(t.dtype()),
              shape_str(t.shape()));
}

inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  SAGAN_CHECK(a.dtype() == b.dtype(), "{}: dtype mismatch, {} {} vs {} {}", op, dtype_name(a.dtype()),
              shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
  SAGAN_CHECK(a.device() == b.device(), "{}: device mismatch, {} on {} vs {} on {}", op, shape_str(a.shape()),
              device_name(a.device()), shape_str(b.shape()), device_name(b.device()));
}

inline void check_dim(const char* op, const Tensor& t, int64_t ndim, const char* what) {
  SAGAN_CHECK(t.dim() == ndim, "{}: {} must be {}-d, got shape {}", op, what, ndim, shape_str(t.shape()));
}

inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

// A handle to t without its autograd history, for saving in backward
// closures: capturing `out` itself would make out -> node -> out a cycle.
inline Tensor saved(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

}  // namespace sagan::detail
