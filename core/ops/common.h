// Checks shared by the op front ends. Messages name the op and the shapes.
#pragma once
#include "sagan/core/autograd.h"
#include "sagan/core/backend.h"
#include "sagan/core/tensor.h"

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

inline void check_nchw(const char* op, const Tensor& x) {
  check_float(op, x);
  SAGAN_CHECK(x.dim() == 4, "{}: expected an NCHW tensor, got shape {}", op, shape_str(x.shape()));
}

inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

// Kernels want contiguous memory; inputs and gradients may arrive as strided
// views (slices, expands).
inline Tensor raw_contiguous(const Tensor& t) { return t.detach().contiguous(); }

// A tensor a forward saves for its backward: a handle without its autograd
// history (capturing `out` itself would make out -> node -> out a cycle),
// and the version of its memory then. A change in place before backward
// (fill_, copy_, an optimiser step; core/storage.h) would silently give a
// wrong gradient, so reading the values then throws SavedTensorChanged.
// Shape and type stay readable: they cannot change.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t) : t_(t.defined() ? t.detach() : Tensor()), version_(t.defined() ? t.version() : 0) {}
  // The saved tensor, checked; where a Tensor is expected it converts.
  const Tensor& get() const {
    if (t_.defined() && t_.version() != version_)
      throw SavedTensorChanged(fmt::format(
          "a {} tensor of shape {} that the forward saved was changed in place afterwards (version {} -> {}); "
          "its gradient would be wrong: change a copy (clone()), or run backward before changing it",
          dtype_name(t_.dtype()), shape_str(t_.shape()), version_, t_.version()));
    return t_;
  }
  operator const Tensor&() const { return get(); }  // NOLINT: converts where a Tensor is expected
  bool defined() const { return t_.defined(); }
  const Shape& shape() const { return t_.shape(); }
  int64_t dim() const { return t_.dim(); }
  int64_t size(int64_t d) const { return t_.size(d); }
  int64_t numel() const { return t_.numel(); }
  DType dtype() const { return t_.dtype(); }
  Device device() const { return t_.device(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

inline SavedTensor saved(const Tensor& t) { return SavedTensor(t); }

}  // namespace sagan::detail
