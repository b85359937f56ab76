// Batch normalisation without the affine part, PyTorch semantics: training
// normalises with the batch mean and biased variance and moves the running
// statistics towards the batch mean and UNBIASED variance; eval normalises
// with the running statistics, which then act as constants.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

namespace {
constexpr const char* kOp = "batch_norm";

void check_running(const Tensor& x, const Tensor& r, const char* what) {
  detail::check_defined(kOp, r, what);
  detail::check_same(kOp, x, r);
  const int64_t c = x.shape()[1];
  SAGAN_CHECK(r.dim() == 1 && r.shape()[0] == c, "{}: {} must have shape [{}] for input {}, got {}", kOp, what, c,
              shape_str(x.shape()), shape_str(r.shape()));
  // Checked before anything is written, so a refused call changes neither
  // buffer. The update runs without grad, so it would not be refused later.
  SAGAN_CHECK(!r.requires_grad(), "{}: {} requires grad; running statistics are buffers, not parameters", kOp, what);
  SAGAN_CHECK(r.strides()[0] != 0 || c <= 1,
              "{}: {} is an expanded view (stride 0), whose elements share memory; pass a tensor of its own", kOp,
              what);
}

// (1 - momentum) * running + momentum * batch.
Tensor blend(const Tensor& running, const Tensor& batch, double momentum) {
  return add(mul(running, 1.0 - momentum), mul(batch, momentum));
}
}  // namespace

Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, bool training, double momentum,
                  double eps) {
  detail::check_float(kOp, x);
  SAGAN_CHECK(x.dim() >= 2, "{}: expected an input of shape (N, C, ...), got {}", kOp, shape_str(x.shape()));
  SAGAN_CHECK(eps > 0.0, "{}: eps must be positive, got {}", kOp, eps);
  const bool has_running = running_mean.defined() || running_var.defined();
  if (has_running || !training) {
    check_running(x, running_mean, "running_mean");
    check_running(x, running_var, "running_var");
  }
  // The kernels see (N, C, L, 1) with L the product of the spatial dims, so
  // (N, C) and (N, C, L) inputs work like NCHW.
  const int64_t n = x.shape()[0], c = x.shape()[1];
  int64_t l = 1;
  for (int64_t d = 2; d < x.dim(); ++d) l *= x.shape()[static_cast<size_t>(d)];
  const Shape shape4{n, c, l, 1};
  const Shape in_shape = x.shape();
  Tensor x4 = x.detach().contiguous().view(shape4);
  Tensor out4 = Tensor::empty(shape4, x.dtype(), x.device());
  Backend& be = backend_of(x);

  if (training) {
    const int64_t m = n * l;
    SAGAN_CHECK(m > 1, "{}: expected more than 1 value per channel when training, got input {}", kOp,
                shape_str(in_shape));
    Tensor mean = Tensor::empty({c}, x.dtype(), x.device());
    Tensor var = Tensor::empty({c}, x.dtype(), x.device());
    Tensor invstd = Tensor::empty({c}, x.dtype(), x.device());
    be.batch_norm_stats(x4, mean, var, invstd, eps);
    be.batch_norm_normalize(x4, mean, invstd, out4);
    if (has_running) {
      NoGradGuard ng;
      // Bessel's correction of the kernel's biased variance, as PyTorch.
      Tensor unbiased = mul(var, static_cast<double>(m) / static_cast<double>(m - 1));
      // Both values first, then both writes: nothing fails between them.
      Tensor new_mean = blend(running_mean, mean, momentum), new_var = blend(running_var, unbiased, momentum);
      running_mean.copy_(new_mean);
      running_var.copy_(new_var);
    }
    Tensor out = out4.view(in_shape);
    record(kOp, out, {x}, [in_shape, shape4, x4 = saved(x4), mean, invstd](const Tensor& g, const std::vector<bool>&) {
      Tensor g4 = g.detach().contiguous().view(shape4);
      Tensor gx4 = Tensor::empty(shape4, g.dtype(), g.device());
      backend_of(g).batch_norm_backward(x4, mean, invstd, g4, gx4);
      return std::vector<Tensor>{gx4.view(in_shape)};
    });
    return out;
  }

  Tensor mean, invstd;
  {
    NoGradGuard ng;
    mean = running_mean.detach().contiguous();
    invstd = rdiv(1.0, sqrt(add(running_var.detach(), eps)));
  }
  be.batch_norm_normalize(x4, mean, invstd, out4);
  Tensor out = out4.view(in_shape);
  // With constant statistics the map is affine per channel: gx = gy * invstd,
  // which is normalize with a zero mean.
  record(kOp, out, {x}, [in_shape, shape4, invstd = saved(invstd)](const Tensor& g, const std::vector<bool>&) {
    Tensor g4 = g.detach().contiguous().view(shape4);
    Tensor gx4 = Tensor::empty(shape4, g.dtype(), g.device());
    Tensor zero = Tensor::zeros(invstd.shape(), invstd.dtype(), invstd.device());
    backend_of(g).batch_norm_normalize(g4, zero, invstd, gx4);
    return std::vector<Tensor>{gx4.view(in_shape)};
  });
  return out;
}

}  // namespace sagan
