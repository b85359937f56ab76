// Attention O = softmax(Q K^T) V without scaling, blocked over query rows so
// that the N x S score matrix never exists for large N: each (batch, block of
// kRows query rows) sees a kRows x S slice of scores in thread-local scratch.
// This is the reference for a fused (flash) CUDA kernel: the forward keeps
// only the per-row log-sum-exp, and the backward recomputes P from it.
//
// The backward runs two passes, like the Triton/FlashAttention-2 kernels that
// avoid atomics: pass A over (batch, query block) writes dQ rows; pass B over
// (batch, key block) writes dK and dV rows. Each output row has exactly one
// writer, so results do not depend on the number of threads. The price is
// recomputing Q K^T and dO V^T in both passes (7 block GEMMs instead of 5).
#include <algorithm>
#include <cmath>
#include <vector>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {

constexpr int64_t kRows = 64;  // query rows per block
constexpr int64_t kKeys = 64;  // key rows per block (backward pass B)

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using CMap = Eigen::Map<const Mat<T>>;
template <class T>
using MMap = Eigen::Map<Mat<T>>;
template <class T>
using CVMap = Eigen::Map<const Vec<T>>;
template <class T>
using VMap = Eigen::Map<Vec<T>>;

struct AttentionDims {
  int64_t B, N, S, d, dv;
  int64_t nblk(int64_t rows, int64_t block) const { return (rows + block - 1) / block; }
  // Threads pay off once the block GEMMs dominate the fork/join cost.
  bool parallel(int64_t items) const { return items > 1 && B * N * S * (d + dv) >= (int64_t{1} << 16); }
};

AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), k.size(1), q.size(2), v.size(2)};
}

template <class T>
void forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, Tensor* map) {
  const AttentionDims g = attention_dims(q, k, v);
  const T* qp = static_cast<const T*>(q.raw_data());
  const T* kp = static_cast<const T*>(k.raw_data());
  const T* vp = static_cast<const T*>(v.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  T* lp = static_cast<T*>(lse.raw_data());
  T* mp = map ? static_cast<T*>(map->raw_data()) : nullptr;
  const int64_t nblk = g.nblk(g.N, kRows), items = g.B * nblk;
#pragma omp parallel if (g.parallel(items))
  {
    Mat<T> s(kRows, g.S);  // scores, then unnormalised probabilities
    Vec<T> m(kRows), l(kRows);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t b = it / nblk, r0 = (it % nblk) * kRows, nr = std::min(kRows, g.N - r0);
      CMap<T> Q(qp + (b * g.N + r0) * g.d, nr, g.d);
      CMap<T> K(kp + b * g.S * g.d, g.S, g.d);
      CMap<T> V(vp + b * g.S * g.dv, g.S, g.dv);
      auto sc = s.topRows(nr);
      auto mr = m.head(nr), lr = l.head(nr);
      sc.noalias() = Q * K.transpose();
      // Subtracting the row max keeps exp() finite for large unscaled logits.
      mr = sc.rowwise().maxCoeff();
      sc.array().colwise() -= mr.array();
      sc.array() = sc.array().exp();
      lr = sc.rowwise().sum();
      VMap<T>(lp + b * g.N + r0, nr) = mr.array() + lr.array().log();
      lr = lr.cwiseInverse();
      MMap<T> O(op + (b * g.N + r0) * g.dv, nr, g.dv);
      O.noalias() = sc * V;
      O = lr.asDiagonal() * O;
      if (mp) MMap<T>(mp + (b * g.N + r0) * g.S, nr, g.S).noalias() = lr.asDiagonal() * sc;
    }
  }
}

template <class T>
void backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                   const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv) {
  const AttentionDims g = attention_dims(q, k, v);
  const T* qp = static_cast<const T*>(q.raw_data());
  const T* kp = static_cast<const T*>(k.raw_data());
  const T* vp = static_cast<const T*>(v.raw_data());
  const T* op = static_cast<const T*>(out.raw_data());
  const T* lp = static_cast<const T*>(lse.raw_data());
  const T* gop = static_cast<const T*>(gout.raw_data());
  T* gqp = static_cast<T*>(gq.raw_data());
  T* gkp = static_cast<T*>(gk.raw_data());
  T* gvp = static_cast<T*>(gv.raw_data());

  // D_i = rowsum(dO_i * O_i) = sum_j P_ij dP_ij, the softmax-backward dot.
  std::vector<T> dvec(static_cast<size_t>(g.B * g.N));
  {
    CMap<T> O(op, g.B * g.N, g.dv), dO(gop, g.B * g.N, g.dv);
    VMap<T>(dvec.data(), g.B * g.N) = O.cwiseProduct(dO).rowwise().sum();
  }
  const T* dp_ = dvec.data();

  // Pass A: dQ_r = dS_r K with dS_r = P_r * (dO_r V^T - D_r), full key rows.
  const int64_t nqb = g.nblk(g.N, kRows), items_a = g.B * nqb;
#pragma omp parallel if (g.parallel(items_a))
  {
    Mat<T> s(kRows, g.S), dp(kRows, g.S);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items_a; ++it) {
      const int64_t b = it / nqb, r0 = (it % nqb) * kRows, nr = std::min(kRows, g.N - r0);
      const int64_t row = b * g.N + r0;
      CMap<T> Q(qp + row * g.d, nr, g.d), dO(gop + row * g.dv, nr, g.dv);
      CMap<T> K(kp + b * g.S * g.d, g.S, g.d), V(vp + b * g.S * g.dv, g.S, g.dv);
      CVMap<T> L(lp + row, nr), D(dp_ + row, nr);
      auto P = s.topRows(nr);
      auto dS = dp.topRows(nr);
      P.noalias() = Q * K.transpose();
      P.array().colwise() -= L.array();
      P.array() = P.array().exp();
      dS.noalias() = dO * V.transpose();
      dS.array().colwise() -= D.array();
      dS.array() *= P.array();
      MMap<T>(gqp + row * g.d, nr, g.d).noalias() = dS * K;
    }
  }

  // Pass B: for each key block c, dV_c = sum_r P_rc^T dO_r, dK_c = sum_r dS_rc^T Q_r.
  const int64_t nkb = g.nblk(g.S, kKeys), items_b = g.B * nkb;
#pragma omp parallel if (g.parallel(items_b))
  {
    Mat<T> s(kRows, kKeys), dp(kRows, kKeys);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items_b; ++it) {
      const int64_t b = it / nkb, c0 = (it % nkb) * kKeys, nc = std::min(kKeys, g.S - c0);
      const int64_t key = b * g.S + c0;
      CMap<T> K(kp + key * g.d, nc, g.d), V(vp + key * g.dv, nc, g.dv);
      MMap<T> dK(gkp + key * g.d, nc, g.d), dV(gvp + key * g.dv, nc, g.dv);
      dK.setZero();
      dV.setZero();
      for (int64_t r0 = 0; r0 < g.N; r0 += kRows) {
        const int64_t nr = std::min(kRows, g.N - r0), row = b * g.N + r0;
        CMap<T> Q(qp + row * g.d, nr, g.d), dO(gop + row * g.dv, nr, g.dv);
        CVMap<T> L(lp + row, nr), D(dp_ + row, nr);
        auto P = s.block(0, 0, nr, nc);
        auto dS = dp.block(0, 0, nr, nc);
        P.noalias() = Q * K.transpose();
        P.array().colwise() -= L.array();
        P.array() = P.array().exp();
        dV.noalias() += P.transpose() * dO;
        dS.noalias() = dO * V.transpose();
        dS.array().colwise() -= D.array();
        dS.array() *= P.array();
        dK.noalias() += dS.transpose() * Q;
      }
    }
  }
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                                   Tensor* map) {
  dispatch_float(q.dtype(), "attention_forward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    forward_impl<T>(q, k, v, out, lse, map);
  });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv) {
  // The incoming gradient may be a broadcast view (e.g. from sum's backward).
  Tensor go = gout;
  if (!go.is_contiguous()) {
    go = Tensor::empty(gout.shape(), gout.dtype(), gout.device());
    copy(gout, go);
  }
  dispatch_float(q.dtype(), "attention_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    backward_impl<T>(q, k, v, out, lse, go, gq, gk, gv);
  });
}

}  // namespace sagan
