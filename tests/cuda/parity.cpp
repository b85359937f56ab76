// Helpers of the CUDA parity suite (see parity.h).
#include "tests/cuda/parity.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace sagan::cudatest {

namespace {
Pair make(std::vector<double> values, const Shape& shape, DType gpu_dtype) {
  // Round through the GPU dtype so both sides see identical numbers.
  Tensor exact = Tensor::from_vector(values, shape, DType::F64, Device::cpu());
  Tensor rounded = exact.to(gpu_dtype).to(DType::F64);
  return {rounded, rounded.to(gpu_dtype).to(dev())};
}
}  // namespace

Pair uniform(const Shape& shape, double lo, double hi, Rng& gen, DType gpu_dtype) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = lo + (hi - lo) * gen.uniform();
  return make(std::move(v), shape, gpu_dtype);
}

Pair normal(const Shape& shape, Rng& gen, DType gpu_dtype, double scale) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = scale * gen.normal();
  return make(std::move(v), shape, gpu_dtype);
}

Pair from_values(const std::vector<double>& values, const Shape& shape, DType gpu_dtype) {
  return make(values, shape, gpu_dtype);
}

Pair view(const Pair& p, const std::function<Tensor(const Tensor&)>& f) { return {f(p.cpu), f(p.gpu)}; }

Tensor poisoned(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  const double poison = dtype == DType::I64 ? -987654321.0 : std::numeric_limits<double>::quiet_NaN();
  backend_for(device).fill(t, poison);
  return t;
}

Pair outputs(const Shape& shape, DType gpu_dtype) {
  return {poisoned(shape, DType::F64, Device::cpu()), poisoned(shape, gpu_dtype, dev())};
}

int64_t allocations_during(const std::function<void()>& f, int device) {
  const CudaMemoryStats a = cuda_memory_stats(device);
  f();
  const CudaMemoryStats b = cuda_memory_stats(device);
  return (b.malloc_calls - a.malloc_calls) + (b.cache_hits - a.cache_hits);
}

double normwise(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) return INFINITY;
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return std::sqrt(num / den);
}

void poison_allocator(const std::vector<Shape>& shapes, DType dtype, int copies) {
  std::vector<Tensor> held;
  for (int c = 0; c < copies; ++c)
    for (const Shape& s : shapes) held.push_back(poisoned(s, dtype, dev()));
  // Freed in reverse, so the first shape's block ends on top of its list.
  while (!held.empty()) held.pop_back();
}

}  // namespace sagan::cudatest
