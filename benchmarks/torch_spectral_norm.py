#!/usr/bin/env python3
"""PyTorch reference timings for one spectral-norm power iteration over
SAGAN-128's SN layers (ch = 64; the shapes bench_spectral_norm uses), to set
beside it: torch.nn.utils.spectral_norm's own power iteration (the hook run
in training mode, one iteration per layer, layer after layer) and, for
comparison, the same two matvecs and normalisations written out per layer.
Rows and their floors (bytes / HBM):
  torch mv+normalize        the power iteration alone, the engine's work:
                            W read twice, 8 sum(rows cols) + 8 sum(rows + cols)
                            bytes, bench_spectral_norm's floor. Compare the
                            engine's rows with this one.
  torch spectral_norm hook  compute_weight as a training forward runs it: the
                            two matvecs, a third (sigma = u . W v) and
                            weight / sigma, so W is read four times and
                            written once: 20 sum(rows cols) + 8 sum(rows + cols)
                            bytes; its floor_us and x_floor are against that.
Needs a CUDA device; prints a message and exits 0 without one.
Usage: python3 benchmarks/torch_spectral_norm.py [--reps 7] [--inner 20]
"""
import argparse
import sys

try:
    import torch
    import torch.nn.functional as F

    from torch_cuda_timing import time_it
except ImportError:  # pragma: no cover
    print("torch_spectral_norm.py: PyTorch is not installed; nothing to measure")
    sys.exit(0)

G = [(16384, 128), (1024, 9216), (1024, 9216), (1024, 1024), (512, 9216), (512, 4608), (512, 1024), (256, 4608),
     (256, 2304), (256, 512), (128, 2304), (128, 1152), (128, 256), (16, 128), (16, 128), (64, 128), (128, 64),
     (64, 1152), (64, 576), (64, 128), (3, 576)]
D = [(64, 27), (64, 576), (64, 3), (8, 64), (8, 64), (32, 64), (64, 32), (128, 576), (128, 1152), (128, 64),
     (256, 1152), (256, 2304), (256, 128), (512, 2304), (512, 4608), (512, 256), (1024, 4608), (1024, 9216),
     (1024, 512), (1024, 9216), (1024, 9216), (1, 1024), (1000, 1024)]


def hbm(name):
    if "H200" in name:
        return 4.8e12
    if "H100" in name:
        return 2.0e12 if "PCIe" in name else 3.35e12
    return float("nan")


def run_set(label, shapes, reps, inner, bw):
    torch.manual_seed(3)
    # Modules whose forward pre-hook runs the power iteration (training mode,
    # n_power_iterations = 1). The hook also recomputes W / sigma; the
    # explicit loop below isolates the iteration itself.
    mods = []
    for r, c in shapes:
        lin = torch.nn.Linear(c, r, bias=False).cuda()
        mods.append(torch.nn.utils.spectral_norm(lin, n_power_iterations=1, eps=1e-12))
    hooks = [m._forward_pre_hooks for m in mods]

    def hook_loop():
        for m, hk in zip(mods, hooks):
            for h in hk.values():
                h(m, None)

    ws = [m.weight_orig.detach() for m in mods]
    us = [m.weight_u.detach().clone() for m in mods]
    vs = [m.weight_v.detach().clone() for m in mods]

    def explicit_loop():
        with torch.no_grad():
            for w, u, v in zip(ws, us, vs):
                v.copy_(F.normalize(torch.mv(w.t(), u), dim=0, eps=1e-12))
                u.copy_(F.normalize(torch.mv(w, v), dim=0, eps=1e-12))

    # The power iteration's floor (bench_spectral_norm's): W read twice.
    floor_b = sum(8.0 * r * c + 8.0 * (r + c) for r, c in shapes)
    # The hook's own: three matvecs (v, u, then sigma) read W three times,
    # weight / sigma reads it once more and writes the normalised weight.
    hook_b = sum(20.0 * r * c + 8.0 * (r + c) for r, c in shapes)
    params = sum(r * c for r, c in shapes) / 1e6
    for impl, fn, b in (("torch spectral_norm hook", hook_loop, hook_b),
                        ("torch mv+normalize", explicit_loop, floor_b)):
        t = time_it(fn, reps, inner)
        print("%-6s %4d %8.2f %-25s %10.1f %8.0f %10.1f %7.2f" % (label, len(shapes), params, impl, t * 1e6,
                                                                 b / t / 1e9, b / bw * 1e6, t * bw / b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_spectral_norm.py: no CUDA device present; nothing to measure")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    name = torch.cuda.get_device_name(0)
    bw = hbm(name)
    print(f"device: {name}, HBM {bw / 1e12:.2f} TB/s; torch {torch.__version__}")
    print("note: floors: mv+normalize = the power iteration (W read twice, bench_spectral_norm's floor; compare the "
          "engine with this row); hook = compute_weight (W read 4x, written once: 2.5x the bytes)")
    print("%-6s %4s %8s %-25s %10s %8s %10s %7s" % ("set", "mats", "Mparams", "impl", "time_us", "GB/s", "floor_us",
                                                     "x_floor"))
    with torch.no_grad():
        for label, shapes in (("G", G), ("D", D), ("G+D", G + D)):
            run_set(label, shapes, args.reps, args.inner, bw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
