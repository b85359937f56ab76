"""Writes the training-trajectory goldens (tests/test_trajectory.cpp): ten full
training iterations of a tiny conditional SAGAN-32 with attention in float64,
by the PyTorch reference trainer (reference_trainer.py). Run with torch 1.13:

    /usr/bin/python3 tests/golden/make_trajectory_goldens.py

Output: tests/data/sagan_trajectory.{json,bin} (format of make_sagan_goldens.py:
a JSON index beside little-endian float64 / int64 values), holding
  inputs/...            what both trainers consume, shared by every case:
                        pixels (N, B, 1, 32, 32) real images as uint8
                        (image = pixels / 127.5 - 1), y (N, B) labels,
                        z_d (N, B, z) and y_fake_d (N, B) for the D steps,
                        z_g (10, B, z) and y_fake_g (10, B) for the G steps,
                        N = 10 * max n_dis; D step j of iteration s reads
                        index s * n_dis + j
  init/<variant>/G|D/   starting weights, SN vectors and BN statistics
  <case>/stats          (10, 6): loss_d, loss_g, d_real, d_fake, grad_norm_d,
                        grad_norm_g after each iteration (D values from the
                        iteration's last D step; norms 0 without clipping)
  <case>/G|D|G_ema/     every parameter and buffer after the 10 iterations
  <case>/opt_G|opt_D/   Adam state (step, exp_avg.<p>, exp_avg_sq.<p>)
  <case>/sample         G_ema in eval mode on inputs/z_g[0], inputs/y_fake_g[0]
meta.cases lists each case's variant, options and clipping counts.
`--dump DIR` also writes every tensor after every iteration to DIR (for
finding the first step where the engine departs; not checked in).
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sagan_goldens import TensorFile, config_meta  # noqa: E402
from reference_trainer import DInputs, GInputs, ReferenceTrainer, TrainOptions  # noqa: E402
from sagan_reference import Config, Discriminator, Generator  # noqa: E402

STEPS = 10
BATCH = 4
# variant: (pooled attention, classes); the unconditional one has no
# projection in D and affine batch norm in G.
VARIANTS = {"pooled": (True, 3), "paper": (False, 3), "pooled_uncond": (True, 0)}
# The EMA starts inside the run (steps 1-3 copy G, 4-10 average) with a short
# decay so that G_ema differs measurably from G.
EMA = dict(ema_decay=0.7, ema_start=4)
CASES = {
    # SAGAN's TTUR defaults: lr 1e-4 / 4e-4, betas (0, 0.9)
    "pooled": ("pooled", TrainOptions(**EMA)),
    # beta1 > 0 so the first-moment bias correction matters
    "paper": ("paper", TrainOptions(lr_g=2e-4, lr_d=3e-4, beta1=0.5, beta2=0.999, **EMA)),
    # two D steps per G step and gradient clipping at a threshold chosen in
    # main() (None) that clips some steps and not others; meta records how many
    "pooled_ndis2_clip": ("pooled", TrainOptions(n_dis=2, grad_clip=None, **EMA)),
    # unconditional (--unconditional): the labels of the inputs are ignored
    "pooled_uncond": ("pooled_uncond", TrainOptions(**EMA)),
}
STAT_KEYS = ["loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"]


def tiny_config(pooled, classes=3):
    return Config(resolution=32, ch=4, z_dim=8, num_classes=classes, pooled_attention=pooled, image_channels=1)


def make_inputs(gen, n_d):
    cfg = tiny_config(True)
    # Real images: smooth random shapes (4x4 noise upsampled, squashed) as
    # 8-bit pixels; both sides map them to [-1, 1] as the engine's loader
    # does, p / 127.5 - 1, exactly.
    low = torch.randn(n_d * BATCH, 1, 4, 4, generator=gen, dtype=torch.float64)
    smooth = torch.tanh(2 * F.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False))
    pix = torch.round((smooth + 1) * 127.5).clamp(0, 255).to(torch.uint8).view(n_d, BATCH, 1, 32, 32)
    return {
        "pixels": pix,
        "y": torch.randint(0, cfg.num_classes, (n_d, BATCH), generator=gen),
        "z_d": torch.randn(n_d, BATCH, cfg.z_dim, generator=gen, dtype=torch.float64),
        "y_fake_d": torch.randint(0, cfg.num_classes, (n_d, BATCH), generator=gen),
        "z_g": torch.randn(STEPS, BATCH, cfg.z_dim, generator=gen, dtype=torch.float64),
        "y_fake_g": torch.randint(0, cfg.num_classes, (STEPS, BATCH), generator=gen),
    }


def run_case(G, D, opts, inputs, dump=None):
    t = ReferenceTrainer(G, D, opts)
    rows = []
    for s in range(STEPS):
        d_in = [DInputs(inputs["pixels"][k].double() / 127.5 - 1.0, inputs["y"][k], inputs["z_d"][k], inputs["y_fake_d"][k])
                for k in range(s * opts.n_dis, (s + 1) * opts.n_dis)]
        st = t.step(d_in, GInputs(inputs["z_g"][s], inputs["y_fake_g"][s]))
        rows.append([st[k] for k in STAT_KEYS])
        if dump is not None:
            dump(s + 1, t)
    return t, torch.tensor(rows, dtype=torch.float64)


def add_final(tf, prefix, t):
    tf.add_state(prefix + "G/", t.G)
    tf.add_state(prefix + "D/", t.D)
    tf.add_state(prefix + "G_ema/", t.G_ema)
    for which in ("G", "D"):
        for k, v in t.optimizer_state(which).items():
            tf.add(prefix + "opt_" + which + "/" + k, v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    ap.add_argument("--dump", help="also write every tensor after every iteration here")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    gen = torch.Generator().manual_seed(20180521)
    max_ndis = max(o.n_dis for _, o in CASES.values())
    inputs = make_inputs(gen, STEPS * max_ndis)

    tf = TensorFile()
    for k, v in inputs.items():
        tf.add("inputs/" + k, v)
    init = {}
    for variant, (pooled, classes) in VARIANTS.items():
        torch.manual_seed(1000 + len(init))
        cfg = tiny_config(pooled, classes)
        G, D = Generator(cfg).double(), Discriminator(cfg).double()
        init[variant] = (G.state_dict(), D.state_dict(), cfg)
        tf.add_state("init/" + variant + "/G/", G)
        tf.add_state("init/" + variant + "/D/", D)

    meta = {"steps": STEPS, "batch": BATCH, "stat_keys": STAT_KEYS, "cases": {}}
    for case, (variant, opts) in CASES.items():
        g_state, d_state, cfg = init[variant]
        G, D = Generator(cfg).double(), Discriminator(cfg).double()
        G.load_state_dict(g_state)
        D.load_state_dict(d_state)
        if opts.grad_clip is None:
            # The median D gradient norm of the same run without clipping:
            # some steps clip, others do not.
            probe = copy.deepcopy(G), copy.deepcopy(D)
            _, rows = run_case(*probe, TrainOptions(**{**opts.__dict__, "grad_clip": 1e30}), inputs)
            norms = rows[:, 4].sort().values
            opts.grad_clip = float(norms[len(norms) // 2])
        dump = None
        if args.dump:
            dump = make_dumper(args.dump, case)
        t, rows = run_case(G, D, opts, inputs, dump)
        tf.add(case + "/stats", rows)
        add_final(tf, case + "/", t)
        with torch.no_grad():
            tf.add(case + "/sample", t.G_ema(inputs["z_g"][0], inputs["y_fake_g"][0]))
        clipped_d = int((rows[:, 4] > opts.grad_clip).sum()) if opts.grad_clip > 0 else 0
        clipped_g = int((rows[:, 5] > opts.grad_clip).sum()) if opts.grad_clip > 0 else 0
        meta["cases"][case] = {"variant": variant, "config": config_meta(cfg), "options": dict(opts.__dict__),
                               "clipped_last_d_step": clipped_d, "clipped_g_step": clipped_g}
        print(f"{case}: loss_d {rows[-1, 0]:.6f} loss_g {rows[-1, 1]:.6f} clip {opts.grad_clip} "
              f"(D clipped {clipped_d}/{STEPS} last D steps, G {clipped_g}/{STEPS})")
    os.makedirs(args.out, exist_ok=True)
    tf.write("sagan_trajectory", meta, args.out)


def make_dumper(root, case):
    def dump(step, t):
        tf = TensorFile()
        add_final(tf, "", t)
        os.makedirs(root, exist_ok=True)
        tf.write(f"{case}_step{step}", {"step": step}, root)
    return dump


if __name__ == "__main__":
    main()
