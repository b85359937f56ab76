#!/usr/bin/env python3
"""Seed corpora for the libFuzzer harnesses: tests/fuzz/corpus/<target>/seed_*.

Small valid files of each format, in the variants the parsers handle, so the
fuzzers start from inputs that get past the first checks. Files named
regress_* in the same folders are inputs that once crashed a harness; this
script never touches them. The checkpoint seeds are written by the harness
itself (tests/fuzz/fuzz_checkpoint.cpp says how). The PNG, IDX, CIFAR-10, safetensors and JSON seeds
use the standard library only; the JPEG seeds need Pillow (pip install pillow).
Run: python3 tests/fuzz/make_seeds.py
"""
import gzip
import io
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
FIXTURES = os.path.join(HERE, "..", "data", "io")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data)


def copy_fixture(target, name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        write(target, "fixture_" + name, f.read())


def clear(target):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if n.startswith("seed_"):
                os.remove(os.path.join(d, n))


def gz(data):
    return gzip.compress(data, mtime=0)


# ------------------------------------------------------------------ safetensors
def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def make_safetensors():
    clear("safetensors")
    f32 = struct.pack("<6f", *[0.5 * i for i in range(6)])
    f64 = struct.pack("<3d", 1.5, -2.25, 1e-300)
    i64 = struct.pack("<2q", -1, 2**40)
    write("safetensors", "empty", safetensors([]))
    write("safetensors", "one_f32", safetensors([("weight", "F32", [2, 3], f32)]))
    write("safetensors", "three_dtypes",
          safetensors([("bias", "F64", [3], f64), ("weight", "F32", [2, 3], f32), ("steps", "I64", [2, 1], i64)],
                      {"format": "pt", "step": "1200"}))
    write("safetensors", "scalar_and_empty",
          safetensors([("scalar", "F32", [], struct.pack("<f", 3.0)), ("none", "F64", [0, 4], b"")]))
    write("safetensors", "metadata_only", safetensors([], {"config": json.dumps({"batch_size": 64})}))
    copy_fixture("safetensors", "python_written.safetensors")


# ------------------------------------------------------------------ IDX
def idx(dims, data):
    return struct.pack(">I", 0x800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def make_idx():
    clear("idx")
    images = idx([3, 4, 5], [(i * 31) % 251 for i in range(60)])
    labels = idx([6], [9, 0, 1, 2, 3, 4])
    write("idx", "images_raw", images)
    write("idx", "images_gz", gz(images))
    write("idx", "labels_raw", labels)
    write("idx", "labels_gz", gz(labels))
    # zlib reads concatenated gzip members as one stream.
    write("idx", "images_two_members", gz(images[:20]) + gz(images[20:]))
    write("idx", "one_pixel", idx([1, 1, 1], [255]))


# ------------------------------------------------------------------ CIFAR-10
def make_cifar10():
    clear("cifar10")
    def record(label, seed):
        return bytes([label]) + bytes((seed + i * 7) % 256 for i in range(3072))
    write("cifar10", "one_record", record(3, 0))
    write("cifar10", "three_records", record(0, 1) + record(9, 2) + record(5, 3))


# ------------------------------------------------------------------ PNG
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(w, h, depth, color, rows, extra=b"", interlace=0):
    """rows: the filtered scanlines (filter byte + packed pixels), joined."""
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    return out + extra + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def make_png():
    clear("png")
    w, h = 5, 3
    gray8 = b"".join(b"\x00" + bytes((x * 50 + y) % 256 for x in range(w)) for y in range(h))
    write("png", "gray8", png(w, h, 8, 0, gray8))
    for depth in (1, 2, 4):
        bits_per_row = w * depth
        row = bytes(((y + 1) * 37) % 256 for y in range((bits_per_row + 7) // 8))
        write("png", f"gray{depth}", png(w, h, depth, 0, b"".join(b"\x00" + row for _ in range(h))))
    rgb8 = b"".join(b"\x01" + bytes((x * 40 + c * 80 + y) % 256 for x in range(w) for c in range(3)) for y in range(h))
    write("png", "rgb8_sub_filter", png(w, h, 8, 2, rgb8))
    rgba8 = b"".join(b"\x02" + bytes((x * 9 + c * 60) % 256 for x in range(w) for c in range(4)) for y in range(h))
    write("png", "rgba8_up_filter", png(w, h, 8, 6, rgba8))
    la8 = b"".join(b"\x03" + bytes((x * 20 + c) % 256 for x in range(w) for c in range(2)) for y in range(h))
    write("png", "gray_alpha8_avg_filter", png(w, h, 8, 4, la8))
    rgb16 = b"".join(b"\x04" + b"".join(struct.pack(">H", (x * 3000 + c * 9000) % 65536) for x in range(w) for c in range(3))
                     for y in range(h))
    write("png", "rgb16_paeth_filter", png(w, h, 16, 2, rgb16))
    plte = chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]))
    trns = chunk(b"tRNS", bytes([255, 128, 0]))
    pal = b"".join(b"\x00" + bytes((x + y) % 4 for x in range(w)) for y in range(h))
    write("png", "palette_trns", png(w, h, 8, 3, pal, plte + trns))
    # Adam7: the seven passes of a 5x3 gray image, each row with its filter byte.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if len(xs) and len(ys):
            data += b"".join(b"\x00" + bytes((x * 50 + y) % 256 for x in xs) for y in ys)
    write("png", "gray8_adam7", png(w, h, 8, 0, data, interlace=1))
    text = chunk(b"tEXt", b"Comment\x00seed") + chunk(b"gAMA", struct.pack(">I", 45455))
    write("png", "gray8_ancillary", png(w, h, 8, 0, gray8, text))
    for n in sorted(os.listdir(FIXTURES)):
        if n.endswith(".png"):
            copy_fixture("png", n)


# ------------------------------------------------------------------ JPEG
def make_jpeg():
    clear("jpeg")
    for n in sorted(os.listdir(FIXTURES)):
        if n.endswith(".jpg"):
            copy_fixture("jpeg", n)
    from PIL import Image  # the other seeds come from here

    w, h = 13, 9
    rgb = Image.new("RGB", (w, h))
    rgb.putdata([((x * 19) % 256, (y * 27) % 256, ((x + y) * 11) % 256) for y in range(h) for x in range(w)])
    gray = rgb.convert("L")

    def save(img, name, **kw):
        b = io.BytesIO()
        img.save(b, "JPEG", **kw)
        write("jpeg", name, b.getvalue())

    save(rgb, "rgb420_q75", quality=75, subsampling=2)
    save(rgb, "rgb422_q90", quality=90, subsampling=1)
    save(rgb, "rgb_progressive", quality=80, progressive=True)
    save(rgb, "rgb_optimized_huffman", quality=60, optimize=True)
    save(gray, "gray_progressive", quality=70, progressive=True)
    save(rgb.convert("CMYK"), "cmyk_q80", quality=80)
    save(rgb, "rgb_restart_markers", quality=75, restart_marker_blocks=1)


# ------------------------------------------------------------------ JSON config
def make_config_json():
    clear("config_json")
    full = {
        "model": {"resolution": 32, "ch": 64, "z_dim": 128, "num_classes": 10, "pooled_attention": True,
                  "image_channels": 1, "g_attn_res": [16], "d_attn_res": [16]},
        "unconditional": False, "dataset": "fashion-mnist", "data_path": "", "hflip": False,
        "batch_size": 64, "steps": 100000, "n_dis": 1, "lr_g": 0.0001, "lr_d": 0.0004, "beta1": 0.0, "beta2": 0.9,
        "adam_eps": 1e-08, "ema_decay": 0.9999, "ema_start": 1000, "grad_clip": 0.0, "seed": 0, "device": "auto",
        "run_dir": "", "log_every": 10, "sample_every": 500, "checkpoint_every": 500, "keep_checkpoints": 3,
        "sample_per_class": 10, "fd_every": 0, "fd_samples": 2000, "fd_features": "auto", "fd_weights": "",
    }
    write("config_json", "full", (json.dumps(full, indent=2) + "\n").encode())
    write("config_json", "empty_object", b"{}")
    write("config_json", "few_keys", json.dumps({"batch_size": 32, "lr_d": 2e-4, "model": {"ch": 32}}).encode())
    write("config_json", "cifar", json.dumps({"dataset": "cifar10", "data_path": "/data/cifar", "hflip": True,
                                             "fd_every": 250, "log_every": 50, "fd_weights": "w.safetensors",
                                             "model": {"resolution": 64, "g_attn_res": [16, 32], "d_attn_res": []}})
          .encode())
    write("config_json", "unknown_key", b'{"batchsize_typo": 64}')
    write("config_json", "wrong_type", b'{"batch_size": "64"}')


# ------------------------------------------------------------------ TOML configs
def make_config_toml():
    clear("config_toml")
    full = "\n".join([
        "# sagan-train settings (keys as in a run's config.json)",
        "preset = 'cpu'", "dataset = 'fashion-mnist'", "data_path = ''", "hflip = false", "channels = 'auto'",
        "resize = 'bilinear'", "unconditional = false", "steps = 5000", "batch_size = 32", "n_dis = 1",
        "lr_g = 0.0001", "lr_d = 0.0004", "beta1 = 0.0", "beta2 = 0.9", "adam_eps = 1e-08", "ema_decay = 0.999",
        "ema_start = 500", "grad_clip = 0.0", "on_nan = 'stop'", "max_nan_skips = 10", "diffaug = 'none'",
        "seed = 0", "device = 'auto'", "run_dir = ''", "log_every = 25", "sample_every = 500",
        "checkpoint_every = 500", "keep_checkpoints = 3", "sample_per_class = 10", "fd_every = 0",
        "fd_samples = 2000", "fd_features = 'auto'", "fd_weights = ''", "",
        "[model]", "resolution = 32", "ch = 16", "g_ch = 16", "d_ch = 16", "z_dim = 128", "g_attn_res = [16]",
        "d_attn_res = [16]", "pooled_attention = true", "num_classes = 10", "image_channels = 3", ""])
    write("config_toml", "full", full.encode())
    write("config_toml", "empty", b"")
    write("config_toml", "few_keys", b"batch_size = 32\nlr_d = 2e-4\n[model]\nch = 32\n")
    write("config_toml", "dotted_and_inline", b'model.ch = 8\nmodel = { z_dim = 16 }\n')
    write("config_toml", "cifar", b"dataset = \"cifar10\"\ndata_path = \"/data/cifar\"\nhflip = true\n"
                                  b"fd_every = 250\nlog_every = 50\nfd_weights = 'w.safetensors'\n"
                                  b"on_nan = 'skip'\nmax_nan_skips = 4\n"
                                  b"[model]\nresolution = 64\ng_attn_res = [16, 32]\nd_attn_res = []\n")
    write("config_toml", "unknown_key", b"batchsize_typo = 64\n")
    write("config_toml", "wrong_type", b"batch_size = '64'\n")
    write("config_toml", "big_seed", b"seed = 9223372036854775807\n")
    write("config_toml", "garbage_json", b'{"batch_size": -4}')


if __name__ == "__main__":
    make_safetensors()
    make_idx()
    make_cifar10()
    make_png()
    make_jpeg()
    make_config_json()
    make_config_toml()
    # corpus/checkpoint/seed_* come from a trained tiny model: see tests/fuzz/fuzz_checkpoint.cpp.
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        print(f"{t}: {len(files)} files, {sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)} bytes")
