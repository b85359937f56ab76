#include "sagan/core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "sagan/core/ops.h"

namespace sagan {

Node::~Node() {
  // Every edge's node is taken over (two edges may hold the same node:
  // add(y, y)); a node is unlinked only by whoever drops its last owner, so
  // each dies with no edges left and no recursion.
  std::vector<std::shared_ptr<Node>> dying;
  auto adopt = [&](std::vector<Edge>& edges) {
    for (Edge& e : edges)
      if (e.fn) dying.push_back(std::move(e.fn));
  };
  adopt(next_);
  while (!dying.empty()) {
    std::shared_ptr<Node> n = std::move(dying.back());
    dying.pop_back();
    if (n.use_count() == 1) adopt(n->next_);
  }
}

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::vector<Tensor> Node::apply(const Tensor& grad) {
  SAGAN_CHECK(fn_ != nullptr,
              "backward: the graph through '{}' was already freed by an earlier backward; "
              "pass retain_graph=true to the first backward to call it twice",
              name_);
  std::vector<bool> needs(next_.size());
  for (size_t i = 0; i < next_.size(); ++i) needs[i] = next_[i].active();
  try {
    return fn_(grad, needs);
  } catch (const SavedTensorChanged& e) {
    throw SavedTensorChanged(fmt::format("backward of {}: {}", name_, e.what()));
  }
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, Node::BackwardFn fn) {
  if (!any_requires_grad(inputs)) return;
  std::vector<Edge> edges(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    Edge& e = edges[i];
    if (t.grad_fn())
      e.fn = t.grad_fn();
    else
      e.leaf = t.impl_ptr();
    e.shape = t.shape();
    e.dtype = t.dtype();
  }
  auto impl = out.impl();
  impl->grad_fn = std::make_shared<Node>(name, std::move(fn), std::move(edges));
  impl->requires_grad = true;
}

namespace {
// True when g is the only handle on a dense buffer of its own, so a leaf can
// adopt it without a copy. Backward rules pass gradients through unchanged
// (add gives both inputs the very tensor it received; a root gradient is
// the caller's), so anything else is copied: otherwise zeroing or scaling
// one leaf's gradient in place would change another's, or the caller's.
bool exclusively_owned(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() && g.offset() == 0 &&
         static_cast<size_t>(g.numel()) * dtype_size(g.dtype()) == g.storage()->nbytes;
}

// Takes g by value so that a moved-in gradient can be adopted. A leaf with a
// GradSlot keeps its gradient in the slot: the first one is copied in, later
// ones are added (the same values as adopting and adding).
void accumulate_leaf(TensorImpl& leaf, Tensor g) {
  if (leaf.grad_slot) {
    Tensor home = leaf.grad_slot->grad;
    if (leaf.grad)
      home.copy_(add(home, g));
    else
      home.copy_(g);
    leaf.grad = home.impl_ptr();
    return;
  }
  if (!leaf.grad) {
    leaf.grad = exclusively_owned(g) ? g.impl_ptr() : g.clone().impl_ptr();
    return;
  }
  leaf.grad = add(Tensor(leaf.grad), g).impl_ptr();
}
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  SAGAN_CHECK(root.defined(), "backward: undefined tensor");
  SAGAN_CHECK(root.requires_grad(), "backward: tensor of shape {} does not require grad", shape_str(root.shape()));
  Tensor grad = grad_in;
  if (!grad.defined()) {
    SAGAN_CHECK(root.numel() == 1, "backward: a gradient is needed for a non-scalar output of shape {}",
                shape_str(root.shape()));
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  SAGAN_CHECK(grad.shape() == root.shape(), "backward: gradient shape {} does not match output shape {}",
              shape_str(grad.shape()), shape_str(root.shape()));
  SAGAN_CHECK(grad.dtype() == root.dtype() && grad.device() == root.device(),
              "backward: gradient is {} on {}, output is {} on {}", dtype_name(grad.dtype()),
              device_name(grad.device()), dtype_name(root.dtype()), device_name(root.device()));

  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(*root.impl(), std::move(grad));
    if (root.impl()->grad_slot && root.impl()->grad_slot->on_ready) root.impl()->grad_slot->on_ready();
    return;
  }

  // Count, for every node reachable from the root, how many edges lead to it,
  // and for every leaf that wants to hear when its gradient is final
  // (GradSlot::on_ready), how many edges lead to that leaf.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<TensorImpl*, int> leaf_deps;
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_set<Node*> seen{stack[0]};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next()) {
      if (e.leaf && e.leaf->grad_slot && e.leaf->grad_slot->on_ready) leaf_deps[e.leaf.get()]++;
      if (!e.fn) continue;
      deps[e.fn.get()]++;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = grad;
  std::vector<Node*> ready{root.grad_fn().get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    auto it = pending.find(n);
    Tensor g;
    if (it != pending.end()) {
      g = std::move(it->second);
      pending.erase(it);
    }
    // A node that no gradient reached still releases its children's counts.
    std::vector<Tensor> grads = g.defined() ? n->apply(g) : std::vector<Tensor>(n->next().size());
    g = Tensor();  // so that a leaf can adopt a gradient passed through unchanged
    SAGAN_CHECK(grads.size() == n->next().size(), "backward of '{}' returned {} gradients for {} inputs", n->name(),
                grads.size(), n->next().size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = n->next()[i];
      if (!e.active()) continue;
      Tensor& gi = grads[i];
      if (gi.defined()) {
        SAGAN_CHECK(gi.shape() == e.shape && gi.dtype() == e.dtype,
                    "backward of '{}': gradient {} has shape {} ({}), input has shape {} ({})", n->name(), i,
                    shape_str(gi.shape()), dtype_name(gi.dtype()), shape_str(e.shape), dtype_name(e.dtype));
        if (e.leaf) {
          accumulate_leaf(*e.leaf, std::move(gi));
        } else {
          Tensor& slot = pending[e.fn.get()];
          slot = slot.defined() ? add(slot, gi) : gi;
        }
      }
      if (e.leaf && !leaf_deps.empty()) {
        auto it = leaf_deps.find(e.leaf.get());
        if (it != leaf_deps.end() && --it->second == 0) e.leaf->grad_slot->on_ready();
      }
      if (e.fn && --deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
    if (!retain_graph) n->release();
  }
}

}  // namespace sagan
