#!/usr/bin/python3
"""PyTorch twin of benchmarks/bench_train_step.cpp: one whole SAGAN training
iteration with the reference model (tests/golden/sagan_reference.py, the
engine's network name for name), the same algorithm as models/trainer.h:

  D step (n_dis = 1): real x, y (synthetic, kept on the CPU and moved to the
    device each step like the engine's loader batches); z ~ N(0, I),
    y_fake ~ U{classes}; fake = G(z, y_fake) under no_grad (G in training
    mode: BN batch statistics, one power iteration per SN layer);
    D sees cat([x, fake]) as one batch; hinge loss; Adam step on D.
  G step: fresh z, y_fake; D's parameters frozen (requires_grad_(False));
    loss_G = -mean(D(G(z, y_fake))); Adam step on G.
  EMA: G_ema = decay * G_ema + (1 - decay) * G for parameters, buffers
    copied (BN statistics, SN vectors), from the first step; as multi-tensor
    (_foreach) ops: torch._foreach_lerp_(G_ema, G, 1 - decay) where torch has
    it (2.x; the same formula, rounded as G_ema + (1 - decay) (G - G_ema)),
    else _foreach_mul_ then _foreach_add_; buffers by _foreach_copy_ where
    it exists, else one copy_ each.
Adam betas (0, 0.9), lr 1e-4 (G) / 4e-4 (D), eps 1e-8. Spectral norm is
torch.nn.utils.spectral_norm: one power iteration per training forward per
layer, as torch does it. The attention blocks do not keep their maps
(SelfAttention.keep_map off), which the reference model otherwise holds
until the next forward (1 GiB a map at SAGAN-128, batch 64).

Output, one line per (configuration, implementation), like the C++ side:
  name<TAB>impl<TAB>device<TAB>median s/iter<TAB>min s/iter<TAB>peak MiB
impl is torch-eager, or torch-compile (CUDA with PyTorch 2.x only: G and D
wrapped in torch.compile(dynamic=False): D sees batch 2B in the D step
and B in the G step, and gets one static graph for each rather than a
dynamic-batch one; skipped with a message on torch 1.x or when
compilation fails). Peak is the peak resident set on the CPU,
torch.cuda.max_memory_allocated on CUDA.

--precision (CUDA) matches the engine's --precision: fp32 turns TF32 off
for matmuls and cuDNN (PyTorch allows it in cuDNN by default), tf32 allows
it in both, bf16 runs the forward passes under torch.autocast(bfloat16)
(fp32 weights, Adam and BN statistics, as the engine keeps them). A
precision other than fp32 is appended to impl: torch-eager@bf16.

  /usr/bin/python3 benchmarks/torch_train_step.py [--device auto|cpu|cuda] [--resolution R ...]
      [--ch C] [--batch B] [--classes K] [--repeats N] [--warmup N] [--threads T] [--no-compile | --compile-only]
      [--precision fp32|tf32|bf16]
"""
import argparse
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from sagan_reference import Config, Discriminator, Generator, SelfAttention  # noqa: E402

EMA_DECAY = 0.9999


class Step:
    """One training iteration's state: models, optimisers, data, RNG."""

    def __init__(self, opt, res, device, compile_models):
        torch.manual_seed(0)
        self.device = device
        self.batch = opt.batch
        self.classes = opt.classes
        cfg = Config(resolution=res, ch=opt.ch, num_classes=opt.classes, image_channels=3)
        self.z_dim = cfg.z_dim
        self.G = Generator(cfg).to(device)
        self.D = Discriminator(cfg).to(device)
        self.G_ema = Generator(cfg).to(device)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.eval()
        for net in (self.G, self.D, self.G_ema):
            for m in net.modules():
                if isinstance(m, SelfAttention):
                    m.keep_map = False
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=1e-4, betas=(0.0, 0.9), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=4e-4, betas=(0.0, 0.9), eps=1e-8)
        self.g_fwd, self.d_fwd = self.G, self.D
        if compile_models:
            # Static shapes: D's two batch sizes compile two graphs, not one
            # with a symbolic batch.
            self.g_fwd, self.d_fwd = torch.compile(self.G, dynamic=False), torch.compile(self.D, dynamic=False)
        # Synthetic "data set": 4 batches of 8-bit-like images in [-1, 1] on the CPU.
        self.real = [(torch.randint(0, 256, (opt.batch, 3, res, res)).float() / 127.5 - 1.0,
                      torch.randint(0, max(opt.classes, 1), (opt.batch,))) for _ in range(4)]
        self.i = 0
        self.bf16 = opt.precision == "bf16"
        self.ema_params, self.g_params = list(self.G_ema.parameters()), list(self.G.parameters())
        self.ema_bufs, self.g_bufs = list(self.G_ema.buffers()), list(self.G.buffers())

    def labels(self):
        if self.classes == 0:
            return None
        return torch.randint(0, self.classes, (self.batch,), device=self.device)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def __call__(self):
        B = self.batch
        x, y = self.real[self.i % len(self.real)]
        self.i += 1
        x, y = x.to(self.device), y.to(self.device)
        # D step
        z, yf = torch.randn(B, self.z_dim, device=self.device), self.labels()
        with torch.no_grad(), self.autocast():
            fake = self.g_fwd(z, yf)
        y_all = torch.cat([y, yf]) if self.classes > 0 else None
        with self.autocast():
            out = self.d_fwd(torch.cat([x, fake]), y_all).float()
        loss_d = F.relu(1.0 - out[:B]).mean() + F.relu(1.0 + out[B:]).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # G step with D frozen
        self.D.requires_grad_(False)
        z, yf = torch.randn(B, self.z_dim, device=self.device), self.labels()
        with self.autocast():
            out = self.d_fwd(self.g_fwd(z, yf), yf).float()
        loss_g = -out.mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        # EMA (decay 0.9999), buffers follow G exactly
        with torch.no_grad():
            ema_update(self.ema_params, self.g_params, self.ema_bufs, self.g_bufs, EMA_DECAY)
        return loss_d.item(), loss_g.item()


def ema_update(ema, params, ema_bufs, bufs, decay):
    """ema = decay * ema + (1 - decay) * params, in multi-tensor ops; buffers
    copied. _foreach_lerp_ (torch 2.x) computes ema + w (params - ema), the
    same formula with its own rounding; the fallback is the per-tensor
    mul_(decay).add_(params, alpha=1 - decay) it replaces, batched."""
    if hasattr(torch, "_foreach_lerp_"):
        torch._foreach_lerp_(ema, params, 1 - decay)
    else:
        torch._foreach_mul_(ema, decay)
        torch._foreach_add_(ema, params, alpha=1 - decay)
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(ema_bufs, bufs)
    else:
        for e, b in zip(ema_bufs, bufs):
            e.copy_(b)


def peak_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(opt, res, device, impl):
    step = Step(opt, res, device, impl == "torch-compile")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    secs = []
    for i in range(opt.warmup + opt.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= opt.warmup:
            secs.append(time.perf_counter() - t0)
        elif i == 0:  # torch.compile's first compile lands here: says where a step limit went
            print(f"torch_train_step.py: {impl} SAGAN-{res}: first iteration {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    secs.sort()
    name = f"SAGAN-{res} ch{opt.ch} b{opt.batch}"
    if opt.precision != "fp32":
        impl = f"{impl}@{opt.precision}"
    print(f"{name}\t{impl}\t{device}\t{secs[len(secs) // 2]:.4f}\t{secs[0]:.4f}\t{peak_mib(device):.0f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resolution", type=int, action="append")
    ap.add_argument("--ch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, help="timed iterations (default 5 on the CPU, 20 on CUDA)")
    ap.add_argument("--warmup", type=int,
                    help="untimed first iterations (default 2 on the CPU, 5 on CUDA: torch.compile compiles "
                         "in them, D twice since its requires_grad flips)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                    help="torch.set_num_threads on the CPU (default: OMP_NUM_THREADS or 2)")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile on CUDA")
    ap.add_argument("--compile-only", action="store_true",
                    help="only the torch.compile rows (CUDA), e.g. as a separate step after the eager ones")
    ap.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                    help="CUDA: the products' precision, as the engine's --precision (default fp32: no TF32)")
    opt = ap.parse_args()
    # Before any work (two warm-up iterations of SAGAN-32 take a minute on a CPU).
    if (opt.repeats is not None and opt.repeats < 1) or (opt.warmup is not None and opt.warmup < 0) or opt.threads < 1:
        sys.exit("torch_train_step.py: --repeats and --threads must be at least 1, --warmup at least 0")
    # The engine's first rules (SaganConfig), so that both sides refuse alike
    # rather than this one with a shape error deep in the model.
    for r in opt.resolution or []:
        if r < 32 or r & (r - 1):
            sys.exit(f"torch_train_step.py: --resolution must be a power of two >= 32, got {r}")
    if opt.ch < 1 or opt.batch < 1 or opt.classes < 0:
        sys.exit(f"torch_train_step.py: --ch and --batch must be at least 1, --classes at least 0 (got {opt.ch}, "
                 f"{opt.batch}, {opt.classes})")
    torch.backends.cuda.matmul.allow_tf32 = opt.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = opt.precision == "tf32"
    # What GAN training scripts set (BigGAN-PyTorch, StudioGAN): cuDNN picks
    # its algorithms by timing, in the warm-up iterations.
    torch.backends.cudnn.benchmark = True
    name = opt.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch_train_step.py: --device {opt.device}: torch sees no CUDA device")
    if opt.repeats is None:
        opt.repeats = 20 if device.type == "cuda" else 5
    if opt.warmup is None:
        opt.warmup = 5 if device.type == "cuda" else 2
    torch.set_num_threads(opt.threads)
    resolutions = opt.resolution or ([32, 128] if device.type == "cuda" else [32])
    failed = False
    for res in resolutions:
        if not opt.compile_only:
            bench(opt, res, device, "torch-eager")
        if device.type != "cuda" or opt.no_compile:
            continue
        if not hasattr(torch, "compile"):
            print(f"torch_train_step.py: torch {torch.__version__} has no torch.compile; torch-compile skipped",
                  file=sys.stderr)
            continue
        try:
            bench(opt, res, device, "torch-compile")
        except Exception as e:  # a compiler failure is a result to report, not a crash
            print(f"torch_train_step.py: torch-compile at {res} failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)  # the other rows were printed; the step shows the failure


if __name__ == "__main__":
    main()
