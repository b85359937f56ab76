#!/usr/bin/python3
"""Train the PyTorch reference SAGAN the way a sagan-train run was configured.

The matched-quality comparison of docs/training.md ("Against PyTorch at equal
budget", issue 16): the engine trains with sagan-train; this script trains the
PyTorch reference (sagan_reference.py, the engine's network name for name)
with the reference trainer (reference_trainer.py, checked step for step
against the engine by tests/test_trajectory.cpp) from the SAME settings,
read from the engine run's config.json: architecture and widths, data set and
preprocessing (bilinear / nearest / pad to the resolution, [-1, 1], optional
horizontal flips), batch, steps, learning rates, betas, n_dis, EMA, clipping,
seed. What is its own, as for any PyTorch user: the initial weights
(xavier-uniform, the same scheme as the engine, from torch's generator), the
data order, the latents and labels (torch.Generator(seed)).

It writes checkpoints in the engine's format (G., D. and G_ema. sections,
metadata format/step/config; no optimiser state, so they cannot be resumed)
so that the engine's judges read them as they read the engine's own:

    sagan-eval RUN/checkpoints/step_00005000.safetensors --dataset fashion-mnist --split test ...
    sagan-class-diversity RUN/checkpoints/step_00005000.safetensors -n 500

and RUN/metrics.csv (step, loss_d, loss_g, d_real, d_fake, seconds).

    /usr/bin/python3 tests/golden/train_reference.py --like ENGINE_RUN/config.json --run-dir RUN
        [--seed S] [--steps N] [--checkpoint-every K] [--threads T]

Needs torch (Debian's python3-torch 1.13) and numpy; Fashion-MNIST from the
config's data path (default Debian's /usr/share/datasets/fashion-mnist) or a
--dataset folder of PNGs (class subfolders, as sagan-train reads them).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_trainer import ReferenceTrainer, TrainOptions, draw_inputs  # noqa: E402
from sagan_reference import Config, Discriminator, Generator  # noqa: E402

FORMAT = "sagan-checkpoint-1"
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def fail(msg):
    sys.exit(f"train_reference.py: {msg}")


# ---------------------------------------------------------------- data

def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        blob = f.read()
    magic, = struct.unpack(">I", blob[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, blob[4:4 + 4 * nd])
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(dir_, stem):
    for p in (os.path.join(dir_, stem + ".gz"), os.path.join(dir_, stem)):
        if os.path.exists(p):
            return p
    fail(f"{dir_}/{stem}(.gz) not found")


def load_fashion_mnist(dir_):
    x = read_idx(find(dir_, "train-images-idx3-ubyte"))
    y = read_idx(find(dir_, "train-labels-idx1-ubyte"))
    return x[:, None].astype(np.float32), y.astype(np.int64)  # (N, 1, 28, 28) in [0, 255]


def load_folder(dir_, channels):
    from PIL import Image
    classes = sorted(d for d in os.listdir(dir_) if os.path.isdir(os.path.join(dir_, d)))
    xs, ys = [], []
    for label, c in enumerate(classes):
        for name in sorted(os.listdir(os.path.join(dir_, c))):
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                img = Image.open(os.path.join(dir_, c, name)).convert("L" if channels == 1 else "RGB")
                a = np.asarray(img, dtype=np.float32)
                xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
                ys.append(label)
    if not xs:
        fail(f"{dir_}: no images in class subfolders")
    return np.stack(xs), np.array(ys, dtype=np.int64)


def to_resolution(x, res, mode):
    """(N, C, h, w) in [0, 255] -> (N, C, res, res) in [-1, 1], as models/data/loader.cpp."""
    t = torch.from_numpy(x)
    h, w = t.shape[2:]
    if (h, w) != (res, res):
        if h > res or w > res:
            fail(f"images are {h}x{w}, larger than the resolution {res}: this script only upscales")
        if mode == "pad":
            top, left = (res - h) // 2, (res - w) // 2
            t = F.pad(t, (left, res - w - left, top, res - h - top))
        elif mode == "nearest":
            t = F.interpolate(t, size=(res, res), mode="nearest-exact")
        else:
            t = F.interpolate(t, size=(res, res), mode="bilinear", align_corners=False)
    return t / 127.5 - 1.0


def batches(x, y, batch, hflip, gen):
    """Endless (x, y) batches: a fresh permutation per epoch, the last partial batch dropped."""
    n = x.shape[0]
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            xb = x[idx]
            if hflip:
                flip = torch.rand(batch, generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            yield xb, y[idx]


# ---------------------------------------------------------------- checkpoints

_DT = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_checkpoint(path, sections, step, config_json):
    # metadata "trainer" tells these files from sagan-train's (which have none)
    """safetensors in the engine's checkpoint layout, written atomically."""
    header, blobs, off = {}, [], 0
    for prefix, module in sections:
        for k, v in module.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            b = v.detach().contiguous().cpu().numpy().tobytes()
            header[prefix + k] = {"dtype": _DT[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
    header["__metadata__"] = {"format": FORMAT, "step": str(step), "config": config_json,
                              "trainer": "tests/golden/train_reference.py, torch " + torch.__version__}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--like", required=True, help="config.json of the sagan-train run to mirror")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--seed", type=int, help="default: the config's")
    ap.add_argument("--steps", type=int, help="default: the config's")
    ap.add_argument("--checkpoint-every", type=int, help="default: the config's")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    try:
        with open(a.like) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"--like {a.like}: {e}")
    seed = cfg["seed"] if a.seed is None else a.seed
    steps = cfg["steps"] if a.steps is None else a.steps
    every = cfg["checkpoint_every"] if a.checkpoint_every is None else a.checkpoint_every
    cfg.update(seed=seed, steps=steps, checkpoint_every=every, run_dir=a.run_dir)
    m = cfg["model"]
    torch.set_num_threads(a.threads)
    torch.manual_seed(seed)  # the initial weights
    gen = torch.Generator().manual_seed(seed + 1)  # data order, flips, latents, labels

    if cfg["dataset"] == "fashion-mnist":
        x, y = load_fashion_mnist(cfg.get("data_path") or FMNIST_DIR)
    elif cfg["dataset"] == "folder":
        x, y = load_folder(cfg["data_path"], m["image_channels"])
    else:
        fail(f"dataset {cfg['dataset']!r}: this script reads fashion-mnist and folder")
    x = to_resolution(x, m["resolution"], cfg.get("resize", "bilinear"))
    y = torch.from_numpy(y)
    model = Config(resolution=m["resolution"], ch=m["ch"], z_dim=m["z_dim"], num_classes=m["num_classes"],
                   g_attn_res=m["g_attn_res"], d_attn_res=m["d_attn_res"], pooled_attention=m["pooled_attention"],
                   image_channels=m["image_channels"], g_ch=m.get("g_ch"), d_ch=m.get("d_ch"))
    G, D = Generator(model), Discriminator(model)
    opts = TrainOptions(lr_g=cfg["lr_g"], lr_d=cfg["lr_d"], beta1=cfg["beta1"], beta2=cfg["beta2"],
                        adam_eps=cfg["adam_eps"], n_dis=cfg["n_dis"], ema_decay=cfg["ema_decay"],
                        ema_start=cfg["ema_start"], grad_clip=cfg["grad_clip"])
    if cfg.get("diffaug", "none") != "none":
        fail("DiffAugment is not in the reference trainer")
    tr = ReferenceTrainer(G, D, opts)

    os.makedirs(os.path.join(a.run_dir, "checkpoints"), exist_ok=True)
    config_json = json.dumps(cfg, indent=2, sort_keys=True)
    with open(os.path.join(a.run_dir, "config.json"), "w") as f:
        f.write(config_json + "\n")
    stream = batches(x, y, cfg["batch_size"], cfg.get("hflip", False), gen)
    log = open(os.path.join(a.run_dir, "metrics.csv"), "w")
    log.write("step,loss_d,loss_g,d_real,d_fake,seconds\n")
    t0 = time.time()
    for step in range(1, steps + 1):
        d_in, g_in = draw_inputs(stream, model, opts.n_dis, gen)
        s = tr.step(d_in, g_in)
        if step % a.log_every == 0 or step == steps:
            el = time.time() - t0
            log.write(f"{step},{s['loss_d']:.6f},{s['loss_g']:.6f},{s['d_real']:.6f},{s['d_fake']:.6f},{el:.1f}\n")
            log.flush()
            print(f"step {step}/{steps}  loss_d {s['loss_d']:.4f}  loss_g {s['loss_g']:.4f}  "
                  f"{step / el:.2f} it/s", flush=True)
        if step % every == 0 or step == steps:
            save_checkpoint(os.path.join(a.run_dir, "checkpoints", f"step_{step:08d}.safetensors"),
                            [("G.", G), ("D.", D), ("G_ema.", tr.G_ema)], step, config_json)


if __name__ == "__main__":
    main()
