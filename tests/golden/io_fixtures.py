#!/usr/bin/env python3
"""Small files written by other implementations, for tests/test_io_*.cpp.

- python_written.safetensors: written by Python's safetensors library (numpy
  API), so the C++ reader is tested against the reference writer. Values are
  documented in the test.
- palette.png (paletted 3x2), rgba16.png (16-bit RGBA 2x3), gray_alpha.png
  (gray + alpha 2x2), interlaced.png (Adam7 RGB 5x3): PNG variants the decoder
  must normalise to 8-bit gray/RGB.
- gray.jpg (gray 8x8) and rgb444.jpg (RGB 8x16, no chroma subsampling), both
  quality 100, of the images documented in the test; and cmyk.jpg (CMYK 4x4).
Needs numpy, Pillow and safetensors (pip install safetensors pillow numpy).
Run: python3 tests/golden/io_fixtures.py
"""
import os

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

out = os.path.join(os.path.dirname(__file__), "..", "data", "io")

save_file(
    {
        "weight": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5,
        "bias": np.array([1.5, -2.25, 1e-300], dtype=np.float64),
        "steps": np.array([[-1], [2**40]], dtype=np.int64),
    },
    os.path.join(out, "python_written.safetensors"),
    metadata={"format": "np", "step": "1200"},
)

pal = Image.new("P", (3, 2))
pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
pal.putdata([0, 1, 2, 2, 1, 0])
pal.save(os.path.join(out, "palette.png"))

rgba = np.zeros((2, 3, 4), dtype=np.uint16)  # (H, W, RGBA), 16-bit
for y in range(2):
    for x in range(3):
        rgba[y, x] = [(y * 3 + x) * 257 * 40, 65535, 257 * 7, 1000 * (x + 1)]
# Pillow cannot write 16-bit RGBA directly; write it with PNG bytes by hand.
import struct
import zlib


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


raw = b"".join(b"\x00" + rgba[y].astype(">u2").tobytes() for y in range(2))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 6, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(os.path.join(out, "rgba16.png"), "wb").write(png)

la = Image.fromarray(np.array([[[10, 255], [20, 0]], [[30, 128], [40, 7]]], dtype=np.uint8), "LA")
la.save(os.path.join(out, "gray_alpha.png"))

inter = np.zeros((3, 5, 3), dtype=np.uint8)
for y in range(3):
    for x in range(5):
        inter[y, x] = [y * 50, x * 40, 200 - y * 10 - x]
# Pillow does not write interlaced PNGs: Adam7 by hand (passes of
# (x0, y0, dx, dy); empty passes have no rows at all).
adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
raw = b""
for x0, y0, dx, dy in adam7:
    sub = inter[y0::dy, x0::dx]
    if sub.size:
        raw += b"".join(b"\x00" + row.tobytes() for row in sub)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 3, 8, 2, 0, 0, 1))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(os.path.join(out, "interlaced.png"), "wb").write(png)

gray = np.array([[(y * 8 + x) * 4 for x in range(8)] for y in range(8)], dtype=np.uint8)
Image.fromarray(gray, "L").save(os.path.join(out, "gray.jpg"), quality=100)

rgb = np.zeros((8, 16, 3), dtype=np.uint8)
for y in range(8):
    for x in range(16):
        rgb[y, x] = [x * 16, y * 32, 128]
Image.fromarray(rgb, "RGB").save(os.path.join(out, "rgb444.jpg"), quality=100, subsampling=0)

cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
cmyk.save(os.path.join(out, "cmyk.jpg"), quality=100)
print("wrote fixtures to", os.path.normpath(out))
