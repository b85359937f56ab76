#!/usr/bin/python3
"""Golden values for core/io resize (tests/test_io_image.cpp).

Bilinear upscaling must match torch.nn.functional.interpolate(mode="bilinear",
align_corners=False); nearest-neighbour upscaling (io::resize_nearest, cases
named nearest_*) mode="nearest-exact"; integer-factor downscaling must match mode="area"
(average pooling). torch's "area" is adaptive pooling, which differs from true
area averaging for non-integer factors, so that case is integrated exactly
with numpy instead. Writes tests/data/io/resize_golden.txt:
    case <name> <in_h> <in_w> <c> <out_h> <out_w>
    <out_h*out_w*c values, HWC row-major>
Input pixel (y, x, c) = ((y * 7 + x * 13 + c * 5) % 17) * 15, as in the test.
Run: /usr/bin/python3 tests/golden/io_resize.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F


def make_input(h, w, c):
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return (((y * 7 + x * 13 + ch * 5) % 17) * 15).astype(np.float64)


def to_nchw(a):
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)


def from_nchw(t):
    return t.squeeze(0).permute(1, 2, 0).numpy()


def torch_resize(a, oh, ow):
    # Separable: bilinear for a growing axis, area for a shrinking one.
    t = to_nchw(a)
    h, w = a.shape[:2]
    for axis, (n, m) in enumerate([(h, oh), (w, ow)]):
        size = [t.shape[2], t.shape[3]]
        size[axis] = m
        if m > n:
            t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
        elif m < n:
            assert n % m == 0, "torch area matches true area only for integer factors"
            t = F.interpolate(t, size=tuple(size), mode="area")
    return from_nchw(t)


def torch_nearest(a, oh, ow):
    return from_nchw(F.interpolate(to_nchw(a), size=(oh, ow), mode="nearest-exact"))


def exact_area_matrix(n, m):
    """(m, n) weights: overlap of output footprint [i*s, (i+1)*s) with input pixel j, over s."""
    s = n / m
    wts = np.zeros((m, n))
    for i in range(m):
        lo, hi = i * s, (i + 1) * s
        for j in range(n):
            wts[i, j] = max(0.0, min(j + 1, hi) - max(j, lo)) / s
    return wts


def exact_area(a, oh, ow):
    wy, wx = exact_area_matrix(a.shape[0], oh), exact_area_matrix(a.shape[1], ow)
    return np.einsum("ij,kl,jlc->ikc", wy, wx, a)


cases = [
    ("bilinear_up", 5, 7, 1, 9, 13, torch_resize),
    ("area_down_integer", 6, 8, 1, 3, 4, torch_resize),
    ("fashion_mnist_28_to_32", 28, 28, 1, 32, 32, torch_resize),
    ("mixed_rgb", 4, 6, 3, 8, 3, torch_resize),
    ("area_down_fractional", 7, 5, 2, 3, 2, lambda a, oh, ow: exact_area(a, oh, ow)),
    ("nearest_fashion_mnist_28_to_32", 28, 28, 1, 32, 32, torch_nearest),
    ("nearest_odd_rgb", 5, 7, 3, 9, 16, torch_nearest),
]

out_path = os.path.join(os.path.dirname(__file__), "..", "data", "io", "resize_golden.txt")
with open(out_path, "w") as f:
    for name, h, w, c, oh, ow, fn in cases:
        out = fn(make_input(h, w, c), oh, ow)
        assert out.shape == (oh, ow, c), (name, out.shape)
        f.write(f"case {name} {h} {w} {c} {oh} {ow}\n")
        f.write(" ".join(repr(float(v)) for v in out.reshape(-1)) + "\n")
print("wrote", os.path.normpath(out_path))
