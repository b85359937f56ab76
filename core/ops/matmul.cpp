// Matrix products: matmul (2-d and 3-d with batch broadcasting), bmm and
// linear. Everything lowers to Backend::bmm on 3-d views; transposes in the
// backward rules are views the kernel reads in place (column-major).
#include <algorithm>

#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

namespace {

// The kernel reads a matrix in place when one of its last two dims has unit
// stride (or size 1); anything else is copied once.
Tensor gemm_operand(const Tensor& t) {
  const int64_t r = t.size(t.dim() - 2), c = t.size(t.dim() - 1);
  const int64_t rs = t.strides()[static_cast<size_t>(t.dim() - 2)], cs = t.strides().back();
  bool row = (cs == 1 || c == 1) && (r == 1 || rs >= c);
  bool col = (rs == 1 || r == 1) && (c == 1 || cs >= r);
  return row || col ? t : t.contiguous();
}

// out (B,M,N) = a (Ba,M,K) @ b (Bb,K,N) with Ba, Bb in {1, B}; no autograd.
Tensor bmm_raw(const Tensor& a, const Tensor& b) {
  const int64_t batch = std::max(a.size(0), b.size(0));
  Tensor out = Tensor::empty({batch, a.size(1), b.size(2)}, a.dtype(), a.device());
  backend_of(a).bmm(gemm_operand(a), gemm_operand(b), out, 0.0);
  return out;
}

// The differentiable 3-d product; a and b are checked 3-d tensors whose
// batch sizes are equal or 1.
Tensor bmm3(const char* op, const Tensor& a, const Tensor& b) {
  Tensor out = bmm_raw(a.detach(), b.detach());
  record(op, out, {a, b}, [a = saved(a), b = saved(b)](const Tensor& g, const std::vector<bool>& needs) {
    Tensor ga, gb;
    // A broadcast operand (batch 1) gets the sum over the batch.
    if (needs[0]) ga = sum_to_shape(bmm_raw(g, b.get().transpose(1, 2)), a.shape());  // (B,M,N)@(B,N,K)
    if (needs[1]) gb = sum_to_shape(bmm_raw(a.get().transpose(1, 2), g), b.shape());  // (B,K,M)@(B,M,N)
    return std::vector<Tensor>{ga, gb};
  });
  return out;
}

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_same(op, a, b);
  detail::check_float(op, a);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_pair("matmul", a, b);
  const int64_t da = a.dim(), db = b.dim();
  SAGAN_CHECK((da == 2 || da == 3) && (db == 2 || db == 3), "matmul: expected 2-d or 3-d operands, got {} @ {}",
              shape_str(a.shape()), shape_str(b.shape()));
  SAGAN_CHECK(a.size(da - 1) == b.size(db - 2), "matmul: inner dims differ in {} @ {}", shape_str(a.shape()),
              shape_str(b.shape()));
  if (da == 3 && db == 3)
    SAGAN_CHECK(a.size(0) == b.size(0) || a.size(0) == 1 || b.size(0) == 1,
                "matmul: batch sizes cannot be broadcast in {} @ {}", shape_str(a.shape()), shape_str(b.shape()));
  if (da == 2 && db == 2) return bmm3("matmul", a.unsqueeze(0), b.unsqueeze(0)).squeeze(0);
  if (da == 3 && db == 2) {
    // Rows of every batch stacked: one tall GEMM instead of B short ones.
    const Shape& st = a.strides();
    if (st[2] == 1 && st[0] == a.size(1) * st[1]) {
      Tensor flat = a.reshape({a.size(0) * a.size(1), a.size(2)});
      return bmm3("matmul", flat.unsqueeze(0), b.unsqueeze(0)).reshape({a.size(0), a.size(1), b.size(1)});
    }
    return bmm3("matmul", a, b.unsqueeze(0));
  }
  if (da == 2) return bmm3("matmul", a.unsqueeze(0), b);
  return bmm3("matmul", a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_pair("bmm", a, b);
  SAGAN_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-d operands, got {} @ {}", shape_str(a.shape()),
              shape_str(b.shape()));
  SAGAN_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), "bmm: shapes {} @ {} do not match",
              shape_str(a.shape()), shape_str(b.shape()));
  return bmm3("bmm", a, b);
}

Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
  check_pair("linear", x, w);
  SAGAN_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(x.dim() - 1) == w.size(1),
              "linear: input {} does not match weight {} (out, in)", shape_str(x.shape()), shape_str(w.shape()));
  const int64_t in = w.size(1), out_f = w.size(0);
  if (b) {
    check_pair("linear", x, *b);
    SAGAN_CHECK(b->dim() == 1 && b->size(0) == out_f, "linear: bias {} does not match weight {}", shape_str(b->shape()),
                shape_str(w.shape()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  const int64_t rows = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor x2 = x.detach().reshape({rows, in});
  Tensor y2 = Tensor::empty({rows, out_f}, x.dtype(), x.device());
  double beta = 0.0;
  if (b) {  // y = b, then y += x w^T in the GEMM itself
    backend_of(x).copy(b->detach().unsqueeze(0).expand({rows, out_f}), y2);
    beta = 1.0;
  }
  Tensor y3 = y2.unsqueeze(0);
  backend_of(x).bmm(gemm_operand(x2.unsqueeze(0)), gemm_operand(w.detach().t().unsqueeze(0)), y3, beta);
  Tensor out = y2.reshape(out_shape);
  std::vector<Tensor> inputs{x, w};
  if (b) inputs.push_back(*b);
  record("linear", out, inputs,
         [x2 = saved(x2), w = saved(w), x_shape = x.shape()](const Tensor& g, const std::vector<bool>& needs) {
           Tensor g2 = g.reshape({x2.size(0), w.size(0)}).unsqueeze(0);
           std::vector<Tensor> grads(needs.size());
           if (needs[0]) grads[0] = bmm_raw(g2, w.get().unsqueeze(0)).reshape(x_shape);             // (n,o)@(o,i)
           if (needs[1]) grads[1] = bmm_raw(g2.transpose(1, 2), x2.get().unsqueeze(0)).squeeze(0);  // (o,n)@(n,i)
           if (needs.size() > 2 && needs[2]) grads[2] = sum(g2.squeeze(0), {0});
           return grads;
         });
  return out;
}

}  // namespace sagan
