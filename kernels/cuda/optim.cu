// Fused multi-tensor optimiser updates: one launch updates up to 64 tensors
// of the call (the training step's flat buffers: one launch). A table of
// per-tensor pointers and the running start offset of each tensor in the
// concatenated index space travels in the kernel's parameters (no host copy,
// so a CUDA graph can record the launch); each block takes a chunk of that
// space, finds the tensor of its first element by binary search, and threads
// step to the next tensor as they cross its end.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

constexpr int64_t kChunk = kBlock * 8;

// Up to four tensors per slot: Adam (param, grad, m, v); EMA (ema, param).
struct Slot {
  void* t[4];
};

// Largest t in [0, count) with starts[t] <= i (starts[0] == 0).
__device__ __forceinline__ int find_tensor(const int64_t* starts, int count, int64_t i) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (starts[mid] <= i)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// Calls f(slot, j) for every element j of every tensor, chunk by chunk.
template <class F>
__device__ __forceinline__ void for_each_element(const Slot* slots, const int64_t* starts, int count, const F& f) {
  __shared__ int first;
  const int64_t total = starts[count];
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kChunk; base < total;
       base += static_cast<int64_t>(gridDim.x) * kChunk) {
    if (threadIdx.x == 0) first = find_tensor(starts, count, base);
    __syncthreads();
    int t = first;
    const int64_t end = base + kChunk < total ? base + kChunk : total;
    for (int64_t i = base + threadIdx.x; i < end; i += blockDim.x) {
      while (i >= starts[t + 1]) ++t;  // skips empty tensors too
      f(slots[t], i - starts[t]);
    }
    __syncthreads();  // `first` is rewritten for the next chunk
  }
}

// PyTorch's arrangement of the bias corrections (as the CPU backend):
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bc = 1 - beta^step.
// The update gate (core/kernels.def): null, or one T that is NaN to skip.
template <class T>
struct Gate {
  const T* gate;
  __device__ __forceinline__ bool off() const { return gate != nullptr && isnan(*gate); }
};

template <class T>
struct AdamStep : Gate<T> {
  T step_size, sqrt_bc2, b1, b2, a1, a2, eps;  // a = 1 - b
  const T* scales;  // null, or {step_size, sqrt_bc2} on the device (a replayed graph's step)
  __device__ __forceinline__ void load() {
    if (scales != nullptr) step_size = scales[0], sqrt_bc2 = scales[1];
  }
  __device__ __forceinline__ void operator()(const Slot& s, int64_t j) const {
    T* p = static_cast<T*>(s.t[0]);
    const T g = static_cast<const T*>(s.t[1])[j];
    T* m = static_cast<T*>(s.t[2]);
    T* v = static_cast<T*>(s.t[3]);
    const T mj = b1 * m[j] + a1 * g;
    const T vj = b2 * v[j] + a2 * (g * g);
    m[j] = mj;
    v[j] = vj;
    p[j] -= step_size * (mj / (sqrt(vj) / sqrt_bc2 + eps));
  }
};

template <class T>
struct EmaStep : Gate<T> {
  T decay, rest;  // rest = 1 - decay, rounded once like the CPU backend
  __device__ __forceinline__ void load() {}
  __device__ __forceinline__ void operator()(const Slot& s, int64_t j) const {
    T* e = static_cast<T*>(s.t[0]);
    const T p = static_cast<const T*>(s.t[1])[j];
    e[j] = decay * e[j] + rest * p;
  }
};

// The tensors of one launch travel in the kernel's parameters (4 KiB at
// most): __grid_constant__ lets the threads index them in place, and no
// table is copied from the host, so a CUDA graph can record the launch. A
// call over more than kGroup tensors is several launches.
constexpr int kGroup = 64;
struct GroupTable {
  Slot slots[kGroup];
  int64_t starts[kGroup + 1];  // element offsets within the group, starts[0] = 0
};
static_assert(sizeof(GroupTable) <= 3000, "the table and the functor must fit the 4 KiB parameter space");

template <class F>
__global__ void __launch_bounds__(kBlock) multi_tensor_kernel(const __grid_constant__ GroupTable table, int count, F f) {
  if (f.off()) return;  // read by every thread: one cached load, no divergence
  f.load();
  for_each_element(table.slots, table.starts, count, f);
}

// The device data of an optional argument (gate, scales), or null.
template <class T>
const T* data_or_null(const std::optional<Tensor>& t) {
  return t ? static_cast<const T*>(t->raw_data()) : nullptr;
}

// One launch per group of up to kGroup tensors (starts: running element
// offsets over the whole call, starts[0] = 0).
template <class F>
void launch(CudaBackend& be, const char* op, const std::vector<Slot>& slots, const std::vector<int64_t>& starts, F f) {
  for (size_t first = 0; first < slots.size(); first += kGroup) {
    const size_t count = std::min<size_t>(kGroup, slots.size() - first);
    GroupTable t{};
    for (size_t i = 0; i < count; ++i) {
      t.slots[i] = slots[first + i];
      t.starts[i] = starts[first + i] - starts[first];
    }
    t.starts[count] = starts[first + count] - starts[first];
    const int64_t total = t.starts[count];
    if (total == 0) continue;
    const int64_t chunks = (total + kChunk - 1) / kChunk;
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(chunks, 8LL * be.sm_count()));
    multi_tensor_kernel<F><<<grid, kBlock, 0, be.stream()>>>(t, static_cast<int>(count), f);
    check_launch(op, "multi_tensor_kernel", be.stream());
  }
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
