#!/usr/bin/env python3
"""Writes the first N training examples of Fashion-MNIST (Debian's
dataset-fashion-mnist IDX files) as a smaller data set in the same format,
for the device bundle: sagan-train --data OUT_DIR reads it like the full set
(a 300-step SAGAN-32 run at batch 64 sees 19200 examples; N = 6400 is three
epochs). Only the train split is written (sagan-train reads no other without
--fd-every). Standard library only.

  python3 benchmarks/device/fmnist_subset.py OUT_DIR [--n 6400] [--src /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os
import struct
import sys


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        sys.exit(f"fmnist_subset.py: {path}: not an unsigned-byte IDX file (magic 0x{magic:08x})")
    dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
    return dims, data[4 + 4 * ndim:]


def write_idx(path, dims, payload):
    head = struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    tmp = path + ".tmp"
    # mtime=0: the same subset gives the same bytes on every run.
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(head + payload)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=6400)
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    ipath = os.path.join(a.src, "train-images-idx3-ubyte.gz")
    lpath = os.path.join(a.src, "train-labels-idx1-ubyte.gz")
    for p in (ipath, lpath):
        if not os.path.exists(p):
            sys.exit(f"fmnist_subset.py: {p} not found (apt-get install dataset-fashion-mnist, or pass --src)")
    idims, images = read_idx(ipath)
    ldims, labels = read_idx(lpath)
    if not 0 < a.n <= min(idims[0], ldims[0]):
        sys.exit(f"fmnist_subset.py: --n {a.n}: the set holds {idims[0]} examples")
    px = idims[1] * idims[2]
    os.makedirs(a.out_dir, exist_ok=True)
    write_idx(os.path.join(a.out_dir, "train-images-idx3-ubyte.gz"), [a.n, idims[1], idims[2]], images[:a.n * px])
    write_idx(os.path.join(a.out_dir, "train-labels-idx1-ubyte.gz"), [a.n], labels[:a.n])
    counts = [labels[:a.n].count(bytes([c])) for c in range(10)]
    print(f"fmnist_subset.py: {a.n} examples of {idims[0]} to {a.out_dir} (per class: {counts})")


if __name__ == "__main__":
    main()
