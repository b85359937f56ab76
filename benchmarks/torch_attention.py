#!/usr/bin/env python3
"""PyTorch reference timings for SAGAN's attention shapes to set beside
bench_attention, in each precision the engine's kernels have (--precisions):
  fp32  float32 tensors, TF32 off (the engine's fused and tc-fp32 rows);
  tf32  float32 tensors, TF32 allowed (torch.backends.cuda.matmul.allow_tf32;
        the engine's tc-tf32 rows);
  bf16  bfloat16 tensors (the engine's tc-bf16 rows, whose inputs stay fp32).
The impl column carries the precision after '@' (torch:sdpa@bf16). Rows:
  torch:sdpa      F.scaled_dot_product_attention(scale=1.0) as PyTorch
                  dispatches it, on 4-D (B, 1 head, N, d) tensors (its fused
                  backends take nothing else);
  torch:sdpa-eff  the same forced onto the memory-efficient backend (the only
                  fused fp32 kernel that takes dv != d);
  torch:eager     bmm -> softmax -> bmm.
Before the rows of each shape, one line names the backend the default
dispatch ran (read from the profiler's aten op names, forward and backward)
and which backends run these tensors at all when forced one at a time
(torch.nn.attention.sdpa_kernel), with the reason of those that refuse:
  sdpa backend SAGAN-32 G B=64: default efficient/efficient (fwd/bwd); runs: efficient math; refuses: flash (...)
Forward and forward+backward, batch 64 and 256. Same columns and floors as
bench_attention (see its header for the formulas): bytes at the tensors'
element size, FLOPs over the plain fp32 rate for fp32, the dense TF32
tensor-core rate for tf32 and the dense BF16 one for bf16, except: on sm80+
the memory-efficient backend's float32 GEMMs are CUTLASS tensor-op 3xTF32
(OpMultiplyAddFastF32) whatever allow_tf32 says, so the sdpa-eff@fp32 rows,
and the sdpa@fp32 rows when the default dispatch ran "efficient", take
max(fp32, dense TF32 / 3) as their FLOP rate (bench_attention's tc-fp32
floor); torch:eager@fp32 is cuBLAS SGEMM (TF32 off) and keeps the fp32 rate.
For the same reason sdpa-eff@tf32 (and sdpa@tf32 when the default ran
"efficient") run the very kernel of @fp32; a "note" line after the backend
line says so (their floor stays the dense TF32 one).
peak_MiB: the caching allocator's peak over that pass alone (reset before
each pass, the previous row's tensors freed first), inputs included.
Needs a CUDA device; prints a message and exits 0 without one.
Usage: python3 benchmarks/torch_attention.py [--reps 7] [--batches 64,256] [--precisions fp32,tf32,bf16]
"""
import argparse
import contextlib
import sys
import warnings

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
    ("SAGAN-64", "D", 1024, 256, 8, 32),
    ("SAGAN-128", "G", 4096, 1024, 16, 64),
    ("SAGAN-128", "D", 4096, 1024, 8, 32),
]


def flops(B, N, S, d, dv, bwd):
    bns = 2.0 * B * N * S
    return bns * (d + dv) + (bns * (3 * d + 2 * dv) if bwd else 0.0)


def nbytes(B, N, S, d, dv, bwd, elem=4):
    # The row statistics (N per batch) stay float32 in every precision.
    fwd = elem * B * (N * d + S * d + S * dv + N * dv) + 4 * B * N
    back = elem * B * (N * d + S * d + S * dv + 2 * N * dv + N * d + S * d + S * dv) + 4 * B * N
    return fwd + (back if bwd else 0.0)


def rates():
    """Device name, HBM bytes/s, FLOP rates: fp32 (plain), tf32 and bf16
    (dense tensor core), 3xtf32 (what a 3xTF32 kernel's float32 products can
    reach: max(fp32, tf32 / 3) on sm80+, fp32 below or when unknown); and
    whether the device is sm80+ (where PyTorch's memory-efficient SDPA runs
    float32 as 3xTF32)."""
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
    fp32 = p.multi_processor_count * lanes * 2 * clock
    # Dense tensor-core rates, datasheet, as benchmarks/cuda_bench.h: H100/H200
    # SXM 989.4 TFLOP/s bf16 for 132 SMs, A100 312 for 108; TF32 half of it.
    if (p.major, p.minor) == (9, 0):
        bf16 = 989.4e12 * p.multi_processor_count / 132.0
    elif (p.major, p.minor) == (8, 0):
        bf16 = 312e12 * p.multi_processor_count / 108.0
    else:
        bf16 = float("nan")
    tf32 = bf16 / 2
    sm80 = p.major >= 8
    x3 = max(fp32, tf32 / 3) if sm80 and tf32 == tf32 else fp32  # tf32 == tf32: not NaN
    return name, bw, {"fp32": fp32, "tf32": tf32, "bf16": bf16, "3xtf32": x3}, sm80


# precision -> (tensor dtype, TF32 allowed)
PRECISIONS = {"fp32": ("float32", False), "tf32": ("float32", True), "bf16": ("bfloat16", False)}


# The aten op each SDPA backend runs under (what the profiler records).
BACKEND_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable",
}


def sdpa4(q, k, v):
    """(B, N, d) tensors as one head, (B, 1, N, d), scores unscaled."""
    out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0)
    return out.squeeze(1)


def efficient_only():
    """The context that forces the memory-efficient backend: entered once
    around a row's timing (the backward follows the forward's backend)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION)


def backend_ran(fn):
    """The SDPA backend names whose aten ops ran inside fn()."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
        torch.cuda.synchronize()
    names = {e.name for e in prof.events()}
    # Prefixes: the backward ops are the forward's name + "_backward".
    found = [label for op, label in BACKEND_OPS.items() if any(n.startswith(op) for n in names)]
    return "+".join(found) or "none"


def backend_report(q, k, v, go):
    """One line: the default dispatch's backend (forward, backward) and each
    backend forced alone: runs, or refuses with PyTorch's first reason; and
    the default forward's backend name."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
    holder = {}

    def fwd():
        holder["out"] = sdpa4(qg, kg, vg)

    default_fwd = backend_ran(fwd)
    default_bwd = backend_ran(lambda: holder["out"].backward(go))
    if default_bwd == "none" and default_fwd == "math":
        default_bwd = "math (autograd)"
    runs, refuses = [], []
    for name, b in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                    ("cudnn", getattr(SDPBackend, "CUDNN_ATTENTION", None)), ("math", SDPBackend.MATH)):
        if b is None:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with sdpa_kernel(b), torch.no_grad():
                    sdpa4(q, k, v)
                torch.cuda.synchronize()
                runs.append(name)
            except RuntimeError as e:
                # PyTorch warns "<backend> not used because:" and then the reason.
                msgs = [str(w.message).splitlines()[0] for w in caught]
                why = [m for m in msgs if "not used because" not in m] or msgs or [str(e).splitlines()[0]]
                refuses.append(f"{name} ({why[0][:90]})")
    line = f"default {default_fwd}/{default_bwd} (fwd/bwd); runs: {' '.join(runs)}; refuses: {'; '.join(refuses) or '-'}"
    return line, default_fwd


def eager(q, k, v):
    return torch.bmm(torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1), v)


def measure(fn, B, N, S, d, dv, dtype, reps, inner):
    """[(pass, seconds, peak MiB)] for fwd and fwdbwd. Every tensor is local,
    so the previous row's are gone before this one allocates; the peak is
    reset before each pass and read after it, so each pass reports its own
    (inputs included)."""
    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(B, N, d, device="cuda", generator=g, dtype=dtype)
    k = torch.randn(B, S, d, device="cuda", generator=g, dtype=dtype)
    v = torch.randn(B, S, dv, device="cuda", generator=g, dtype=dtype)

    def fwd():
        with torch.no_grad():
            fn(q, k, v)

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t_fwd = time_it(fwd, reps, inner)
    peak_fwd = torch.cuda.max_memory_allocated() / 2**20

    go = torch.randn(B, N, dv, device="cuda", generator=g, dtype=dtype)
    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))

    def fwdbwd():
        out = fn(qg, kg, vg)
        out.backward(go)
        qg.grad = kg.grad = vg.grad = None

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t_bwd = time_it(fwdbwd, reps, inner)
    peak_bwd = torch.cuda.max_memory_allocated() / 2**20
    return [("fwd", t_fwd, peak_fwd), ("fwdbwd", t_bwd, peak_bwd)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    args = ap.parse_args()
    precisions = args.precisions.split(",")
    for prec in precisions:
        if prec not in PRECISIONS:
            print(f"torch_attention.py: --precisions: '{prec}' is not one of {', '.join(PRECISIONS)}", file=sys.stderr)
            return 2
    if not torch.cuda.is_available():
        print("torch_attention.py: no CUDA device present; nothing to measure")
        return 0
    name, bw, peaks, sm80 = rates()
    print(f"device: {name}, HBM {bw / 1e12:.2f} TB/s (datasheet), fp32 {peaks['fp32'] / 1e12:.1f}, "
          f"tf32 {peaks['tf32'] / 1e12:.1f}, bf16 {peaks['bf16'] / 1e12:.1f}, 3xtf32 {peaks['3xtf32'] / 1e12:.1f} "
          f"TFLOP/s; torch {torch.__version__}")
    if sm80:
        print("note: float32 on the memory-efficient SDPA backend (sdpa-eff rows; sdpa rows whose default is "
              "efficient) is 3xTF32 whatever allow_tf32: their @fp32 floor_flop uses the 3xtf32 rate, and @tf32 "
              "runs the @fp32 kernel")
    hdr = ("model", "n", "B", "N", "S", "d", "dv", "impl", "pass", "time_ms", "GB/s", "TFLOP/s", "floor_mem",
           "floor_flop", "x_mem", "x_flop", "peak_MiB")
    print("%-10s %-2s %4s %5s %5s %3s %4s %-19s %-6s %10s %8s %8s %10s %10s %7s %7s %9s" % hdr)
    for B, prec, (model, net, N, S, d, dv) in [(B, prec, shape) for B in [int(x) for x in args.batches.split(",")]
                                                for prec in precisions for shape in SHAPES]:
        dtype = getattr(torch, PRECISIONS[prec][0])
        torch.backends.cuda.matmul.allow_tf32 = PRECISIONS[prec][1]
        elem = torch.tensor([], dtype=dtype).element_size()
        default_fwd = None  # unknown unless the report below tells
        tensors = None
        try:
            g = torch.Generator(device="cuda").manual_seed(1)
            tensors = [torch.randn(*shape, device="cuda", generator=g, dtype=dtype)
                       for shape in ((B, N, d), (B, S, d), (B, S, dv), (B, N, dv))]
            line, default_fwd = backend_report(*tensors)
            print(f"sdpa backend {model} {net} B={B} {prec}: {line}")
        except Exception as e:  # the report is a note; the timings below still run
            print(f"sdpa backend {model} {net} B={B} {prec}: could not tell: {type(e).__name__}: {str(e)[:100]}")
        tensors = None  # freed before the rows' peaks are taken
        # float32 on the memory-efficient backend (sm80+): 3xTF32 whatever
        # allow_tf32. An unknown default (no report, no op seen) is taken as
        # that backend, the one PyTorch picks for float32 here.
        sdpa_eff_kernel = default_fwd in (None, "none", "efficient")
        if prec == "tf32" and sm80:
            which = ("torch:sdpa@tf32 and torch:sdpa-eff@tf32 run" if default_fwd == "efficient"
                     else "torch:sdpa-eff@tf32 runs")
            print(f"note {model} {net} B={B} tf32: {which} the memory-efficient kernel, 3xTF32 whatever "
                  f"allow_tf32: the same kernel as @fp32")
        for base, fn, ctx in (("torch:sdpa", sdpa4, contextlib.nullcontext),
                              ("torch:sdpa-eff", sdpa4, efficient_only),
                              ("torch:eager", eager, contextlib.nullcontext)):
            impl = f"{base}@{prec}"
            inner = 2 if N >= 4096 else 10
            peak = peaks[prec]
            if prec == "fp32" and sm80 and (base == "torch:sdpa-eff" or (base == "torch:sdpa" and sdpa_eff_kernel)):
                peak = peaks["3xtf32"]
            try:
                torch.cuda.empty_cache()
                with ctx():
                    results = measure(fn, B, N, S, d, dv, dtype, args.reps, inner)
            except (RuntimeError, ImportError) as e:  # e.g. out of memory, or no kernel for these sizes
                print("%-10s %-2s %4d %5d %5d %3d %4d %-19s failed: %s" % (model, net, B, N, S, d, dv, impl,
                                                                          str(e).splitlines()[0][:80]))
                continue
            for pas, t, mem in results:
                bwd = pas == "fwdbwd"
                fm, ff = nbytes(B, N, S, d, dv, bwd, elem) / bw, flops(B, N, S, d, dv, bwd) / peak
                print("%-10s %-2s %4d %5d %5d %3d %4d %-19s %-6s %10.3f %8.0f %8.2f %10.3f %10.3f %7.1f %7.1f %9.0f"
                      % (model, net, B, N, S, d, dv, impl, pas, t * 1e3, nbytes(B, N, S, d, dv, bwd, elem) / t / 1e9,
                         flops(B, N, S, d, dv, bwd) / t / 1e12, fm * 1e3, ff * 1e3, t / fm, t / ff, mem))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
