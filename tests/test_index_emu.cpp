// The CUDA index kernels (kernels/cuda/index_kernels.cuh) on the CPU
// emulator against the CPU backend: index_select over (O, R, I) views with
// a strided index, index_add both ways (the ordered deterministic kernel,
// no float atomics; the atomic one) with repeated rows, both dtypes, and
// the trap an out-of-range row raises (the check the front end leaves to
// the kernels inside a sync-free region).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/index_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

template <class T>
void check_index(DType dt) {
  INFO(dtype_name(dt));
  Rng gen(4);
  const int64_t O = 3, R = 7, I = 5, n = 11;
  const Tensor x = Tensor::randn({O, R, I}, gen, dt);
  // Every other element of a wider index tensor (stride 2), rows repeated.
  const std::vector<int64_t> rows{6, 0, 3, 3, 1, 6, 6, 2, 0, 5, 3};
  std::vector<int64_t> wide(2 * rows.size(), -1);
  for (size_t i = 0; i < rows.size(); ++i) wide[2 * i] = rows[i];
  const Tensor idx_wide = Tensor::from_vector(wide, {static_cast<int64_t>(wide.size())});
  const Tensor idx = idx_wide.slice(0, 0, idx_wide.size(0), 2);
  REQUIRE(idx.strides()[0] == 2);
  const int64_t* ip = static_cast<const int64_t*>(idx.raw_data());

  Tensor out = Tensor::full({O, n, I}, NAN, dt), want = Tensor::empty({O, n, I}, dt);
  const Tensor idx_dense = idx.contiguous();  // the CPU kernel reads the index densely
  backend_for(Device::cpu()).index_select(x, idx_dense, want);
  const int64_t total = out.numel();
  cuda_emu::launch(cu::index_select_kernel<T>, dim3(2), dim3(cu::kBlock), 0, static_cast<const T*>(x.raw_data()), ip,
                   int64_t{2}, static_cast<T*>(out.raw_data()), R, n, I, total);
  CHECK(out.to_vector() == want.to_vector());  // a gather: exact

  const Tensor src = Tensor::randn({O, n, I}, gen, dt);
  const Tensor base = Tensor::randn({O, R, I}, gen, dt);
  Tensor want_add = base.clone();
  backend_for(Device::cpu()).index_add(src, idx_dense, want_add);
  const std::vector<double> w = want_add.to_vector();
  Tensor ordered = base.clone(), atomic = base.clone();
  const uint64_t atomics_before = cuda_emu::float_atomic_adds;
  cuda_emu::launch(cu::index_add_ordered_kernel<T>, dim3(1), dim3(cu::kBlock), 0, static_cast<const T*>(src.raw_data()),
                   ip, int64_t{2}, static_cast<T*>(ordered.raw_data()), R, n, I, O * I);
  CHECK(cuda_emu::float_atomic_adds == atomics_before);  // the deterministic kernel adds in order, no atomics
  cuda_emu::launch(cu::index_add_kernel<T>, dim3(2), dim3(cu::kBlock), 0, static_cast<const T*>(src.raw_data()), ip,
                   int64_t{2}, static_cast<T*>(atomic.raw_data()), R, n, I, total);
  CHECK(cuda_emu::float_atomic_adds > atomics_before);
  const std::vector<double> a = ordered.to_vector(), b = atomic.to_vector();
  for (size_t i = 0; i < w.size(); ++i) {
    // The ordered kernel adds rows j = 0, 1, ... like the CPU: the same
    // bits; the atomic one in the emulator's thread order: the same sum up
    // to rounding.
    CHECK(a[i] == w[i]);
    CHECK(b[i] == Approx(w[i]).epsilon(1e-6).margin(1e-6));
  }

  // A row out of range traps instead of touching memory.
  const std::vector<int64_t> bad{0, 7};
  Tensor small = Tensor::empty({1, 2, I}, dt);
  REQUIRE_THROWS_WITH(cuda_emu::launch(cu::index_select_kernel<T>, dim3(1), dim3(cu::kBlock), 0,
                                       static_cast<const T*>(x.raw_data()), bad.data(), int64_t{1},
                                       static_cast<T*>(small.raw_data()), R, int64_t{2}, I, 2 * I),
                      Catch::Contains("__trap"));
  Tensor target = base.clone();
  REQUIRE_THROWS_WITH(cuda_emu::launch(cu::index_add_ordered_kernel<T>, dim3(1), dim3(cu::kBlock), 0,
                                       static_cast<const T*>(src.raw_data()), bad.data(), int64_t{1},
                                       static_cast<T*>(target.raw_data()), R, int64_t{2}, I, O * I),
                      Catch::Contains("__trap"));
}
}  // namespace

TEST_CASE("emulated CUDA index_select / index_add match the CPU backend; a bad row traps", "[index][cuda_emu]") {
  check_index<double>(DType::F64);
  check_index<float>(DType::F32);
}
