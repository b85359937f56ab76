// Shared by the GPU benchmarks (bench_attention, bench_spectral_norm): the
// device's peak rates, for the floors each row is compared with, and the
// timing loop. Only for builds with the CUDA backend.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "sagan/core/backend.h"

namespace sagan::bench {

struct DeviceRates {
  std::string name;
  double bw = 0;    // bytes/s
  double fp32 = 0;  // FLOP/s, non-tensor fp32
  double tf32 = 0;  // FLOP/s, dense TF32 tensor cores (0: unknown part)
  double bf16 = 0;  // FLOP/s, dense BF16 tensor cores (0: unknown part)
};

inline DeviceRates device_rates() {
  DeviceRates r;
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  r.name = p.name;
  int sms = 0, clock_khz = 0, mem_khz = 0, bus = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, 0);
  const int lanes = (p.major == 8 && p.minor == 0) ? 64 : 128;  // fp32 lanes per SM
  r.fp32 = double(sms) * lanes * 2.0 * clock_khz * 1e3;
  // Dense tensor-core rates, datasheet: H100/H200 SXM 989.4 TFLOP/s bf16
  // and 494.7 tf32 for 132 SMs (4096 and 2048 FLOP per clock per SM at the
  // 1.83 GHz the datasheet assumes), scaled by this part's SM count; A100
  // 312 / 156 for 108 SMs. Other parts: unknown (0). mma.sync, unlike
  // wgmma, may not reach these on Hopper: the floors are lower bounds.
  if (p.major == 9) {
    r.bf16 = 989.4e12 * sms / 132.0;
    r.tf32 = r.bf16 / 2;
  } else if (p.major == 8 && p.minor == 0) {
    r.bf16 = 312e12 * sms / 108.0;
    r.tf32 = r.bf16 / 2;
  }
  // Datasheet bandwidths where the name says which part it is.
  if (r.name.find("H200") != std::string::npos)
    r.bw = 4.8e12;
  else if (r.name.find("H100") != std::string::npos && r.name.find("PCIe") != std::string::npos)
    r.bw = 2.0e12;
  else if (r.name.find("H100") != std::string::npos)
    r.bw = 3.35e12;
  else
    r.bw = 2.0 * mem_khz * 1e3 * bus / 8.0;
  return r;
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median over reps of the mean time of `inner` back-to-back calls, after two
// warm-up calls (module load, allocator growth, library handles), with the
// device idle before and after each rep. The host clock spans a rep, so a
// rep pays one launch-and-sync latency (~10-20 us): `inner` grows until a
// rep takes at least kMinRepS, keeping that under 1% of small kernels'
// times.
constexpr double kMinRepS = 2e-3;

template <class F>
double time_it(F&& f, int reps, int inner) {
  Backend& be = backend_for(Device::cuda());
  f();
  f();
  be.synchronize();
  cudaDeviceSynchronize();
  for (;;) {  // untimed trial reps until one takes kMinRepS
    const double t0 = now_s();
    for (int i = 0; i < inner; ++i) f();
    be.synchronize();
    cudaDeviceSynchronize();
    const double rep = now_s() - t0;
    if (rep >= kMinRepS || inner >= 10000) break;
    inner = std::min(10000, std::max(2 * inner, static_cast<int>(inner * kMinRepS / std::max(rep, 1e-7)) + 1));
  }
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    for (int i = 0; i < inner; ++i) f();
    be.synchronize();
    cudaDeviceSynchronize();
    t.push_back((now_s() - t0) / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace sagan::bench
