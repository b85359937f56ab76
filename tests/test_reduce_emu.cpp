// CudaBackend::sum's kernels and launch choice (kernels/cuda/reduce_kernels.cuh)
// on the CPU emulator against the CPU backend's sum: every launch shape (a
// thread, a warp or a block per output, and a block per slice of an output
// with a pass over the partial sums), strided views of the input and the
// output, several reduced dims, both dtypes. The plan is made for 4 SMs, so
// the slicing starts at small sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/reduce_kernels.cuh"
// clang-format on

namespace {

using namespace sagan;
namespace cu = sagan::cuda;

constexpr int kSms = 4;

// out = sum of x over the dims where out is 1, as CudaBackend::sum runs it.
template <class T>
cu::SumPlan emulated_sum(const Tensor& x, Tensor& out) {
  const cu::SumGeometry g = cu::sum_geometry(x.shape(), x.strides(), out.shape(), out.strides());
  const cu::SumPlan plan = cu::plan_sum(g.outputs, g.r, kSms);
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  switch (plan.kind) {
    case cu::SumPlan::Thread:
      cuda_emu::launch(cu::sum_thread_kernel<T>, dim3(plan.grid), dim3(cu::kBlock), 0, xp, op, g.kept, g.reduced,
                       g.outputs, g.r);
      break;
    case cu::SumPlan::Warp:
      cuda_emu::launch(cu::sum_warp_kernel<T>, dim3(plan.grid), dim3(cu::kBlock), 0, xp, op, g.kept, g.reduced,
                       g.outputs, g.r);
      break;
    case cu::SumPlan::Block: {
      // Poisoned: every partial must be written before it is read.
      std::vector<double> partial(static_cast<size_t>(g.outputs * plan.parts), NAN);
      cuda_emu::launch(cu::sum_block_kernel<T>, dim3(plan.grid), dim3(cu::kBlock), 0, xp, op,
                       plan.parts > 1 ? partial.data() : nullptr, g.kept, g.reduced, g.outputs, g.r, plan.parts,
                       plan.chunk);
      if (plan.parts > 1)
        cuda_emu::launch(cu::sum_partials_kernel<T>, dim3(cu::blocks_for(g.outputs)), dim3(cu::kBlock), 0,
                         static_cast<const double*>(partial.data()), op, g.kept, g.outputs, plan.parts);
      break;
    }
  }
  return plan;
}

struct ReduceCase {
  const char* what;
  Shape shape;
  std::vector<int64_t> reduce;  // dims
  bool transpose;               // sum a transposed view of x (dims 0 and last swapped; `reduce` names its dims)
  cu::SumPlan::Kind kind;
  bool sliced;  // Block with more than one part
};

}  // namespace

TEST_CASE("emulated CUDA sum matches the CPU backend in every launch shape", "[reduce][cuda_emu]") {
  const std::vector<ReduceCase> cases{
      {"thread per output", {7, 5, 3}, {2}, false, cu::SumPlan::Thread, false},
      {"thread per output, two dims of a view", {3, 4, 5, 2}, {1, 3}, true, cu::SumPlan::Thread, false},
      {"warp per output, strided", {1000, 3}, {0}, false, cu::SumPlan::Warp, false},
      {"warp per output, many long outputs", {130, 4200}, {1}, false, cu::SumPlan::Warp, false},
      {"block per output, strided", {5000, 20}, {1}, true, cu::SumPlan::Block, false},
      {"blocks per output, partial sums", {100003}, {0}, false, cu::SumPlan::Block, true},
      {"blocks per output, strided, several outputs", {30011, 3}, {1}, true, cu::SumPlan::Block, true},
      {"all dims to one value", {61, 7, 11, 13}, {0, 1, 2, 3}, false, cu::SumPlan::Block, true},
  };
  Rng gen(5);
  for (const ReduceCase& c : cases) {
    for (DType dt : {DType::F64, DType::F32}) {
      INFO(c.what << ", " << dtype_name(dt));
      Tensor x = Tensor::randn(c.shape, gen, dt);
      if (c.transpose) x = x.transpose(0, static_cast<int64_t>(c.shape.size()) - 1);  // a strided view
      Shape os = x.shape();
      for (int64_t d : c.reduce) os[static_cast<size_t>(d)] = 1;
      // The output a strided view too when it has more than one element:
      // every other element of a wider buffer, poisoned.
      Shape wide = os;
      wide.back() *= 2;
      Tensor buf = Tensor::full(wide, NAN, dt);
      Tensor out = buf.slice(static_cast<int64_t>(os.size()) - 1, 0, wide.back(), 2);
      REQUIRE(out.shape() == os);
      Tensor want = Tensor::empty(os, dt);
      backend_for(Device::cpu()).sum(x, want);
      const cu::SumPlan plan =
          dt == DType::F64 ? emulated_sum<double>(x, out) : emulated_sum<float>(x, out);
      CHECK(plan.kind == c.kind);
      CHECK((plan.kind == cu::SumPlan::Block && plan.parts > 1) == c.sliced);
      const std::vector<double> all = buf.to_vector();
      // Both accumulate in double, in different orders; float32 outputs are
      // rounded once. Bound: relative to the sum of |x| over each output's
      // own inputs (over the whole input it would hide a wrong output).
      Tensor abs_sum = Tensor::empty(os, DType::F64);
      backend_for(Device::cpu()).sum(abs(x).to(DType::F64), abs_sum);
      const std::vector<double> got = out.to_vector(), ref = want.to_vector(), scale = abs_sum.to_vector();
      int bad = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        const double bound = (dt == DType::F64 ? 1e-13 : 1e-7) * scale[i];
        if (!(std::abs(got[i] - ref[i]) <= bound) && bad++ < 3)
          UNSCOPED_INFO("output " << i << ": " << got[i] << " vs " << ref[i] << ", bound " << bound);
      }
      CHECK(bad == 0);
      for (size_t i = 1; i < all.size(); i += 2) CHECK(std::isnan(all[i]));  // untouched between the outputs
    }
  }
}
