// Reverse-mode autograd: a define-by-run tape of Nodes. Every differentiable
// op records one Node holding its backward rule as a closure over the tensors
// it saved; Tensor::backward walks the graph in reverse topological order.
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan {

// Grad mode is per thread; NoGradGuard turns recording off in a scope.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Where the gradient of one input goes: the input's producer node, or the
// leaf tensor itself. Shape/dtype let the engine check backward rules.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;
  DType dtype = DType::F32;
  bool active() const { return fn || leaf; }
};

// Thrown when a backward rule reads a tensor its forward saved and that has
// been changed in place since (core/ops/common.h, SavedTensor); Node::apply
// adds the op's name.
class SavedTensorChanged : public Error {
 public:
  using Error::Error;
};

class Node {
 public:
  // Returns one gradient per input (undefined where needs[i] is false or the
  // input gets no gradient).
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<bool>& needs)>;

  Node(const char* name, BackwardFn fn, std::vector<Edge> next)
      : name_(name), fn_(std::move(fn)), next_(std::move(next)) {}
  // Unlinks the nodes only this one owns without recursion: each node's
  // edges own its inputs' nodes, so a graph of 100,000s of ops freed the
  // plain way would overflow the stack.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  const char* name() const { return name_; }
  const std::vector<Edge>& next() const { return next_; }
  bool released() const { return !fn_; }
  std::vector<Tensor> apply(const Tensor& grad);
  void release() { fn_ = nullptr; }

 private:
  const char* name_;
  BackwardFn fn_;
  std::vector<Edge> next_;
};

// A fixed home for a leaf's gradient, for parameters that live in one flat
// buffer (layers/flat_parameters.h) so that their gradients do too (llm.c).
// Backward copies the leaf's first gradient into `grad` and adds later ones
// in place; the leaf's grad() is then `grad` itself. Once a backward pass has
// delivered everything it will deliver to the leaf (every edge into it is
// processed: the gradient is final for this pass), it calls on_ready, when
// set: the point where a data-parallel run can start reducing that range
// while backward goes on with the rest of the graph.
struct GradSlot {
  Tensor grad;                     // the leaf's shape, dtype and device; contiguous
  std::function<void()> on_ready;  // may be empty
};

// True when grad mode is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Makes `out` the output of a new Node over `inputs` when any_requires_grad.
// Call after computing out; `fn` captures whatever the backward rule needs.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, Node::BackwardFn fn);

// Runs the engine from `root` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace sagan
