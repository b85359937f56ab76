#!/usr/bin/env python3
"""Manual interoperability check of core/io against the Python reference readers.

The suite never needs Python; this is the manual step that shows files
written by sagan load in Python's safetensors and tensorboard packages:

    pip install safetensors tensorboard numpy pillow   # into the python3 used here
    mkdir -p /tmp/sagan_interop
    SAGAN_IO_INTEROP_DIR=/tmp/sagan_interop build/<you>/tests/sagan_tests "[io_safetensors],[io_tensorboard]"
    python3 tests/golden/io_interop_check.py /tmp/sagan_interop

The tests "safetensors interop file for Python" and "event file interop for
Python's tensorboard" write interop.safetensors and tb/events.out.tfevents.*
(scalars, and PNG image summaries that Pillow decodes here).
"""
import io
import sys

import numpy as np
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sagan_interop"

t = load_file(f"{d}/interop.safetensors")
expect = {
    "f32": (np.arange(15, dtype=np.float32).reshape(3, 5) * 0.5),
    "f64": np.array([1.5, -2.25, 1e-300]),
    "i64": np.array([[-3], [0], [2**50]], dtype=np.int64),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "strided": np.arange(6, dtype=np.float64).reshape(2, 3).T,
}
assert set(t) == set(expect), sorted(t)
for name, want in expect.items():
    got = t[name]
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape)
    assert np.array_equal(got, want), (name, got, want)
with safe_open(f"{d}/interop.safetensors", "np") as f:
    assert f.metadata() == {"step": "1200", "writer": "sagan"}, f.metadata()
print("safetensors: OK,", len(t), "tensors and metadata match")

ea = EventAccumulator(f"{d}/tb")
ea.Reload()
tags = sorted(ea.Tags()["scalars"])
assert tags == ["attention/gamma", "loss/D"], tags
# Steps 0-400 were logged, then a SessionLog START at step 200 (a resume),
# then loss/D at 200 and 300 again: the reader keeps each step once, the
# redone values, and nothing else from step 200 on.
for tag, want in [
    ("loss/D", [(0, 1.0), (100, 0.5), (200, 207.0), (300, 307.0)]),
    ("attention/gamma", [(0, 0.0), (100, 0.01)]),
]:
    ev = ea.Scalars(tag)
    assert [e.step for e in ev] == [s for s, _ in want], (tag, ev)
    assert all(abs(e.value - v) < 1e-6 for (_, v), e in zip(want, ev)), (tag, ev)
print("tensorboard: OK, tags", tags, "with the steps before the resume once and the redone ones")

images = sorted(ea.Tags()["images"])
assert images == ["gray", "samples"], images
for tag, channels in [("gray", 1), ("samples", 3)]:
    ev = ea.Images(tag)
    assert [e.step for e in ev] == [0], ev  # step 200's image came before the resume at 200
    for e in ev:
        assert (e.height, e.width) == (6, 10), (tag, e.height, e.width)
        got = np.asarray(Image.open(io.BytesIO(e.encoded_image_string)))
        y, x, c = np.meshgrid(np.arange(6), np.arange(10), np.arange(channels), indexing="ij")
        want = ((y * 16 + x * 3 + c * 50 + e.step) % 256).astype(np.uint8)
        if channels == 1:
            want = want[:, :, 0]
        assert got.dtype == np.uint8 and got.shape == want.shape, (tag, got.dtype, got.shape)
        assert np.array_equal(got, want), (tag, e.step)
print("tensorboard: OK, image tags", images, "with the PNG image of step 0 each, pixels exact")
