#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/bench_cpu_ops.cpp: the same SAGAN-32
shapes at batch 64, float32, OMP_NUM_THREADS threads (default 2, as
run_cpu_ops.sh gives the engine), same output format
(name<TAB>fwd|bwd<TAB>ms<TAB>GFLOP/s, median of --repeats after --warmup, or
with --min the fastest; --split-backward adds a conv's input and weight
gradients alone as rows bwd-x and bwd-w).

Backward is torch.autograd.grad of the op's output with respect to the input
and weight (and bias where there is one), like the C++ side's kernels.

  /usr/bin/python3 benchmarks/torch_cpu_ops.py [--repeats N] [--warmup N] [--min] [--split-backward]
      [--filter SUBSTRING]... (rows containing any)
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

BATCH = 64


def time_ms(fn, opt):
    for _ in range(opt.warmup):
        fn()
    times = []
    for _ in range(opt.repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[0] if opt.min else times[len(times) // 2]  # as the C++ side


def report(name, direction, ms, flops):
    print(f"{name}\t{direction}\t{ms:.3f}\t{flops / (ms * 1e-3) / 1e9:.1f}", flush=True)


def bench_conv(opt, ci, co, k, hw):
    name = f"conv{k}x{k} {ci}->{co} @{hw}"
    if opt.filter and not any(f in name for f in opt.filter):
        return
    pad = k // 2
    x = torch.randn(BATCH, ci, hw, hw, requires_grad=True)
    w = torch.randn(co, ci, k, k, requires_grad=True)
    b = torch.randn(co, requires_grad=True)
    flops = 2.0 * BATCH * co * ci * k * k * hw * hw
    with torch.no_grad():
        report(name, "fwd", time_ms(lambda: F.conv2d(x, w, b, padding=pad), opt), flops)
    y = F.conv2d(x, w, b, padding=pad)
    gy = torch.randn_like(y)
    report(name, "bwd", time_ms(lambda: torch.autograd.grad(y, (x, w, b), gy, retain_graph=True), opt), 2 * flops)
    if opt.split_backward:
        report(name, "bwd-x", time_ms(lambda: torch.autograd.grad(y, (x,), gy, retain_graph=True), opt), flops)
        report(name, "bwd-w", time_ms(lambda: torch.autograd.grad(y, (w,), gy, retain_graph=True), opt), flops)


def bench_bmm(opt, batch, m, k, n):
    name = f"bmm ({batch},{m},{k})x({batch},{k},{n})"
    if opt.filter and not any(f in name for f in opt.filter):
        return
    a = torch.randn(batch, m, k, requires_grad=True)
    b = torch.randn(batch, k, n, requires_grad=True)
    flops = 2.0 * batch * m * n * k
    with torch.no_grad():
        report(name, "fwd", time_ms(lambda: torch.bmm(a, b), opt), flops)
    y = torch.bmm(a, b)
    g = torch.randn_like(y)
    report(name, "bwd", time_ms(lambda: torch.autograd.grad(y, (a, b), g, retain_graph=True), opt), 2 * flops)


def bench_linear(opt, fin, fout):
    name = f"linear {fin}->{fout} (batch {BATCH})"
    if opt.filter and not any(f in name for f in opt.filter):
        return
    x = torch.randn(BATCH, fin, requires_grad=True)
    w = torch.randn(fout, fin, requires_grad=True)
    b = torch.randn(fout, requires_grad=True)
    flops = 2.0 * BATCH * fin * fout
    with torch.no_grad():
        report(name, "fwd", time_ms(lambda: F.linear(x, w, b), opt), flops)
    y = F.linear(x, w, b)
    g = torch.randn_like(y)
    report(name, "bwd", time_ms(lambda: torch.autograd.grad(y, (x, w, b), g, retain_graph=True), opt), 2 * flops)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min", action="store_true", help="the fastest run instead of the median")
    p.add_argument("--split-backward", action="store_true", help="conv rows bwd-x and bwd-w too")
    p.add_argument("--filter", action="append", default=[])
    opt = p.parse_args()
    if opt.repeats < 1 or opt.warmup < 0:
        sys.exit("torch_cpu_ops.py: --repeats must be at least 1 and --warmup at least 0")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(1)
    print(f"torch_cpu_ops: torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{'fastest' if opt.min else 'median'} of {opt.repeats} after {opt.warmup} warm-up runs", file=sys.stderr)
    for hw in (8, 16, 32):
        bench_conv(opt, 256, 256, 3, hw)
    for hw in (8, 16, 32):
        bench_conv(opt, 256, 256, 1, hw)
    bench_conv(opt, 256, 3, 3, 32)
    bench_conv(opt, 256, 1, 3, 32)
    bench_conv(opt, 256, 12, 3, 32)
    bench_conv(opt, 3, 128, 3, 32)
    for hw in (32, 16, 8):
        bench_conv(opt, 128, 128, 3, hw)
    bench_conv(opt, 3, 128, 1, 16)
    bench_conv(opt, 128, 128, 1, 16)
    bench_conv(opt, 256, 32, 1, 16)
    bench_conv(opt, 256, 128, 1, 16)
    bench_conv(opt, 128, 256, 1, 16)
    for hw in (8, 16, 32):  # the cpu preset's width (ch 16): G 64 wide, D 32 wide
        bench_conv(opt, 64, 64, 3, hw)
    for hw in (32, 16, 8):
        bench_conv(opt, 32, 32, 3, hw)
    bench_bmm(opt, 64, 256, 32, 64)
    bench_bmm(opt, 64, 256, 64, 128)
    bench_linear(opt, 128, 4096)


if __name__ == "__main__":
    main()
