// Attention as one op with its own backward, so a backend can fuse it (the
// CUDA flash kernel) instead of materialising the N x S map through matmul
// and softmax. The backward needs only q, k, v, out and the per-row
// log-sum-exp: P is recomputed, never stored.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

AttentionResult attention(const Tensor& q, const Tensor& k, const Tensor& v, bool return_map) {
  const char* op = "attention";
  detail::check_defined(op, q, "q");
  detail::check_defined(op, k, "k");
  detail::check_defined(op, v, "v");
  detail::check_float(op, q);
  detail::check_same(op, q, k);
  detail::check_same(op, q, v);
  detail::check_dim(op, q, 3, "q (B,N,d)");
  detail::check_dim(op, k, 3, "k (B,S,d)");
  detail::check_dim(op, v, 3, "v (B,S,dv)");
  SAGAN_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0), "attention: batch sizes differ, q {} k {} v {}",
              shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  SAGAN_CHECK(q.size(2) == k.size(2), "attention: q {} and k {} differ in the feature dim d", shape_str(q.shape()),
              shape_str(k.shape()));
  SAGAN_CHECK(k.size(1) == v.size(1), "attention: k {} and v {} differ in the number of keys S", shape_str(k.shape()),
              shape_str(v.shape()));
  SAGAN_CHECK(k.size(1) > 0, "attention: no keys (S = 0), k {}", shape_str(k.shape()));

  // Kernels take contiguous inputs; detach so the copies record nothing.
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  const int64_t B = q.size(0), N = q.size(1), dv = v.size(2), S = k.size(1);
  Tensor out = Tensor::empty({B, N, dv}, q.dtype(), q.device());
  Tensor lse = Tensor::empty({B, N}, q.dtype(), q.device());
  Tensor map;
  if (return_map) map = Tensor::empty({B, N, S}, q.dtype(), q.device());
  backend_of(q).attention_forward(qc, kc, vc, out, lse, return_map ? &map : nullptr);

  record(op, out, {q, k, v}, [qc = saved(qc), kc = saved(kc), vc = saved(vc), o = saved(out), lse](const Tensor& g, const std::vector<bool>&) {
    Tensor gq = Tensor::empty(qc.shape(), qc.dtype(), qc.device());
    Tensor gk = Tensor::empty(kc.shape(), kc.dtype(), kc.device());
    Tensor gv = Tensor::empty(vc.shape(), vc.dtype(), vc.device());
    backend_of(qc).attention_backward(qc, kc, vc, o, lse, g, gq, gk, gv);
    return std::vector<Tensor>{gq, gk, gv};
  });
  return {out, map};
}

}  // namespace sagan
