// The CPU backend: Eigen for GEMM, OpenMP across both cores, and plain loops
// the compiler vectorises. Each kernel group lives in its own file beside
// this header (kernels/cpu/<group>.cpp), named like its op front end.
#pragma once
#include "core/backend.h"

namespace sagan {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void synchronize() override {}

  void fill(Tensor& out, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;

  void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      double alpha) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;

  void sum(const Tensor& x, Tensor& out) override;
  void softmax(const Tensor& x, Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) override;

  void bmm(const Tensor& a, const Tensor& b, Tensor& out, double beta) override;

  void conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out, Conv2dGeom g) override;
  void conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dGeom g) override;
  void conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dGeom g) override;

  void batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& invstd, double eps) override;
  void batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& out) override;
  void batch_norm_backward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
                           Tensor& gx) override;

  void avg_pool2x2(const Tensor& x, Tensor& out) override;
  void avg_pool2x2_backward(const Tensor& gy, Tensor& gx) override;
  void max_pool2x2(const Tensor& x, Tensor& out) override;
  void max_pool2x2_backward(const Tensor& x, const Tensor& gy, Tensor& gx) override;
  void upsample_nearest2x(const Tensor& x, Tensor& out) override;
  void upsample_nearest2x_backward(const Tensor& gy, Tensor& gx) override;

  void index_select(const Tensor& x, const Tensor& idx, Tensor& out) override;
  void index_add(const Tensor& src, const Tensor& idx, Tensor& out) override;

  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                         Tensor* map) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                          const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv) override;

  void power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                       double eps) override;

  void adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                   std::vector<Tensor>& v, const AdamHyper& h) override;
  void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay) override;
};

CpuBackend& cpu_backend();

// The CPU allocator keeps freed blocks of >= 64 KiB for reuse by size.
size_t cpu_cached_bytes();
void cpu_empty_cache();

}  // namespace sagan
