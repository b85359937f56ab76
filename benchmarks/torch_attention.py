#!/usr/bin/env python3
"""PyTorch reference timings for SAGAN's attention shapes, float32, to set
beside bench_attention: F.scaled_dot_product_attention(scale=1.0) on its
memory-efficient backend (the only fused fp32 kernel that takes dv != d) and
eager bmm -> softmax -> bmm. Forward and forward+backward, batch 64 and 256.
Same columns and floors as bench_attention (see its header for the formulas).
Needs a CUDA device; prints a message and exits 0 without one.
Usage: python3 benchmarks/torch_attention.py [--reps 7] [--batches 64,256]
"""
import argparse
import sys

try:
    import torch
    import torch.nn.functional as F

    from torch_cuda_timing import time_it
except ImportError:  # pragma: no cover
    print("torch_attention.py: PyTorch is not installed; nothing to measure")
    sys.exit(0)

# (model, net, N, S, d, dv): C channels at H x W -> N = HW, S = N/4, d = C/8, dv = C/2.
SHAPES = [
    ("SAGAN-32", "G", 256, 64, 32, 128),
    ("SAGAN-32", "D", 256, 64, 16, 64),
    ("SAGAN-64", "G", 1024, 256, 16, 64),
    ("SAGAN-64", "D", 1024, 256, 16, 64),
    ("SAGAN-128", "G", 4096, 1024, 16, 64),
    ("SAGAN-128", "D", 4096, 1024, 8, 32),
]


def flops(B, N, S, d, dv, bwd):
    bns = 2.0 * B * N * S
    return bns * (d + dv) + (bns * (3 * d + 2 * dv) if bwd else 0.0)


def nbytes(B, N, S, d, dv, bwd):
    fwd = 4 * B * (N * d + S * d + S * dv + N * dv + N)
    back = 4 * B * (N * d + S * d + S * dv + 2 * N * dv + N + N * d + S * d + S * dv)
    return fwd + (back if bwd else 0.0)


def rates():
    p = torch.cuda.get_device_properties(0)
    name = p.name
    if "H200" in name:
        bw = 4.8e12
    elif "H100" in name:
        bw = 2.0e12 if "PCIe" in name else 3.35e12
    else:
        bw = float("nan")
    # fp32 lanes x 2 x clock; clock_rate is absent from some builds: take
    # the H100/H200 boost clock then.
    clock = getattr(p, "clock_rate", 0) * 1e3 or 1.98e9
    lanes = 64 if (p.major, p.minor) == (8, 0) else 128
    return name, bw, p.multi_processor_count * lanes * 2 * clock


def sdpa_efficient(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def eager(q, k, v):
    return torch.bmm(torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1), v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batches", default="64,256")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_attention.py: no CUDA device present; nothing to measure")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # plain fp32, as the engine's default
    name, bw, peak = rates()
    print(f"device: {name}, HBM {bw / 1e12:.2f} TB/s (datasheet), fp32 {peak / 1e12:.1f} TFLOP/s; torch {torch.__version__}")
    hdr = ("model", "n", "B", "N", "S", "d", "dv", "impl", "pass", "time_ms", "GB/s", "TFLOP/s", "floor_mem",
           "floor_flop", "x_mem", "x_flop", "peak_MiB")
    print("%-10s %-2s %4s %5s %5s %3s %4s %-15s %-6s %10s %8s %8s %10s %10s %7s %7s %9s" % hdr)
    for B in [int(x) for x in args.batches.split(",")]:
        for model, net, N, S, d, dv in SHAPES:
            for impl, fn in (("torch:sdpa-eff", sdpa_efficient), ("torch:eager", eager)):
                inner = 2 if N >= 4096 else 10
                try:
                    torch.cuda.empty_cache()
                    g = torch.Generator(device="cuda").manual_seed(1)
                    q = torch.randn(B, N, d, device="cuda", generator=g)
                    k = torch.randn(B, S, d, device="cuda", generator=g)
                    v = torch.randn(B, S, dv, device="cuda", generator=g)
                    go = torch.randn(B, N, dv, device="cuda", generator=g)
                    torch.cuda.reset_peak_memory_stats()

                    def fwd():
                        with torch.no_grad():
                            fn(q, k, v)

                    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))

                    def fwdbwd():
                        out = fn(qg, kg, vg)
                        out.backward(go)
                        qg.grad = kg.grad = vg.grad = None

                    results = [("fwd", time_it(fwd, args.reps, inner)), ("fwdbwd", time_it(fwdbwd, args.reps, inner))]
                    mem = torch.cuda.max_memory_allocated() / 2**20
                except RuntimeError as e:  # e.g. out of memory, or no kernel for these sizes
                    print("%-10s %-2s %4d %5d %5d %3d %4d %-15s failed: %s" % (model, net, B, N, S, d, dv, impl,
                                                                              str(e).splitlines()[0][:80]))
                    continue
                for pas, t in results:
                    bwd = pas == "fwdbwd"
                    fm, ff = nbytes(B, N, S, d, dv, bwd) / bw, flops(B, N, S, d, dv, bwd) / peak
                    print("%-10s %-2s %4d %5d %5d %3d %4d %-15s %-6s %10.3f %8.0f %8.2f %10.3f %10.3f %7.1f %7.1f %9.0f"
                          % (model, net, B, N, S, d, dv, impl, pas, t * 1e3, nbytes(B, N, S, d, dv, bwd) / t / 1e9,
                             flops(B, N, S, d, dv, bwd) / t / 1e12, fm * 1e3, ff * 1e3, t / fm, t / ff, mem))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
