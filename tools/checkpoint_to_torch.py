#!/usr/bin/python3
"""Load a sagan-train checkpoint into the PyTorch reference model.

Builds the reference generator and discriminator (tests/golden/sagan_reference.py,
the engine's network name for name) from the config JSON in the checkpoint's
metadata and loads G_ema.* (or G.* with --weights g) and D.* with strict name
and shape matching. Then, as asked:

  --save OUT.pt        torch.save a dict {"config", "step", "G", "G_ema", "D",
                       "opt_G", "opt_D"} of state dicts (the optimisers as
                       torch.optim.Adam state dicts over G/D.parameters()),
                       written to a temporary file and renamed into place.
  -n N [--seed S] [--classes 0,3] [--truncation T]
                       generate N images in eval mode from the same z and y
                       that `sagan-sample -n N --seed S ...` draws (the engine's
                       Philox stream is re-derived here; docs/checkpoints.md),
  --png OUT.png        ... and save them as a grid like sagan-sample,
  --compare-png P.png  ... and compare with sagan-sample's grid P.png (8-bit:
                       prints the largest difference in pixel levels),
  --dump OUT.safetensors  ... and write z, y, images (and D's eval-mode scores
                       of the images as d_scores) for a float comparison.

Runs with /usr/bin/python3 (torch 1.13). Reading the checkpoint uses the
`safetensors` package when it is importable
(`/usr/bin/python3 -m pip install --break-system-packages safetensors`), and
otherwise a small reader of the format built in here.

  /usr/bin/python3 tools/checkpoint_to_torch.py RUN_DIR_OR_CKPT [--weights ema|g] [--save OUT.pt]
      [-n N --seed S --classes LIST --truncation T --png OUT.png --compare-png P.png --dump OUT.safetensors]
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from sagan_reference import Config, Discriminator, Generator  # noqa: E402

FORMAT = "sagan-checkpoint-1"


def fail(msg):
    sys.exit(f"checkpoint_to_torch.py: {msg}")


# ---------------------------------------------------------------- reading

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "F16": torch.float16,
           "BF16": torch.bfloat16, "I32": torch.int32, "U8": torch.uint8}


def _read_builtin(path):
    """safetensors without the package: u64 header length, JSON header, data."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} exceeds the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n])
    except ValueError:
        fail(f"{path}: the header is not JSON: not a safetensors file, or a damaged one")
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            fail(f"{path}: tensor '{name}' has dtype {info['dtype']}, not one this reader knows")
        begin, end = info["data_offsets"]
        want = math.prod(info["shape"]) * torch.empty(0, dtype=_DTYPES[info["dtype"]]).element_size()
        if not 0 <= begin <= end <= len(data) or end - begin != want:
            fail(f"{path}: tensor '{name}' lies at bytes [{begin}, {end}) of {len(data)} and needs {want}: "
                 f"the file is cut short or damaged")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=_DTYPES[info["dtype"]]) if end > begin else \
            torch.empty(0, dtype=_DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def read_checkpoint(path, reader="auto"):
    """(tensors by name, metadata) of a safetensors file."""
    if reader in ("auto", "package"):
        try:
            from safetensors import safe_open
        except ImportError:
            if reader == "package":
                fail("the safetensors package is not importable by this python "
                     "(/usr/bin/python3 -m pip install --break-system-packages safetensors)")
        else:
            try:
                with safe_open(path, framework="pt") as f:
                    return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
            except Exception as e:  # the package's SafetensorError, OSError
                fail(f"{path}: {e} (cut short, or not a safetensors file)")
    return _read_builtin(path)


def resolve_checkpoint(path):
    """A .safetensors file, or a run directory's newest checkpoint: the highest
    step among checkpoints/step_<digits>.safetensors, as sagan-sample picks it.
    Copies under other names (step_best.safetensors) are never the newest."""
    if os.path.isdir(path):
        d = os.path.join(path, "checkpoints")
        steps = [(int(m.group(1)), n) for n in (os.listdir(d) if os.path.isdir(d) else [])
                 if (m := re.fullmatch(r"step_(\d+)\.safetensors", n))]
        if not steps:
            fail(f"{path}: a directory without checkpoints/step_<digits>.safetensors")
        return os.path.join(d, max(steps)[1])
    if not os.path.exists(path):
        fail(f"{path}: no such file or directory")
    return path


def config_from_metadata(meta, path):
    if meta.get("format") != FORMAT:
        fail(f"{path}: not a sagan training checkpoint (metadata 'format' is {meta.get('format')!r}, "
             f"expected {FORMAT!r})")
    if "config" not in meta:
        fail(f"{path}: checkpoint has no 'config' metadata")
    try:
        cfg = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        fail(f"{path}: the checkpoint's 'config' metadata is not JSON ({e})")
    m = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(m, dict):
        fail(f"{path}: the checkpoint's config has no 'model' settings")
    # g_ch / d_ch: absent in checkpoints from before they existed (then ch is both).
    try:
        model = Config(resolution=m["resolution"], ch=m["ch"], z_dim=m["z_dim"], num_classes=m["num_classes"],
                       g_attn_res=m["g_attn_res"], d_attn_res=m["d_attn_res"],
                       pooled_attention=m["pooled_attention"], image_channels=m["image_channels"],
                       g_ch=m.get("g_ch"), d_ch=m.get("d_ch"))
    except KeyError as e:
        fail(f"{path}: the checkpoint's model settings have no {e.args[0]!r}")
    return cfg, model


def section(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_strict(module, state, what, path):
    """load_state_dict(strict=True) with an error that lists the names."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        fail(f"{path}: {what} does not match the reference model: missing {missing[:8]}"
             f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            fail(f"{path}: {what}{k} has shape {tuple(v.shape)}, the reference model has {tuple(own[k].shape)}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def adam_state(params, named, state, cfg, lr):
    """torch.optim.Adam state dict from the engine's opt_X.* tensors."""
    opt = torch.optim.Adam(params, lr=lr, betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"])
    sd = opt.state_dict()
    step = float(state["step"].item())
    for i, (name, _) in enumerate(named):
        for key in ("exp_avg." + name, "exp_avg_sq." + name):
            if key not in state:
                fail(f"optimiser state has no tensor '{key}'")
        sd["state"][i] = {"step": torch.tensor(step), "exp_avg": state["exp_avg." + name].clone(),
                          "exp_avg_sq": state["exp_avg_sq." + name].clone()}
    return sd


# ---------------------------------------------------------------- sagan-sample's z and y

_M0, _M1, _W0, _W1, _MASK = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85, 0xFFFFFFFF


def _philox(counter, seed):
    c = [counter & _MASK, counter >> 32, 0, 0]
    k = [seed & _MASK, seed >> 32]
    for _ in range(10):
        p0, p1 = _M0 * c[0], _M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & _MASK, p1 & _MASK, ((p0 >> 32) ^ c[3] ^ k[1]) & _MASK, p0 & _MASK]
        k = [(k[0] + _W0) & _MASK, (k[1] + _W1) & _MASK]
    return c


class PhiloxStream:
    """core/rng.h's Generator: Philox4x32-10 blocks, Box-Muller normals (one per two uniforms)."""

    def __init__(self, seed):
        self.seed, self.pos, self.block = seed, 0, None

    def u32(self):
        b = self.pos // 4
        if self.block is None or self.block[0] != b:
            self.block = (b, _philox(b, self.seed))
        w = self.block[1][self.pos % 4]
        self.pos += 1
        return w

    def uniform(self):
        hi = self.u32() >> 5
        lo = self.u32() >> 6
        return (hi * 67108864 + lo) / 9007199254740992.0

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        u1 = max(u1, 1e-300)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586476925 * u2)


def sample_inputs(n, z_dim, num_classes, seed, classes, truncation):
    """The z (float32) and y that tools/sagan_sample.cpp draws for these options."""
    gen = PhiloxStream(seed)
    z = []
    for _ in range(n * z_dim):
        v = gen.normal()
        while truncation > 0 and abs(v) > truncation:
            v = gen.normal()
        z.append(v)
    z = torch.tensor(z, dtype=torch.float64).reshape(n, z_dim).float()
    if not classes and num_classes > 0:
        classes = list(range(num_classes))
    y = torch.tensor([classes[i % len(classes)] if classes else 0 for i in range(n)], dtype=torch.int64)
    return z, y


def image_grid(images, nrow, padding=2):
    """uint8 (H, W, C) grid exactly as core/io/image_ops.cpp make_image_grid."""
    b, c, h, w = images.shape
    cols = min(nrow, b)
    rows = (b + cols - 1) // cols
    grid = torch.zeros(rows * (h + padding) + padding, cols * (w + padding) + padding, c, dtype=torch.uint8)
    x01 = ((images.double() + 1.0) * 0.5).clamp(0.0, 1.0)
    q = torch.floor(x01 * 255.0 + 0.5).to(torch.uint8)
    for i in range(b):
        oy, ox = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[oy:oy + h, ox:ox + w] = q[i].permute(1, 2, 0)
    return grid


def read_png(path):
    from PIL import Image  # Debian's python3-pil; only needed for --compare-png
    img = Image.open(path)
    arr = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)  # getdata() is deprecated in Pillow 12
    return arr.reshape(img.height, img.width, -1)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a .safetensors checkpoint or a run directory (its newest checkpoint)")
    ap.add_argument("--weights", choices=["ema", "g"], default="ema", help="G_ema.* (default) or G.*")
    ap.add_argument("--reader", choices=["auto", "package", "builtin"], default="auto",
                    help="safetensors package or the built-in reader (default: the package when importable)")
    ap.add_argument("--save", help="torch.save the state dicts here")
    ap.add_argument("-n", "--num", type=int, default=0, help="images to generate (as sagan-sample -n)")
    ap.add_argument("--seed", type=int, default=0, help="sagan-sample --seed")
    ap.add_argument("--classes", default="", help="sagan-sample --classes (comma-separated)")
    ap.add_argument("--truncation", type=float, default=0.0, help="sagan-sample --truncation")
    ap.add_argument("--nrow", type=int, default=0, help="sagan-sample --nrow")
    ap.add_argument("--png", help="write the generated images as a grid")
    ap.add_argument("--compare-png", help="compare with this sagan-sample grid (same -n/--seed/--classes)")
    ap.add_argument("--dump", help="write z, y, images, d_scores as safetensors")
    opt = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines before any error text
    # Options and optional packages checked before the (slow) load.
    try:
        classes = [int(c) for c in opt.classes.split(",")] if opt.classes else []
    except ValueError:
        fail(f"--classes: expected comma-separated class ids, got '{opt.classes}'")
    if not (opt.truncation == 0 or 1e-3 <= opt.truncation < math.inf):
        fail(f"--truncation: expected 0 (off) or a value of at least 0.001, got {opt.truncation}")
    if not 0 <= opt.seed < 2**64:
        fail(f"--seed: expected an integer in [0, 2^64), got {opt.seed}")
    if opt.num < 0:
        fail(f"-n: expected 0 or more images, got {opt.num}")
    if opt.num == 0 and (opt.png or opt.compare_png or opt.dump):
        fail("--png, --compare-png and --dump need -n N images")
    if opt.png is not None and not opt.png.lower().endswith(".png"):
        fail(f"--png {opt.png}: the grid is written as PNG; give a name ending in .png")
    if opt.compare_png and not os.path.isfile(opt.compare_png):
        fail(f"--compare-png {opt.compare_png}: no such file")
    # Output files' folders too: found missing after the generation, the work is lost.
    for flag, path in (("--save", opt.save), ("--png", opt.png), ("--dump", opt.dump)):
        if path is None:
            continue
        if path == "" or os.path.isdir(path):
            fail(f"{flag} '{path}': give a file name")
        if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a pipe: a rename would replace it
            fail(f"{flag} {path}: not a regular file; give a file name")
        folder = os.path.dirname(path)
        if folder and not os.path.isdir(folder):
            fail(f"{flag} {path}: the folder {folder} does not exist; create it first")
        if not os.access(folder or ".", os.W_OK | os.X_OK):
            fail(f"{flag} {path}: cannot write in the folder {folder or '.'}")
    if opt.png or opt.compare_png:
        try:
            import PIL  # noqa: F401  (Debian: python3-pil)
        except ImportError:
            fail("--png and --compare-png need Pillow (Debian: apt-get install python3-pil; or pip install pillow)")
    if opt.dump:
        try:
            import safetensors  # noqa: F401
        except ImportError:
            fail("--dump needs the safetensors package (pip install safetensors)")

    path = resolve_checkpoint(opt.checkpoint)
    for flag, out in (("--save", opt.save), ("--png", opt.png), ("--dump", opt.dump)):
        if out and os.path.exists(out) and os.path.samefile(out, path):
            fail(f"{flag} {out}: that is the checkpoint being read; writing would replace it: give another file")
    tensors, meta = read_checkpoint(path, opt.reader)
    # As every reader of the engine's: sagan-train never saves a non-finite tensor.
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            fail(f"{path}: tensor '{name}' holds NaN or infinity: the file is damaged (sagan-train never saves one)")
    cfg, model_cfg = config_from_metadata(meta, path)
    for c in classes:
        if not 0 <= c < model_cfg.num_classes:
            fail(f"--classes: {c} is not a class id in [0, {model_cfg.num_classes})")
    G, D = Generator(model_cfg), Discriminator(model_cfg)
    g_prefix = "G_ema." if opt.weights == "ema" else "G."
    load_strict(G, section(tensors, g_prefix), g_prefix, path)
    load_strict(D, section(tensors, "D."), "D.", path)
    # What --save writes to resume training: the trained G (its Adam moments
    # are G's) and the EMA copy, whatever --weights chose for generating.
    G_train, G_ema = Generator(model_cfg), Generator(model_cfg)
    load_strict(G_train, section(tensors, "G."), "G.", path)
    load_strict(G_ema, section(tensors, "G_ema."), "G_ema.", path)
    G.eval()
    D.eval()
    step = int(meta.get("step", "0"))
    print(f"checkpoint_to_torch.py: {path}: step {step}, SAGAN-{model_cfg.resolution} g_ch={model_cfg.g_ch} d_ch={model_cfg.d_ch} "
          f"classes={model_cfg.num_classes}; loaded {g_prefix}* ({len(G.state_dict())} tensors) and D.* "
          f"({len(D.state_dict())} tensors) strictly")

    if opt.save:
        # "G" is the trained generator whose optimiser state "opt_G" holds;
        # "G_ema" its average, which samples best.
        out = {"config": cfg, "step": step, "G": G_train.state_dict(), "G_ema": G_ema.state_dict(),
               "D": D.state_dict()}
        for net, mod, lr in (("G", G_train, cfg["lr_g"]), ("D", D, cfg["lr_d"])):
            st = section(tensors, f"opt_{net}.")
            if st:
                out[f"opt_{net}"] = adam_state(mod.parameters(), list(mod.named_parameters()), st, cfg, lr)
        # Through a temporary file renamed into place, so that a failed or
        # interrupted save leaves an existing OUT.pt as it was; a link is
        # written through (its target replaced), as the engine does.
        target = os.path.realpath(opt.save)
        tmp = f"{target}.tmp{os.getpid()}"
        try:
            torch.save(out, tmp)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        print(f"checkpoint_to_torch.py: wrote {opt.save}")

    if opt.num == 0:
        return
    z, y = sample_inputs(opt.num, model_cfg.z_dim, model_cfg.num_classes, opt.seed, classes, opt.truncation)
    with torch.no_grad():
        yy = y if model_cfg.num_classes > 0 else None
        images = G(z, yy)
        d_scores = D(images, yy)
    nrow = opt.nrow or (len(classes) if classes else (model_cfg.num_classes or 8))
    grid = image_grid(images, nrow)
    if opt.png:
        from PIL import Image
        arr = grid.numpy()
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(opt.png)
        print(f"checkpoint_to_torch.py: wrote {opt.png}")
    if opt.dump:
        from safetensors.torch import save_file
        save_file({"z": z.contiguous(), "y": y, "images": images.contiguous(), "d_scores": d_scores.contiguous()},
                  opt.dump, metadata={"checkpoint": path, "weights": opt.weights})
        print(f"checkpoint_to_torch.py: wrote {opt.dump}")
    if opt.compare_png:
        theirs = read_png(opt.compare_png)
        if theirs.shape != grid.shape:
            fail(f"--compare-png {opt.compare_png}: grid {tuple(theirs.shape)} differs from ours {tuple(grid.shape)} "
                 f"(same -n, --seed, --classes, --nrow as sagan-sample?)")
        diff = (theirs.int() - grid.int()).abs()
        print(f"checkpoint_to_torch.py: {opt.compare_png}: max |difference| {diff.max().item()} pixel levels, "
              f"{(diff > 0).sum().item()} of {diff.numel()} values differ")
        if diff.max().item() > 1:
            sys.exit(1)


if __name__ == "__main__":
    main()
