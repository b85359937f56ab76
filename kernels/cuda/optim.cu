// Fused multi-tensor optimiser updates: one launch updates up to 64 tensors
// of the call (the training step's flat buffers: one launch). The kernels
// and the grouping are in optim_kernels.cuh; here the tables are filled
// from the tensors and the launches made.
#include <cmath>
#include <vector>

#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/optim_kernels.cuh"

namespace sagan {

namespace {
using namespace cuda;
using fused::optim::AdamStep;
using fused::optim::EmaStep;
using fused::optim::GroupTable;
using fused::optim::Slot;

// The device data of an optional argument (gate, scales), or null.
template <class T>
const T* data_or_null(const std::optional<Tensor>& t) {
  return t ? static_cast<const T*>(t->raw_data()) : nullptr;
}

// One launch per group of up to 64 tensors, at most 8 blocks per SM.
template <class F>
void launch(CudaBackend& be, const char* op, const std::vector<Slot>& slots, const std::vector<int64_t>& starts, F f) {
  fused::optim::for_each_group(slots, starts, 8LL * be.sm_count(), [&](unsigned grid, const GroupTable& t, int count) {
    fused::optim::multi_tensor_kernel<F><<<grid, fused::optim::kThreads, 0, be.stream()>>>(t, count, f);
    check_launch(op, "multi_tensor_kernel", be.stream());
  });
}
}  // namespace

void CudaBackend::adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                              std::vector<Tensor>& v, const AdamHyper& h, const std::optional<Tensor>& gate,
                              const std::optional<Tensor>& scales) {
  const char* op = "adam_update";
  if (params.empty()) return;
  std::vector<Tensor> dense_grads;  // keeps copies of strided grads alive until after the launch
  std::vector<Slot> slots;
  std::vector<int64_t> starts{0};
  const DType dt = params[0].dtype();
  for (size_t i = 0; i < params.size(); ++i) {
    dense_grads.push_back(dense(*this, grads[i]));
    slots.push_back({{params[i].raw_data(), dense_grads.back().raw_data(), m[i].raw_data(), v[i].raw_data()}});
    starts.push_back(starts.back() + params[i].numel());
  }
  const AdamScales sc = adam_scales(h, h.step);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    AdamStep<T> f{{data_or_null<T>(gate)},          static_cast<T>(sc.step_size),  static_cast<T>(sc.sqrt_bc2),
                  static_cast<T>(h.beta1),       static_cast<T>(h.beta2),       static_cast<T>(1.0 - h.beta1),
                  static_cast<T>(1.0 - h.beta2), static_cast<T>(h.eps),         data_or_null<T>(scales)};
    launch(*this, op, slots, starts, f);
  });
}

void CudaBackend::ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay,
                             const std::optional<Tensor>& gate) {
  const char* op = "ema_update";
  if (ema.empty()) return;
  std::vector<Tensor> dense_params;
  std::vector<Slot> slots;
  std::vector<int64_t> starts{0};
  const DType dt = ema[0].dtype();
  for (size_t i = 0; i < ema.size(); ++i) {
    dense_params.push_back(dense(*this, params[i]));
    slots.push_back({{ema[i].raw_data(), dense_params.back().raw_data(), nullptr, nullptr}});
    starts.push_back(starts.back() + ema[i].numel());
  }
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch(*this, op, slots, starts, EmaStep<T>{{data_or_null<T>(gate)}, static_cast<T>(decay), static_cast<T>(1.0 - decay)});
  });
}

}  // namespace sagan
