// Differentiable op front ends. Each op lives in core/ops/<group>.cpp with its
// backward rule beside its forward; kernels live in kernels/<backend>/.
#pragma once
#include <optional>
#include <vector>

#include "sagan/core/autograd.h"
#include "sagan/core/backend.h"
#include "sagan/core/tensor.h"

namespace sagan {

// ---- elementwise (core/ops/elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);  // numpy broadcasting
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to a on ties
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- reductions (core/ops/reduce.cpp) ----
Tensor sum(const Tensor& x);  // all elements -> scalar (shape [])
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of expand).
Tensor sum_to_shape(const Tensor& x, const Shape& shape);
Tensor softmax(const Tensor& x, int64_t dim);
// log(softmax(x)) without forming the softmax: stable for large logits
// (core/ops/log_softmax.cpp).
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra (core/ops/matmul.cpp) ----
// (M,K)@(K,N), (B,M,K)@(B,K,N), with batch broadcasting of 2-d operands.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);  // strictly 3-d, equal batch
// x (..., in) @ w (out, in)^T + b (out)
Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b = std::nullopt);

// ---- convolution (core/ops/conv2d.cpp) ----
// x (B,Ci,H,W), w (Co,Ci,k,k), b (Co)
Tensor conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b = std::nullopt, int64_t stride = 1,
              int64_t pad = 0);

// ---- normalisation (core/ops/batch_norm.cpp) ----
// Training: normalises with batch statistics (biased variance) and updates
// running_mean/running_var (unbiased) with `momentum` when they are defined.
// Eval: normalises with the running statistics. No affine part: callers
// multiply and add (BatchNorm2d, ConditionalBatchNorm2d).
Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, bool training, double momentum = 0.1,
                  double eps = 1e-5);

// ---- pooling and resampling (core/ops/pool.cpp) ----
Tensor avg_pool2x2(const Tensor& x);
Tensor max_pool2x2(const Tensor& x);
Tensor upsample_nearest2x(const Tensor& x);

// ---- indexing and joining (core/ops/index.cpp) ----
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx);  // idx int64 1-d
Tensor embedding(const Tensor& weight, const Tensor& idx);             // weight (V,D), idx any shape
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

// ---- attention (core/ops/attention.cpp) ----
struct AttentionResult {
  Tensor out;  // (B,N,dv)
  Tensor map;  // (B,N,S), only when asked for; not differentiable
};
// softmax(q k^T) v over keys, no 1/sqrt(d) scaling: q (B,N,d), k (B,S,d), v (B,S,dv).
AttentionResult attention(const Tensor& q, const Tensor& k, const Tensor& v, bool return_map = false);

// ---- spectral norm helpers (core/ops/spectral_norm.cpp) ----
// One power iteration in place over many (w, u, v) triples, no autograd.
void power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v, double eps = 1e-12);
// sigma = u^T W v with gradient through w (u, v constants); w viewed (out, in).
Tensor spectral_sigma(const Tensor& w2d, const Tensor& u, const Tensor& v);

// ---- optimiser updates (core/ops/optim.cpp): in place, no autograd, one
// backend call for all tensors. Tensors of one call share device and dtype.
// gate: undefined, or one element of the tensors' dtype on their device; the
// update is made unless it holds NaN (decided on the device, see core/sync_free.h).
// scales: undefined, or {step_size, sqrt_bc2} (adam_scales, core/backend.h)
// as two elements of that dtype on that device, used instead of hyper.step's.
void adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                 std::vector<Tensor>& v, const AdamHyper& hyper, const Tensor& gate = Tensor(),
                 const Tensor& scales = Tensor());
void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay,
                const Tensor& gate = Tensor());

}  // namespace sagan
