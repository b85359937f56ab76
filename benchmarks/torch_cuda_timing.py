"""The timing loop of the PyTorch GPU benchmarks (torch_attention.py,
torch_spectral_norm.py), the same as the engine's (benchmarks/cuda_bench.h):
two warm-up calls, then the median over reps of the mean of `inner`
back-to-back calls, timed with CUDA events."""
import statistics

import torch


def time_it(fn, reps, inner):
    fn()
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3 / inner)
    return statistics.median(times)
