// What a kernel call computes and moves, from its arguments, for the
// profile (core/kernel_profile.h): Backend::run calls these only when
// SAGAN_PROFILE is on.
//
// FLOPs by the textbook count: a product's multiply-adds (2 each) as a
// direct loop does them, whatever the kernel runs (Winograd, cuDNN's FFT);
// the attention's as FlashAttention counts them, 2BNS(d + dv) forward and
// 2BNS(3d + 2dv) backward (the scores recomputed); one per element for
// elementwise arithmetic and sums. Kernels that move memory (copies,
// pools, indexing, batch norm, the optimisers) count bytes only. Bytes are
// those of every tensor argument, each read or written once (a broadcast
// operand at its expanded size): the traffic a kernel cannot avoid, close to
// what it does for all but the products.
#pragma once
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/kernel_profile.h"
#include "sagan/core/shape.h"

namespace sagan::detail {

inline double tensor_bytes(const Tensor& t) {
  return t.defined() ? static_cast<double>(t.numel()) * static_cast<double>(dtype_size(t.dtype())) : 0.0;
}
template <class T>
double arg_bytes(const T&) {
  return 0.0;
}
inline double arg_bytes(const Tensor& t) { return tensor_bytes(t); }
inline double arg_bytes(const std::optional<Tensor>& t) { return t ? tensor_bytes(*t) : 0.0; }
inline double arg_bytes(Tensor* const& t) { return t ? tensor_bytes(*t) : 0.0; }
inline double arg_bytes(const std::vector<Tensor>& ts) {
  double b = 0;
  for (const Tensor& t : ts) b += tensor_bytes(t);
  return b;
}

// " [2, 64, 32, 32]" for each tensor argument, for SAGAN_PROFILE=shapes rows.
template <class T>
void append_shape(std::string&, const T&) {}
inline void append_shape(std::string& s, const Tensor& t) {
  if (t.defined()) s.append(" ").append(shape_str(t.shape()));
}
inline void append_shape(std::string& s, const std::vector<Tensor>& ts) {
  s.append(" ").append(std::to_string(ts.size())).append(" tensors");
}

inline double per_out_channel(const Tensor& w) {
  return static_cast<double>(w.numel()) / static_cast<double>(w.size(0));
}

template <KernelId id, class... A>
double kernel_flops(const A&... args) {
  const auto a = std::forward_as_tuple(args...);
  auto n = [](const Tensor& t) { return static_cast<double>(t.numel()); };
  if constexpr (id == KernelId::unary || id == KernelId::binary) {
    return n(std::get<2>(a));  // out
  } else if constexpr (id == KernelId::unary_backward) {
    return n(std::get<4>(a));  // gx
  } else if constexpr (id == KernelId::sum) {
    return n(std::get<0>(a));
  } else if constexpr (id == KernelId::bmm) {
    const Tensor& x = std::get<0>(a);
    return 2.0 * n(std::get<2>(a)) * static_cast<double>(x.size(x.dim() - 1));  // 2 * B M N * K
  } else if constexpr (id == KernelId::conv2d || id == KernelId::conv2d_rect) {
    return 2.0 * n(std::get<3>(a)) * per_out_channel(std::get<1>(a));  // every output: Ci kh kw multiply-adds
  } else if constexpr (id == KernelId::conv2d_backward_input || id == KernelId::conv2d_rect_backward_input) {
    return 2.0 * n(std::get<0>(a)) * per_out_channel(std::get<1>(a));
  } else if constexpr (id == KernelId::conv2d_backward_weight || id == KernelId::conv2d_rect_backward_weight) {
    return 2.0 * n(std::get<0>(a)) * per_out_channel(std::get<2>(a));
  } else if constexpr (id == KernelId::attention_forward || id == KernelId::attention_backward) {
    const Tensor &q = std::get<0>(a), &k = std::get<1>(a), &v = std::get<2>(a);
    const double bns = static_cast<double>(q.size(0)) * q.size(1) * k.size(1);
    const double d = static_cast<double>(q.size(2)), dv = static_cast<double>(v.size(2));
    return id == KernelId::attention_forward ? 2.0 * bns * (d + dv) : 2.0 * bns * (3 * d + 2 * dv);
  } else if constexpr (id == KernelId::power_iteration) {
    double f = 0;
    for (const Tensor& w : std::get<0>(a)) f += 4.0 * n(w);  // W^T u and W v
    return f;
  } else {
    return 0.0;
  }
}

template <KernelId id, class... A>
profile::Work kernel_work(const A&... args) {
  return {kernel_flops<id>(args...), (arg_bytes(args) + ... + 0.0)};
}

// The profile row of a call: the kernel's name, its op for the elementwise
// kernels ("binary mul"), and with SAGAN_PROFILE=shapes the tensors' shapes.
template <KernelId id, class First, class... Rest>
std::string profile_key(const First& first, const Rest&... rest) {
  std::string key = kernel_name(id);
  if constexpr (std::is_same_v<First, UnaryOp>) key.append(" ").append(unary_op_name(first));
  if constexpr (std::is_same_v<First, BinaryOp>) key.append(" ").append(binary_op_name(first));
  if (profile::by_shape()) {
    append_shape(key, first);
    (append_shape(key, rest), ...);
  }
  return key;
}

}  // namespace sagan::detail
