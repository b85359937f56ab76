// The autograd engine: accumulation when a tensor is used more than once,
// explicit output gradients, freed graphs and retain_graph, grad mode,
// detach, in-place guards, gradient ownership, and memory (the graph is
// released after backward and holds no reference cycles).
#include <catch2/catch.hpp>
#include <pthread.h>

#include <cmath>
#include <functional>
#include <thread>

#include "sagan/core/ops.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
Tensor vec(std::vector<double> v, bool requires_grad = true) {
  Shape s{static_cast<int64_t>(v.size())};
  Tensor t = Tensor::from_vector(v, s, DType::F64);
  t.set_requires_grad(requires_grad);
  return t;
}
}  // namespace

TEST_CASE("gradients accumulate when a tensor is used twice", "[autograd]") {
  Tensor x = vec({1, -2, 3});
  sum(mul(x, x)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, -4, 6});

  Tensor y = vec({1, 2, 3});
  sum(add(y, y)).backward();
  CHECK(y.grad().to_vector() == std::vector<double>{2, 2, 2});

  // Diamond: a = exp(x); d = (2a) * (3a) = 6 e^{2x}; dd/dx = 12 e^{2x}.
  Tensor z = vec({0.5, -1, 0});
  Tensor a = exp(z);
  sum(mul(mul(a, 2.0), mul(a, 3.0))).backward();
  std::vector<double> g = z.grad().to_vector();
  CHECK(g[0] == Approx(12 * std::exp(1.0)));
  CHECK(g[1] == Approx(12 * std::exp(-2.0)));
  CHECK(g[2] == Approx(12.0));

  // A non-leaf reused through views and broadcasting.
  Rng gen(31);
  Tensor w = randn64({3, 5}, gen);
  REQUIRE_GRADCHECK(
      [](const auto& in) {
        Tensor h = tanh(in[0]);
        return add(mul(h, h.slice(1, 0, 1)), sum(h, {0}, true)) * h.t().t();
      },
      w);
}

TEST_CASE("gradients accumulate across backward calls until reset", "[autograd]") {
  Tensor x = vec({1, 2});
  sum(mul(x, 3.0)).backward();
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{6, 6});
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("backward from a given output gradient", "[autograd]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64).set_requires_grad();
  Tensor y = mul(x, x);
  Tensor g = Tensor::from_vector(std::vector<double>{1, 0, -1, 0.5, 2, 0}, {2, 3}, DType::F64);
  y.backward(g);
  CHECK(x.grad().to_vector() == std::vector<double>{2, 0, -6, 4, 20, 0});
  // A strided (transposed) gradient is read in logical order.
  Tensor x2 = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64).set_requires_grad();
  mul(x2, 2.0).backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}, DType::F64).t());
  CHECK(x2.grad().to_vector() == std::vector<double>{2, 6, 10, 4, 8, 12});
  // Backward from a leaf.
  Tensor l = vec({1, 2});
  l.backward(vec({5, 6}, false));
  CHECK(l.grad().to_vector() == std::vector<double>{5, 6});
}

TEST_CASE("backward argument errors", "[autograd][errors]") {
  Tensor x = Tensor::ones({2, 3}, DType::F64).set_requires_grad();
  Tensor y = mul(x, 2.0);
  REQUIRE_THROWS_WITH(y.backward(),
                      Catch::Contains("backward") && Catch::Contains("non-scalar") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(y.backward(Tensor::ones({3, 2}, DType::F64)),
                      Catch::Contains("backward") && Catch::Contains("[3, 2]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(y.backward(Tensor::ones({2, 3}, DType::F32)),
                      Catch::Contains("backward") && Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(Tensor::ones({2}).backward(Tensor::ones({2})),
                      Catch::Contains("backward") && Catch::Contains("does not require grad"));
  REQUIRE_THROWS_WITH(Tensor().backward(), Catch::Contains("backward") && Catch::Contains("undefined"));
  // A failed call leaves the graph usable.
  y.backward(Tensor::ones({2, 3}, DType::F64));
  CHECK(x.grad().to_vector() == std::vector<double>(6, 2.0));
}

TEST_CASE("backward twice needs retain_graph", "[autograd]") {
  Tensor x = vec({1, 2, 3});
  Tensor loss = sum(mul(exp(x), x));
  loss.backward();
  REQUIRE_THROWS_WITH(loss.backward(), Catch::Contains("backward") && Catch::Contains("already freed") &&
                                           Catch::Contains("retain_graph"));
  // A second output over the same (freed) subgraph also fails clearly.
  Tensor e = exp(x);
  Tensor l1 = sum(mul(e, 2.0));
  l1.backward();
  REQUIRE_THROWS_WITH(sum(mul(e, 3.0)).backward(), Catch::Contains("already freed") && Catch::Contains("exp"));

  Tensor z = vec({1, 2, 3});
  Tensor l2 = sum(mul(exp(z), z));
  l2.backward({}, true);
  std::vector<double> once = z.grad().to_vector();
  l2.backward({}, true);
  l2.backward();
  std::vector<double> thrice = z.grad().to_vector();
  for (size_t i = 0; i < 3; ++i) {
    // d/dz (z e^z) = (1 + z) e^z
    double want = (1 + (i + 1.0)) * std::exp(i + 1.0);
    CHECK(once[i] == Approx(want));
    CHECK(thrice[i] == Approx(3 * want));
  }
  REQUIRE_THROWS_WITH(l2.backward(), Catch::Contains("already freed"));
}

TEST_CASE("the engine checks the shape of every gradient a node returns", "[autograd][errors]") {
  Tensor x = vec({1, 2, 3});
  Tensor out = Tensor::zeros({3}, DType::F64);
  record("broken_op", out, {x},
         [](const Tensor&, const std::vector<bool>&) { return std::vector<Tensor>{Tensor::zeros({4}, DType::F64)}; });
  REQUIRE(out.requires_grad());
  REQUIRE_THROWS_WITH(sum(out).backward(),
                      Catch::Contains("broken_op") && Catch::Contains("[4]") && Catch::Contains("[3]"));
  Tensor out2 = Tensor::zeros({3}, DType::F64);
  record("short_op", out2, {x}, [](const Tensor&, const std::vector<bool>&) { return std::vector<Tensor>{}; });
  REQUIRE_THROWS_WITH(sum(out2).backward(), Catch::Contains("short_op") && Catch::Contains("0 gradients"));
}

TEST_CASE("NoGradGuard records nothing and nests", "[autograd]") {
  Tensor x = vec({1, 2});
  CHECK(grad_enabled());
  {
    NoGradGuard ng;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(y.grad_fn());
    CHECK_FALSE(x.reshape({2, 1}).requires_grad());
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());
  }
  CHECK(grad_enabled());
  // Restored when an exception leaves the scope.
  try {
    NoGradGuard ng;
    x.reshape({5});
  } catch (const Error&) {
  }
  CHECK(grad_enabled());
  // Grad mode is per thread.
  NoGradGuard ng;
  bool other = false;
  std::thread([&] { other = grad_enabled(); }).join();
  CHECK(other);
  CHECK_FALSE(grad_enabled());
}

TEST_CASE("needs: inputs that do not require grad get no gradient", "[autograd]") {
  Tensor x = vec({1, 2});
  Tensor c = vec({3, 4}, false);
  Tensor y = mul(x, c);
  REQUIRE(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(std::string(y.grad_fn()->name()) == "mul");
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 4});
  CHECK_FALSE(c.grad().defined());
  CHECK_FALSE(mul(c, c).requires_grad());
}

TEST_CASE("detach cuts history but shares storage", "[autograd]") {
  Tensor x = vec({1, 2, 3});
  Tensor h = mul(x, 2.0);
  Tensor d = h.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage() == h.storage());
  sum(mul(h, d)).backward();  // d is a constant: gradient 2 * d = 4x, not 8x
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8, 12});
}

TEST_CASE("requires_grad rules", "[autograd][errors]") {
  REQUIRE_THROWS_WITH(Tensor::zeros({2}, DType::I64).set_requires_grad(),
                      Catch::Contains("requires_grad") && Catch::Contains("int64"));
  Tensor x = vec({1, 2});
  Tensor y = mul(x, 2.0);
  REQUIRE_THROWS_WITH(y.set_requires_grad(false), Catch::Contains("non-leaf") && Catch::Contains("detach"));
  x.set_requires_grad(false);
  CHECK_FALSE(mul(x, 2.0).requires_grad());
  REQUIRE_THROWS_WITH(x.set_grad(Tensor::zeros({3}, DType::F64)),
                      Catch::Contains("set_grad") && Catch::Contains("[3]") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH(x.set_grad(Tensor::zeros({2}, DType::F32)),
                      Catch::Contains("set_grad") && Catch::Contains("float32"));
}

TEST_CASE("in-place changes of tensors that require grad throw in grad mode", "[autograd][errors]") {
  Tensor x = vec({1, 2});
  REQUIRE_THROWS_WITH(x.fill_(0.0), Catch::Contains("fill_") && Catch::Contains("requires grad"));
  REQUIRE_THROWS_WITH(x.copy_(vec({3, 4}, false)), Catch::Contains("copy_") && Catch::Contains("requires grad"));
  REQUIRE_THROWS_WITH(x.zero_(), Catch::Contains("requires grad"));
  Tensor y = mul(x, 2.0);
  REQUIRE_THROWS_WITH(y.fill_(1.0), Catch::Contains("fill_"));
  REQUIRE_THROWS_WITH(x.slice(0, 0, 1).fill_(1.0), Catch::Contains("fill_"));
  CHECK(x.to_vector() == std::vector<double>{1, 2});
  {
    NoGradGuard ng;  // optimisers and initialisers work here
    x.copy_(vec({3, 4}, false));
    x.slice(0, 1, 2).fill_(9.0);
  }
  CHECK(x.to_vector() == std::vector<double>{3, 9});
  CHECK(x.requires_grad());
}

TEST_CASE("leaf gradients are owned, never aliased", "[autograd]") {
  // add passes its incoming gradient to both inputs unchanged: each leaf must
  // still get its own buffer, distinct from the caller's gradient, so that an
  // optimiser scaling or zeroing one gradient in place touches nothing else.
  Tensor a = vec({0, 0, 0}), b = vec({0, 0, 0});
  Tensor g = vec({1, 2, 3}, false);
  add(a, b).backward(g);
  REQUIRE(a.grad().to_vector() == std::vector<double>{1, 2, 3});
  CHECK(a.grad().storage() != b.grad().storage());
  CHECK(a.grad().storage() != g.storage());
  a.grad().fill_(0.0);
  g.fill_(-1.0);
  CHECK(b.grad().to_vector() == std::vector<double>{1, 2, 3});

  Tensor l = vec({0, 0});
  Tensor gl = vec({5, 6}, false);
  l.backward(gl);
  CHECK(l.grad().storage() != gl.storage());

  // Gradients that arrive as broadcast views are materialised contiguous.
  Tensor s = vec({1});
  sum(s.expand({4})).backward();
  CHECK(s.grad().is_contiguous());
  CHECK(s.grad().to_vector() == std::vector<double>{4});
  Tensor c = vec({1, 2});
  sum(mul(c, c), {0}).backward();
  CHECK(c.grad().is_contiguous());
}

TEST_CASE("the graph is freed after backward", "[autograd][memory]") {
  Tensor x = vec({0.1, 0.2, 0.3});
  std::weak_ptr<StorageImpl> saved_storage;
  std::weak_ptr<Node> node;
  Tensor loss;
  {
    Tensor h = exp(x);  // both exp and mul save h's storage in their closures
    saved_storage = h.storage();
    loss = sum(mul(h, h));
  }
  node = loss.grad_fn();
  REQUIRE_FALSE(saved_storage.expired());  // the graph keeps h alive until backward
  loss.backward();
  CHECK(saved_storage.expired());  // the closures were released
  CHECK_FALSE(node.expired());     // nodes stay (loss.grad_fn) but own no tensors
  CHECK(node.lock()->released());

  // With retain_graph the saved tensors survive until the output goes away.
  Tensor x2 = vec({0.1, 0.2});
  std::weak_ptr<StorageImpl> kept;
  Tensor loss2;
  {
    Tensor h = exp(x2);
    kept = h.storage();
    loss2 = sum(mul(h, h));
  }
  loss2.backward({}, true);
  CHECK_FALSE(kept.expired());
  loss2 = Tensor();
  CHECK(kept.expired());
}

TEST_CASE("no reference cycles between outputs and their nodes", "[autograd][memory]") {
  Tensor x = vec({1, 2, 3});
  std::weak_ptr<TensorImpl> out_impl;
  std::weak_ptr<StorageImpl> out_storage;
  std::weak_ptr<Node> out_node, inner_node;
  {
    Tensor y = sigmoid(tanh(x));  // both save their outputs
    out_impl = y.impl_ptr();
    out_storage = y.storage();
    out_node = y.grad_fn();
    inner_node = y.grad_fn()->next()[0].fn;
    std::shared_ptr<Node> keep = y.grad_fn();
    y = Tensor();
    CHECK(out_impl.expired());  // the node does not keep its output tensor alive
    CHECK_FALSE(out_node.expired());
    CHECK_FALSE(inner_node.expired());
  }
  // Nothing holds the graph any more: every node and saved tensor is gone,
  // without any backward having run.
  CHECK(out_node.expired());
  CHECK(inner_node.expired());
  CHECK(out_storage.expired());
  // The leaf is not kept alive by a dropped graph either.
  std::weak_ptr<TensorImpl> leaf = x.impl_ptr();
  { Tensor z = mul(x, x); }
  x = Tensor();
  CHECK(leaf.expired());
}

TEST_CASE("long chains run without recursion", "[autograd]") {
  Tensor x = vec({1, 2});
  Tensor y = x;
  for (int i = 0; i < 5000; ++i) y = add(y, 0.5);
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 1});
}

namespace {
// Runs f on a thread with a 1 MiB stack: recursion that an 8 MiB main stack
// would take 200,000 nodes to overflow shows at 60,000, in a fraction of the
// time (the sanitizer run included).
void on_small_stack(const std::function<void()>& f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{1} << 20);
  pthread_t t;
  auto body = [](void* p) -> void* {
    (*static_cast<const std::function<void()>*>(p))();
    return nullptr;
  };
  REQUIRE(pthread_create(&t, &attr, body, const_cast<std::function<void()>*>(&f)) == 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
}
}  // namespace

TEST_CASE("a graph of 60,000 ops is freed without recursion, after backward or without it", "[autograd]") {
  // Each node owns its inputs' nodes: freed recursively they overflow the
  // stack (on an 8 MiB one at about 200,000).
  Tensor x = vec({1, 2});
  on_small_stack([&] {
    for (bool run_backward : {true, false}) {
      Tensor y = x;
      for (int i = 0; i < 60000; ++i) y = add(y, 0.5);
      if (run_backward) sum(y).backward();
      y = Tensor();  // frees the whole chain here
    }
    // Two edges into the same node at every link.
    Tensor y = mul(x, 1.0);
    for (int i = 0; i < 60000; ++i) y = add(y, y);
  });
  CHECK(x.grad().to_vector() == std::vector<double>{1, 1});
  // A node still shared elsewhere survives its consumer's death.
  Tensor a = mul(x, 2.0);
  { Tensor b = add(a, 1.0); }
  sum(a).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
}

TEST_CASE("backward refuses a saved tensor changed in place after the forward, naming the op", "[autograd]") {
  SECTION("an input that needs no gradient, filled") {
    Tensor w = vec({1, 2}), a = vec({1, 1}, false);
    Tensor y = mul(w, a);
    a.fill_(5);
    REQUIRE_THROWS_AS(sum(y).backward(), SavedTensorChanged);
  }
  SECTION("a leaf changed under NoGradGuard (an optimiser step between forward and backward)") {
    Tensor w = vec({2, 3});
    Tensor y = mul(w, w);
    {
      NoGradGuard ng;
      w.fill_(10);
    }
    REQUIRE_THROWS_WITH(sum(y).backward(),
                        Catch::StartsWith("backward of mul: a float64 tensor of shape [2] that the forward saved "
                                          "was changed in place afterwards"));
  }
  SECTION("the engine's own in-place updates count too: adam_update") {
    Tensor w = vec({2, 3}), a = vec({1, 1});
    Tensor y = mul(w, a);
    std::vector<Tensor> ps{w}, gs{Tensor::ones({2}, DType::F64)}, ms{Tensor::zeros({2}, DType::F64)},
        vs{Tensor::zeros({2}, DType::F64)};
    AdamHyper h;
    h.lr = 0.1;
    adam_update(ps, gs, ms, vs, h);
    REQUIRE_THROWS_AS(sum(y).backward(), SavedTensorChanged);
  }
  SECTION("a view made under NoGradGuard writes its base: the base's saved values are protected too") {
    Tensor x = vec({1, 2, 3});
    Tensor y = mul(x, x);
    Tensor view;
    {
      NoGradGuard ng;
      view = x.slice(0, 0, 2);
    }
    view.fill_(0);
    REQUIRE_THROWS_AS(sum(y).backward(), SavedTensorChanged);
  }
  SECTION("what an op did not save may change: add keeps no input") {
    Tensor w = vec({1, 2}), a = vec({1, 1}, false);
    Tensor y = add(w, a);
    a.fill_(5);
    sum(y).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{1, 1});
  }
  SECTION("unary ops keep only what their derivative reads") {
    // add/mul by a scalar read nothing, tanh its output, relu its input:
    // a change to what is not read is fine, to what is read is refused.
    Tensor w = vec({1, 2});
    Tensor y = add(w, 1.0), t = tanh(w), r = relu(w);
    {
      NoGradGuard ng;
      w.fill_(5);
    }
    sum(y).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{1, 1});
    sum(t).backward();  // reads tanh's output, unchanged
    REQUIRE_THROWS_AS(sum(r).backward(), SavedTensorChanged);
  }
  SECTION("a change before the forward, or after backward, is fine") {
    Tensor w = vec({2, 3}), a = vec({1, 1}, false);
    a.fill_(4);
    Tensor y = mul(w, a);
    sum(y).backward();
    a.fill_(0);
    CHECK(w.grad().to_vector() == std::vector<double>{4, 4});
  }
}

TEST_CASE("writes into an expanded view are refused: its elements share memory", "[autograd][tensor]") {
  Tensor base = Tensor::zeros({1, 3}, DType::F64);
  Tensor wide = base.expand({4, 3});
  REQUIRE_THROWS_WITH(wide.copy_(Tensor::arange(12, DType::F64).reshape({4, 3})),
                      Catch::Contains("copy_: the destination of shape [4, 3] is an expanded view (stride 0 on dim 0)"));
  REQUIRE_THROWS_WITH(wide.fill_(1), Catch::Contains("fill_: the destination of shape [4, 3] is an expanded view"));
  base.expand({1, 3}).fill_(2);  // size-1 dims may have any stride
  CHECK(base.to_vector() == std::vector<double>{2, 2, 2});
}
