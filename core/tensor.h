// Tensor: a handle to (storage, shape, strides, offset, dtype) plus autograd
// metadata. Copying a Tensor copies the handle; views share storage.
#pragma once
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sagan/core/shape.h"
#include "sagan/core/storage.h"

namespace sagan {

class Node;
class Rng;
struct GradSlot;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (contiguous, requires_grad = false) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = {});
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = {});
  // Copies host values; values.size() must equal numel(shape).
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = {});
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = {});
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device = {});
  static Tensor arange(int64_t n, DType dtype = DType::F32, Device device = {});
  // Random numbers come from the CPU Rng so that every device and
  // machine sees the same values for the same seed.
  static Tensor randn(const Shape& shape, Rng& gen, DType dtype = DType::F32, Device device = {});
  static Tensor rand(const Shape& shape, Rng& gen, DType dtype = DType::F32, Device device = {});
  static Tensor randint(const Shape& shape, int64_t high, Rng& gen, Device device = {});

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  const Storage& storage() const;
  // The storage's count of in-place changes (core/storage.h). Code that
  // writes a tensor's memory in place by other means (raw_data()) calls
  // bump_version() afterwards, so that a backward that saved the tensor
  // refuses to run on the changed values.
  uint64_t version() const;
  void bump_version() const;
  // Pointer to element 0 of this view (storage base + offset).
  void* raw_data() const;
  template <class T>
  T* data() const {
    check_dtype(dtype_of<T>(), "Tensor::data");
    return static_cast<T*>(raw_data());
  }
  void check_dtype(DType expected, const char* op) const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);
  // The accumulated gradient. For a plain leaf each backward that adds to it
  // makes a new tensor (a handle taken earlier keeps the earlier value);
  // for a parameter in a flat buffer (GradSlot) it is accumulated in place.
  Tensor grad() const;
  // Undefined g: no gradient. For a leaf with a GradSlot (a parameter in a
  // flat buffer) the values are copied into its slot (zeros for undefined g)
  // and grad() stays a view of that buffer.
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const;
  // Backward from this tensor: a scalar needs no gradient; any other tensor
  // needs one of its own shape. The graph is freed unless retain_graph.
  void backward(const Tensor& grad = {}, bool retain_graph = false) const;
  // Same storage, no history, requires_grad = false.
  Tensor detach() const;

  // ---- views (share storage; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // copies only when not viewable
  Tensor view(const Shape& shape) const;     // throws when not viewable
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops dim
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const { return slice(dim, start, start + length); }
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- copies and conversions (differentiable) ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place, no autograd: for optimisers, buffers and initialisation.
  // Throws when the tensor requires grad and grad mode is on.
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype and device
  Tensor& zero_() { return fill_(0.0); }

  // ---- host access ----
  double item() const;                    // one element
  std::vector<double> to_vector() const;  // all elements, row-major
  std::vector<float> to_float_vector() const;
  std::vector<int64_t> to_int_vector() const;
  std::string str(int64_t max_per_dim = 6) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

struct TensorImpl {
  Storage storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // producer of a non-leaf
  // Set for a parameter whose gradient has a fixed home in a flat gradient
  // buffer (core/autograd.h, layers/flat_parameters.h); null otherwise.
  std::shared_ptr<GradSlot> grad_slot;
};

// Builds a view of t's storage with the given geometry; no autograd.
Tensor make_view(const Tensor& t, Shape shape, Shape strides, int64_t offset);

// Tensors with names, in order: a module's parameters, a checkpoint's or a
// safetensors file's contents.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

}  // namespace sagan
