#!/usr/bin/env python3
"""Runs sagan-export's ONNX models under onnxruntime and compares them with the engine.

Not part of the default suite (it needs onnxruntime from pip); run by hand,
or let CTest run it as onnx_runtime_check when configured with
-DSAGAN_PYTHON=<a python that has these packages>:

    python3 -m venv --system-site-packages /tmp/ortenv
    /tmp/ortenv/bin/pip install onnxruntime numpy pillow safetensors

Two checks:

  interop DIR      DIR as written by
                     SAGAN_ONNX_INTEROP_DIR=DIR build/<preset>/tests/onnx/sagan_onnx_tests "onnx export interop files"
                   (randomised generators with non-zero attention, class-conditional BN and BN
                   statistics; one conditional, one unconditional grayscale): the engine's float
                   images for a batch of 7 against onnxruntime's.

  sample TOOLS CHECKPOINT [--n N] [--seed S] [--truncation T]
                   runs TOOLS/sagan-export and TOOLS/sagan-sample on a checkpoint or run
                   directory, draws the same z as sagan-sample (Philox, tests/golden/philox_golden.py,
                   with the truncation the model's metadata records), runs the model and compares
                   the 8-bit pixels with sagan-sample's PNGs (--separate).

Tolerances (docs/export.md): float images within 1e-5 (absolute, images in [-1, 1]);
pixels equal except where a value sits within float error of a rounding boundary: at
most 1 level apart, and at most 0.1% of pixels differing.
"""
import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

FLOAT_TOL = 1e-5
PIXEL_MAX_DIFF = 1
PIXEL_FRACTION = 1e-3


def session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def run_model(sess, z, labels):
    feed = {"z": z.astype(np.float32)}
    names = [i.name for i in sess.get_inputs()]
    if "labels" in names:
        feed["labels"] = labels.astype(np.int64)
    return sess.run(["images"], feed)[0]


def check_interop(root):
    from safetensors.numpy import load_file

    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        ref = load_file(os.path.join(d, "reference.safetensors"))
        sess = session(os.path.join(d, "g.onnx"))
        got = run_model(sess, ref["z"], ref.get("labels"))
        want = ref["images"]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        err = float(np.abs(got - want).max())
        print(f"interop {name}: images {tuple(got.shape)}, max |onnxruntime - engine| = {err:.3g}")
        assert err <= FLOAT_TOL, (name, err)


def sample_latents(n, z_dim, seed, truncation):
    """cli::sample_latents (tools/cli_common.cpp): row-major, each component redrawn while |z| > t."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    with contextlib.redirect_stdout(io.StringIO()):  # the module prints its goldens
        import philox_golden
    g = philox_golden.Stream(seed)
    z = np.empty(n * z_dim, dtype=np.float64)
    for i in range(z.size):
        v = g.normal()
        while truncation > 0 and abs(v) > truncation:
            v = g.normal()
        z[i] = v
    return z.reshape(n, z_dim).astype(np.float32)


def to_pixels(images):
    """io::make_image_grid's conversion: round(clamp((x + 1) / 2, 0, 1) * 255)."""
    x01 = (images.astype(np.float64) + 1.0) / 2.0
    return (np.clip(x01, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_sample(tools, checkpoint, n, seed, truncation):
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "g.onnx")
        subprocess.run([os.path.join(tools, "sagan-export"), checkpoint, "-o", model, "--truncation", str(truncation)],
                       check=True)
        sep = os.path.join(tmp, "separate")
        subprocess.run([os.path.join(tools, "sagan-sample"), checkpoint, "-n", str(n), "--seed", str(seed),
                        "--truncation", str(truncation), "--separate", sep, "-o", os.path.join(tmp, "grid.png"),
                        "--device", "cpu"], check=True)
        sess = session(model)
        meta = sess.get_modelmeta().custom_metadata_map
        z_dim, classes = int(meta["sagan.z_dim"]), int(meta["sagan.num_classes"])
        t = float(meta["sagan.truncation"])  # how the model says z is drawn
        assert t == truncation, (t, truncation)
        z = sample_latents(n, z_dim, seed, t)
        labels = np.arange(n, dtype=np.int64) % max(classes, 1)  # sagan-sample's default: every class in turn
        got = to_pixels(run_model(sess, z, labels))  # (n, C, R, R)
        diffs, worst = 0, 0
        for i in range(n):
            png = np.asarray(Image.open(os.path.join(sep, f"{i:05d}_class{labels[i] if classes else 0}.png")))
            want = png[None] if png.ndim == 2 else png.transpose(2, 0, 1)
            assert want.shape == got[i].shape, (i, want.shape, got[i].shape)
            d = np.abs(got[i].astype(np.int32) - want.astype(np.int32))
            diffs += int((d > 0).sum())
            worst = max(worst, int(d.max()))
        frac = diffs / got.size
        print(f"sample: {n} images {tuple(got.shape[1:])} (truncation {t}, seed {seed}): "
              f"{diffs} of {got.size} pixels differ ({frac:.2e}), max {worst} level(s)")
        assert worst <= PIXEL_MAX_DIFF and frac <= PIXEL_FRACTION, (worst, frac)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("interop")
    a.add_argument("dir")
    b = sub.add_parser("sample")
    b.add_argument("tools", help="folder with sagan-export and sagan-sample")
    b.add_argument("checkpoint")
    b.add_argument("--n", type=int, default=24)
    b.add_argument("--seed", type=int, default=5)
    b.add_argument("--truncation", type=float, default=0.0)
    args = ap.parse_args()
    if args.mode == "interop":
        check_interop(args.dir)
    else:
        check_sample(args.tools, args.checkpoint, args.n, args.seed, args.truncation)
    print("onnx_export_check: OK")


if __name__ == "__main__":
    main()
