#!/usr/bin/python3
"""Writes the first N Fashion-MNIST training images as a folder data set.

    python3 tools/fmnist_subset.py OUT_DIR [-n 2000] [--data /usr/share/datasets/fashion-mnist]

OUT_DIR/<label>/<index>.png, 28x28 8-bit grayscale, one sub-folder per class
(0 T-shirt ... 9 ankle boot; sorted names keep the labels), for small-data
experiments with `sagan-train --dataset folder --data OUT_DIR` (which reads
it as 1 channel: --channels auto). The training file is already shuffled, so
the first N images are a fair sample (each class about N / 10). Uses only the
standard library: no numpy, no PIL.
"""
import argparse
import gzip
import os
import struct
import sys
import zlib


def read_idx(path, ndim):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:  # missing, unreadable, not gzip
        sys.exit(f"fmnist_subset.py: {path}: {e.strerror or e} (--data names the Fashion-MNIST IDX directory)")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x800 | ndim:
        sys.exit(f"fmnist_subset.py: {path}: not an IDX file of {ndim} dims (magic {magic:#x})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png_gray(width, height, pixels):
    """An 8-bit grayscale PNG of rows of bytes (filter 0 on every row)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("-n", type=int, default=2000, help="images (the first N of the training set)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX directory")
    opt = ap.parse_args()
    (n_img, h, w), images = read_idx(os.path.join(opt.data, "train-images-idx3-ubyte.gz"), 3)
    (n_lab,), labels = read_idx(os.path.join(opt.data, "train-labels-idx1-ubyte.gz"), 1)
    if n_img != n_lab or not 0 < opt.n <= n_img:
        sys.exit(f"fmnist_subset.py: -n {opt.n}: the training set has {n_img} images and {n_lab} labels")
    if os.path.exists(opt.out_dir) and os.listdir(opt.out_dir):
        sys.exit(f"fmnist_subset.py: {opt.out_dir} exists and is not empty")
    # A class with no image has no folder, and the folder data set would
    # number the later classes one lower (folder 9 as label 8).
    missing = sorted(set(range(10)) - set(labels[:opt.n]))
    if missing:
        need = max(labels.index(c) for c in missing) + 1
        sys.exit(f"fmnist_subset.py: -n {opt.n}: class(es) {missing} have no image among the first {opt.n}, and "
                 f"the folder data set would shift the labels of the others; -n {need} or more gives every class one")
    counts = [0] * 10
    for i in range(opt.n):
        label = labels[i]
        d = os.path.join(opt.out_dir, str(label))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{i:05d}.png"), "wb") as f:
            f.write(png_gray(w, h, images[i * h * w:(i + 1) * h * w]))
        counts[label] += 1
    print(f"fmnist_subset.py: wrote {opt.n} images to {opt.out_dir}; per class {counts}")


if __name__ == "__main__":
    main()
