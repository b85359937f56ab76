// Indexing and joining: index_select along any dim (the kernel sees x as
// (O, R, I) with R the indexed dim), embedding as a row gather, and concat.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"
#include "sagan/core/sync_free.h"

namespace sagan {

using detail::backend_of;

namespace {
// x viewed as (outer, dim, inner) around `dim`.
Shape outer_dim_inner(const Shape& s, int64_t dim) {
  int64_t o = 1, i = 1;
  for (int64_t d = 0; d < dim; ++d) o *= s[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(dim) + 1; d < s.size(); ++d) i *= s[d];
  return {o, s[static_cast<size_t>(dim)], i};
}

// idx must be int64 1-d on x's device with every entry in [0, size).
// `x_is` names x in messages: "input" (index_select) or "weight" (embedding,
// whose input is the indices).
void check_indices(const char* op, const Tensor& x, const char* x_is, int64_t dim, const Tensor& idx) {
  detail::check_defined(op, idx, "index");
  SAGAN_CHECK(idx.dtype() == DType::I64, "{}: indices must be int64, got {} of shape {}", op, dtype_name(idx.dtype()),
              shape_str(idx.shape()));
  SAGAN_CHECK(idx.dim() == 1, "{}: indices must be 1-d, got shape {}", op, shape_str(idx.shape()));
  SAGAN_CHECK(idx.device() == x.device(), "{}: indices on {} but {} {} on {}", op, device_name(idx.device()), x_is,
              shape_str(x.shape()), device_name(x.device()));
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  // Indices on a device are read back only outside a sync-free region
  // (core/sync_free.h); inside one the kernels stop on an out-of-range row.
  // Host indices cost no wait and are always checked.
  if (!idx.device().is_cpu() && sync_free_active()) return;
  if (!idx.device().is_cpu()) note_host_read(op);
  const Tensor host = idx.detach().to(Device::cpu()).contiguous();
  const int64_t* p = static_cast<const int64_t*>(host.raw_data());
  for (int64_t k = 0; k < host.numel(); ++k)
    SAGAN_CHECK(p[k] >= 0 && p[k] < size, "{}: index {} is out of range for dim {} of size {} ({} shape {})", op,
                p[k], dim, size, x_is, shape_str(x.shape()));
}

// Checked index_select; `op` names the public op in messages, `x_is` x.
Tensor select_rows(const char* op, const char* x_is, const Tensor& x, int64_t dim, const Tensor& idx_in) {
  detail::check_defined(op, x);
  dim = wrap_dim(dim, x.shape(), op);
  check_indices(op, x, x_is, dim, idx_in);
  const Tensor idx = idx_in.detach().contiguous();
  const Shape in_shape = x.shape();
  const Shape ori = outer_dim_inner(in_shape, dim);
  const int64_t n = idx.shape()[0];
  Shape out_shape = in_shape;
  out_shape[static_cast<size_t>(dim)] = n;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor out3 = out.view({ori[0], n, ori[2]});
  backend_of(x).index_select(x.detach().contiguous().view(ori), idx, out3);
  record(op, out, {x}, [in_shape, ori, n, idx = detail::saved(idx)](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype(), g.device());
    Tensor gx3 = gx.view(ori);
    backend_of(g).index_add(g.detach().contiguous().view({ori[0], n, ori[2]}), idx, gx3);
    return std::vector<Tensor>{gx};
  });
  return out;
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx) {
  return select_rows("index_select", "input", x, dim, idx);
}

Tensor embedding(const Tensor& weight, const Tensor& idx) {
  detail::check_float("embedding", weight);
  SAGAN_CHECK(weight.dim() == 2, "embedding: weight must be 2-d (V, D), got shape {}", shape_str(weight.shape()));
  detail::check_defined("embedding", idx, "index");
  Tensor flat = idx.detach().contiguous().reshape({idx.numel()});
  Shape out_shape = idx.shape();
  out_shape.push_back(weight.shape()[1]);
  return select_rows("embedding", "weight", weight, 0, flat).reshape(out_shape);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  SAGAN_CHECK(!xs.empty(), "concat: expected at least one tensor, got an empty list");
  for (size_t k = 0; k < xs.size(); ++k)
    SAGAN_CHECK(xs[k].defined(), "concat: tensor {} of {} is undefined", k, xs.size());
  const Tensor& ref = xs[0];
  dim = wrap_dim(dim, ref.shape(), "concat");
  const size_t ud = static_cast<size_t>(dim);
  Shape out_shape = ref.shape();
  out_shape[ud] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Tensor& x = xs[k];
    detail::check_same("concat", ref, x);
    bool fits = x.dim() == ref.dim();
    for (size_t d = 0; fits && d < out_shape.size(); ++d) fits = d == ud || x.shape()[d] == ref.shape()[d];
    SAGAN_CHECK(fits, "concat: tensor {} has shape {}, which does not match tensor 0 of shape {} outside dim {}", k,
                shape_str(x.shape()), shape_str(ref.shape()), dim);
    out_shape[ud] += x.shape()[ud];
  }
  Tensor out = Tensor::empty(out_shape, ref.dtype(), ref.device());
  std::vector<int64_t> starts;
  {
    NoGradGuard ng;
    int64_t at = 0;
    for (const Tensor& x : xs) {
      const int64_t len = x.shape()[ud];
      starts.push_back(at);
      out.slice(dim, at, at + len).copy_(x);
      at += len;
    }
  }
  std::vector<int64_t> lens;
  for (const Tensor& x : xs) lens.push_back(x.shape()[ud]);
  record("concat", out, xs, [dim, starts, lens](const Tensor& g, const std::vector<bool>& needs) {
    std::vector<Tensor> gs(needs.size());
    for (size_t k = 0; k < needs.size(); ++k)
      if (needs[k]) gs[k] = g.detach().slice(dim, starts[k], starts[k] + lens[k]).contiguous();
    return gs;
  });
  return out;
}

}  // namespace sagan
