#include "sagan/layers/sync_batch_norm.h"

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan::nn {

Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<dist::Communicator>& comm) {
  SAGAN_CHECK(comm != nullptr, "all_reduce_sum: no communicator");
  Tensor out;
  {
    NoGradGuard ng;
    out = x.detach().contiguous().clone();
  }
  comm->all_reduce_sum(out);
  record("all_reduce_sum", out, {x}, [comm](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = g.detach().contiguous().clone();
    comm->all_reduce_sum(gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor sync_batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, double momentum, double eps,
                       const std::shared_ptr<dist::Communicator>& comm) {
  SAGAN_CHECK(x.defined() && x.dim() >= 2, "sync_batch_norm: expected an input of shape (N, C, ...), got {}",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  const int64_t c = x.size(1);
  std::vector<int64_t> dims{0};
  Shape bshape{1, c};
  int64_t local = x.size(0);
  for (int64_t d = 2; d < x.dim(); ++d) {
    dims.push_back(d);
    bshape.push_back(1);
    local *= x.size(d);
  }
  // Values per channel over the whole job (ranks may hold different batches).
  int64_t m = 0;
  for (uint64_t v : comm->all_gather(static_cast<uint64_t>(local))) m += static_cast<int64_t>(v);
  SAGAN_CHECK(m > 1, "sync_batch_norm: expected more than 1 value per channel over all ranks, got input {}",
              shape_str(x.shape()));
  const double inv_m = 1.0 / static_cast<double>(m);
  Tensor mean = mul(all_reduce_sum(sum(x, dims), comm), inv_m);          // (C)
  Tensor xc = sub(x, mean.view(bshape));                                 // (N, C, ...)
  Tensor var = mul(all_reduce_sum(sum(square(xc), dims), comm), inv_m);  // (C) biased
  Tensor y = mul(xc, rdiv(1.0, sqrt(add(var, eps))).view(bshape));
  if (running_mean.defined() || running_var.defined()) {
    NoGradGuard ng;
    const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
    // Both values first, then both writes (as batch_norm): a write that
    // fails leaves the other buffer as it was.
    Tensor new_mean, new_var;
    if (running_mean.defined()) new_mean = add(mul(running_mean, 1.0 - momentum), mul(mean.detach(), momentum));
    if (running_var.defined()) new_var = add(mul(running_var, 1.0 - momentum), mul(var.detach(), momentum * unbias));
    if (new_mean.defined()) running_mean.copy_(new_mean);
    if (new_var.defined()) running_var.copy_(new_var);
  }
  return y;
}

}  // namespace sagan::nn
