// llm.c's flat parameter buffer: every parameter of a model is a view into
// one allocation, data(), and its gradient a view into another, grad(), at
// the same offset. Optimisers and reductions then treat a whole model as one
// tensor: Adam, the EMA and the global gradient norm are one backend call
// each with one host sync at most, and a data-parallel run (issue 13) can
// all-reduce grad() in a few large contiguous buckets.
//
//   data():  [ p0 .... | pad | p1 ...... | pad | p2 .. | pad ]   (size())
//   grad():  [ g0 .... | 0   | g1 ...... | 0   | g2 .. | 0   ]
//
// Each parameter starts at a multiple of kAlign elements (256-byte aligned
// pointers for vectorised kernels, cuBLAS and cuDNN); the gaps are zero in
// every buffer and stay zero under Adam (zero gradient, zero moments) and the
// EMA. Parameters are ordinary tensors: leaves that require grad, shaped as
// registered, contiguous, sharing data()'s storage. Backward puts their
// gradients straight into grad() (core/autograd.h GradSlot): the first
// gradient of a pass is copied in, later ones added, so p.grad() is a view of
// grad() (clone it to keep it past zero_grad()).
//
// Readiness (for overlapping communication with backward): set_grad_ready_hook
// registers a callback that backward calls with a parameter's range as soon as
// that parameter's gradient for the pass is final. Parameters are laid out in
// registration order and backward visits a model roughly from its output
// back, so the ranges at the end of grad() tend to be ready first: buckets
// of consecutive ranges, reduced from the end, fill early.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sagan/layers/module.h"

namespace sagan::nn {

// One parameter's place in the flat buffers.
struct ParamRange {
  size_t index = 0;    // position in registration order
  std::string name;    // dotted name
  Shape shape;         // as registered
  int64_t offset = 0;  // first element in data() and grad()
  int64_t numel = 0;   // elements from offset on
};

class FlatParameters {
 public:
  static constexpr int64_t kAlign = 64;  // elements

  // Copies the parameters' values into new buffers (all must share one
  // floating dtype and one device) and makes a fresh leaf view for each; the
  // tensors in `params` are left as they were. without_grad: no gradient
  // buffer (a model that is never trained, such as an EMA copy); the views
  // still require grad but keep ordinary, separately allocated gradients.
  explicit FlatParameters(const NamedTensors& params, bool with_grad = true);
  FlatParameters(FlatParameters&&) = default;
  FlatParameters& operator=(FlatParameters&&) = default;
  // A copy would share the leaves: use to() for a new buffer.
  FlatParameters(const FlatParameters&) = delete;
  FlatParameters& operator=(const FlatParameters&) = delete;

  const Tensor& data() const { return data_; }  // (size()) all values
  // (size()) all gradients, zeros where a parameter has none; undefined
  // without a gradient buffer.
  const Tensor& grad() const { return grad_; }
  bool has_grad_buffer() const { return grad_.defined(); }
  int64_t size() const { return data_.numel(); }
  DType dtype() const { return data_.dtype(); }
  Device device() const { return data_.device(); }

  const std::vector<ParamRange>& ranges() const { return ranges_; }
  // The parameters (views of data()), in the order of ranges().
  const std::vector<Tensor>& params() const { return params_; }
  NamedTensors named_params() const;
  // Views of another flat buffer of this layout (Adam's moments, say), one
  // per parameter, shaped like it.
  std::vector<Tensor> views_of(const Tensor& flat) const;

  // One fill of grad() and no parameter has a gradient any more.
  void zero_grad();
  // Every parameter received a gradient since the last zero_grad().
  bool all_have_grad() const;
  // sqrt(sum of squares of grad()): one reduction, a 0-d tensor on the
  // buffer's device (read it with item(), which waits for the device).
  Tensor grad_norm() const;
  // grad() *= factor, in place (gradient clipping); the tensor form takes a
  // one-element factor on the buffer's device, computed there.
  void scale_grad(double factor);
  void scale_grad(const Tensor& factor);

  // Same names, shapes and offsets, so one call can combine the two buffers
  // element by element (the EMA of a generator).
  bool same_layout(const FlatParameters& other) const;

  // A copy of this layout and these values on another device or in another
  // dtype, with fresh leaves (gradients are not carried; the ready hook is).
  FlatParameters to(Device device) const;
  FlatParameters to(DType dtype) const;

  // Called during backward with each parameter's range once its gradient of
  // that pass is complete (see the file comment); an empty function removes
  // it. Needs a gradient buffer. The hook runs on the backward thread, in the
  // middle of the pass: it may read the range of grad() it is given (and
  // start sending it) but must not run autograd.
  using ReadyHook = std::function<void(const ParamRange&)>;
  void set_grad_ready_hook(ReadyHook hook);

 private:
  FlatParameters(const FlatParameters& src, const Tensor& new_data);
  void make_views();
  void attach_hook();

  std::vector<ParamRange> ranges_;
  Tensor data_, grad_;
  std::vector<Tensor> params_;
  std::shared_ptr<const ReadyHook> hook_;  // shared by every parameter's GradSlot
};

}  // namespace sagan::nn
