// The kernel contract. A Backend implements every raw kernel for one device
// type; op front ends (core/ops/*.cpp) check shapes, allocate outputs, pick
// the backend from the inputs' device and record autograd. A new backend is a
// subclass; a new op adds its kernels here and in each backend.
//
// Conventions for every kernel:
//  - Tensors are already allocated on this backend's device with the right
//    shape and dtype; `out`-style arguments are fully overwritten unless the
//    kernel says it accumulates.
//  - Unless stated, inputs may be strided views; outputs are contiguous.
//  - Floating kernels support float32 and float64 (float64 may be CPU-only).
#pragma once
#include <cstddef>
#include <optional>
#include <vector>

#include "core/adam_options.h"
#include "core/tensor.h"

namespace sagan {

enum class UnaryOp {
  Neg,
  Relu,
  LeakyRelu /*alpha = slope*/,
  Tanh,
  Sigmoid,
  Softplus,
  Exp,
  Log,
  Sqrt,
  Abs,
  Square,
  PowScalar /*alpha = exponent*/,
  AddScalar /*alpha*/,
  MulScalar /*alpha*/,
  RDivScalar /*alpha / x*/
};
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

struct Conv2dGeom {
  int64_t stride = 1, pad = 0;
};

// What an adam_update kernel needs: the optimiser's settings and its step.
struct AdamHyper : AdamOptions {
  int64_t step = 1;  // 1-based, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory ----
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() = 0;

  // ---- data movement ----
  virtual void fill(Tensor& out, double value) = 0;
  // dst[i] = src[i]: same shape, any strides, any dtypes (converting).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;

  // ---- elementwise ----
  // out = f(x; alpha). x has out's shape (strided allowed).
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) = 0;
  // gx = gy * f'(x) given x and y = f(x); gx contiguous.
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                              double alpha) = 0;
  // out = a (op) b; a and b are already expanded to out's shape (stride 0 on
  // broadcast dims). out may alias a or b when it has identical geometry.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;

  // ---- reductions ----
  // out keeps x's rank with reduced dims of size 1; sums over those dims.
  virtual void sum(const Tensor& x, Tensor& out) = 0;
  // softmax over the last dim; x contiguous.
  virtual void softmax(const Tensor& x, Tensor& out) = 0;
  // gx = y * (gy - sum(gy * y)) over the last dim; all contiguous.
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) = 0;

  // ---- linear algebra ----
  // out (B,M,N) = a (B|1,M,K) @ b (B|1,K,N) + beta * out. Each operand's last
  // two dims have unit stride in one of them (row- or column-major); a batch
  // stride of 0 broadcasts. out is contiguous.
  virtual void bmm(const Tensor& a, const Tensor& b, Tensor& out, double beta) = 0;

  // ---- convolution (NCHW, all contiguous, square kernel, dilation 1) ----
  // out (B,Co,Ho,Wo) = conv(x (B,Ci,H,W), w (Co,Ci,k,k)) + bias (Co) if given.
  virtual void conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                      Conv2dGeom g) = 0;
  virtual void conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dGeom g) = 0;
  virtual void conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dGeom g) = 0;

  // ---- batch norm (NCHW contiguous, statistics per channel) ----
  // mean (C), invstd (C) = 1/sqrt(biased var + eps), from x.
  virtual void batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& invstd, double eps) = 0;
  // out = (x - mean[c]) * invstd[c]
  virtual void batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& out) = 0;
  // Backward of normalize with batch statistics:
  // gx = invstd * (gy - mean_c(gy) - xhat * mean_c(gy * xhat)).
  virtual void batch_norm_backward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
                                   Tensor& gx) = 0;

  // ---- pooling and resampling (NCHW contiguous; odd sizes floor) ----
  virtual void avg_pool2x2(const Tensor& x, Tensor& out) = 0;
  virtual void avg_pool2x2_backward(const Tensor& gy, Tensor& gx) = 0;
  virtual void max_pool2x2(const Tensor& x, Tensor& out) = 0;
  // Routes gy to the first maximum of each window of x (ties: lowest index).
  virtual void max_pool2x2_backward(const Tensor& x, const Tensor& gy, Tensor& gx) = 0;
  virtual void upsample_nearest2x(const Tensor& x, Tensor& out) = 0;
  virtual void upsample_nearest2x_backward(const Tensor& gy, Tensor& gx) = 0;

  // ---- indexing (contiguous; idx int64 (n), checked in range by the front end) ----
  // out (O,n,I) = x (O,R,I)[:, idx, :]
  virtual void index_select(const Tensor& x, const Tensor& idx, Tensor& out) = 0;
  // out (O,R,I) += src (O,n,I) scattered to rows idx (accumulates; repeats add).
  virtual void index_add(const Tensor& src, const Tensor& idx, Tensor& out) = 0;

  // ---- attention: O = softmax(Q K^T) V per batch, no scaling ----
  // q (B,N,d), k (B,S,d), v (B,S,dv) contiguous; out (B,N,dv); lse (B,N) the
  // log-sum-exp of each score row; map (B,N,S), when given, the softmax.
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                                 Tensor* map) = 0;
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv) = 0;

  // ---- spectral norm: one power iteration per matrix, in place ----
  // For each i: w[i] (out,in) contiguous, u[i] (out), v[i] (in):
  // v = normalize(W^T u), u = normalize(W v), normalize(x) = x / max(|x|, eps).
  virtual void power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                               double eps) = 0;

  // ---- optimiser updates, in place, over many tensors at once ----
  // Adam with bias correction: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  // p -= lr * mhat / (sqrt(vhat) + eps).
  virtual void adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                           std::vector<Tensor>& v, const AdamHyper& h) = 0;
  // ema = decay * ema + (1 - decay) * p
  virtual void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay) = 0;
};

// The backend of a device; throws naming the device when it is not built in
// or not present.
Backend& backend_for(Device device);
bool cuda_available();  // built with CUDA and a device is present
int cuda_device_count();

}  // namespace sagan
