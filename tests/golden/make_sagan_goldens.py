"""Writes the SAGAN goldens the C++ tests compare against (tests/test_models.cpp,
tests/test_layers_attention.cpp). Run from anywhere with torch 1.13:

    /usr/bin/python3 tests/golden/make_sagan_goldens.py

Outputs in tests/data/ (the suite reads them; it never needs torch):
  sagan_param_counts.json   parameter counts of G and D for standard configs
  sagan_names.json          for the same configs, every parameter and buffer
                            name of G and D with its shape (checkpoint names)
  sagan_attention.{json,bin} a SelfAttention block (pooled and paper variant):
                             input, weights, u/v, outputs in training mode (one
                             power iteration) and eval mode, buffers (u/v)
                             after the training forward, the attention map
  sagan_tiny.{json,bin}     G and D at resolution 32, ch 4, z 16, 3 classes,
                             batch 2: every parameter and buffer, the output in
                             training mode, the gradient of sum(out * r) for
                             every parameter and the input, the buffers after
                             the training forward, and the eval-mode output
Tensor files: the .json index maps a name to {dtype, shape, offset}; the .bin
holds the values as little-endian float64 / int64 (or uint8 pixels) at those
byte offsets.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sagan_reference import (Config, Discriminator, Generator, SelfAttention,  # noqa: E402
                             num_parameters)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


class TensorFile:
    def __init__(self):
        self.index, self.chunks, self.offset = {}, [], 0

    def add(self, name, t):
        t = t.detach().contiguous()
        if t.dtype in (torch.float32, torch.float64):
            t, dtype = t.double(), "float64"
        elif t.dtype == torch.uint8:  # image pixels: one byte each
            dtype = "uint8"
        else:
            t, dtype = t.long(), "int64"
        assert name not in self.index, name
        raw = t.numpy().astype({"float64": "<f8", "int64": "<i8", "uint8": "u1"}[dtype]).tobytes()
        self.index[name] = {"dtype": dtype, "shape": list(t.shape), "offset": self.offset}
        self.chunks.append(raw)
        self.offset += len(raw)

    def add_state(self, prefix, module):
        for k, v in module.state_dict().items():
            self.add(prefix + k, v)

    def add_buffers(self, prefix, module):
        for k, v in module.named_buffers():
            self.add(prefix + k, v)

    def write(self, stem, meta, directory=DATA):
        with open(os.path.join(directory, stem + ".bin"), "wb") as f:
            f.write(b"".join(self.chunks))
        with open(os.path.join(directory, stem + ".json"), "w") as f:
            json.dump({"meta": meta, "tensors": self.index}, f, indent=1, sort_keys=True)
            f.write("\n")


def config_meta(cfg):
    return {k: getattr(cfg, k) for k in ("resolution", "ch", "g_ch", "d_ch", "z_dim", "num_classes", "g_attn_res",
                                          "d_attn_res", "pooled_attention", "image_channels")}


def standard_configs():
    return {
        "sagan32_ch64_c10": Config(32, 64, num_classes=10),
        "sagan64_ch64_c1000": Config(64, 64, num_classes=1000),
        "sagan128_ch64_c1000": Config(128, 64, num_classes=1000),
        "sagan32_ch64_uncond_paper_attention": Config(32, 64, num_classes=0, pooled_attention=False),
        "sagan128_ch64_c1000_attn32": Config(128, 64, num_classes=1000, g_attn_res=[32], d_attn_res=[32]),
    }


def width_apart_configs():
    # G and D widths apart (StudioGAN's g_conv_dim / d_conv_dim).
    return {
        "sagan32_gch32_dch64_c10": Config(32, 64, num_classes=10, g_ch=32, d_ch=64),
        "sagan64_gch64_dch32_c1000": Config(64, 16, num_classes=1000, g_ch=64, d_ch=32),
    }


def tensor_names():
    def names(model):
        return {"parameters": sorted([k, list(v.shape)] for k, v in model.named_parameters()),
                "buffers": sorted([k, list(v.shape)] for k, v in model.named_buffers())}

    out = {}
    # Under a forked RNG: building the models draws from it, and the goldens
    # drawn after these (attention, tiny) keep their values.
    with torch.random.fork_rng():
        for name, cfg in standard_configs().items():
            out[name] = {"config": config_meta(cfg), "G": names(Generator(cfg)), "D": names(Discriminator(cfg))}
    with open(os.path.join(DATA, "sagan_names.json"), "w") as f:
        json.dump(out, f, sort_keys=True)
        f.write("\n")


def param_counts():
    cases = standard_configs()

    def count(cfg):
        return {"config": config_meta(cfg), "G": num_parameters(Generator(cfg)), "D": num_parameters(Discriminator(cfg))}

    out = {name: count(cfg) for name, cfg in cases.items()}
    # Under a forked RNG, so the goldens drawn after these keep the values
    # they had before these cases were added.
    with torch.random.fork_rng():
        out.update({name: count(cfg) for name, cfg in width_apart_configs().items()})
    with open(os.path.join(DATA, "sagan_param_counts.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


def attention_goldens():
    tf = TensorFile()
    meta = {}
    for name, pooled in (("pooled", True), ("paper", False)):
        m = SelfAttention(16, pooled=pooled).double()
        with torch.no_grad():
            m.gamma.fill_(0.7 if pooled else -0.45)
        x = torch.randn(2, 16, 6, 4, dtype=torch.float64)
        tf.add(name + "/input", x)
        tf.add_state(name + "/state/", m)
        m.train()
        y = m(x)
        tf.add(name + "/out_train", y)
        tf.add(name + "/map_train", m.last_map)
        tf.add_buffers(name + "/after/", m)
        m.eval()
        tf.add(name + "/out_eval", m(x))
        meta[name] = {"channels": 16, "pooled": pooled}
    tf.write("sagan_attention", meta)


def perturb(model):
    """Moves every tensor away from its init so each one affects the goldens."""
    with torch.no_grad():
        for k, p in model.named_parameters():
            if k.endswith("gamma"):
                p.fill_(0.5)
            elif k.endswith("gain.weight") or k.endswith("bias.weight") or k.endswith(".bias"):
                p.normal_(0, 0.3)
            elif k.endswith("bn.weight"):
                p.uniform_(0.5, 1.5)
        for k, b in model.named_buffers():
            if k.endswith("running_mean"):
                b.normal_(0, 0.2)
            elif k.endswith("running_var"):
                b.uniform_(0.5, 2.0)


def tiny_goldens():
    cfg = Config(resolution=32, ch=4, z_dim=16, num_classes=3)
    tf = TensorFile()
    y = torch.tensor([2, 0])
    for tag, model, x in (("G", Generator(cfg), torch.randn(2, cfg.z_dim)),
                          ("D", Discriminator(cfg), torch.rand(2, 3, 32, 32) * 2 - 1)):
        model = model.double()
        perturb(model)
        x = x.double().requires_grad_(True)
        tf.add(tag + "/input", x)
        tf.add(tag + "/labels", y)
        tf.add_state(tag + "/state/", model)
        model.train()
        out = model(x, y)
        r = torch.randn(out.shape, dtype=torch.float64)
        tf.add(tag + "/out_train", out)
        tf.add(tag + "/r", r)
        torch.sum(out * r).backward()
        tf.add(tag + "/grad/input", x.grad)
        for k, p in model.named_parameters():
            tf.add(tag + "/grad/" + k, p.grad)
        tf.add_buffers(tag + "/after/", model)
        model.eval()
        with torch.no_grad():
            tf.add(tag + "/out_eval", model(x, y))
    tf.write("sagan_tiny", {"config": config_meta(cfg), "batch": 2})


def main():
    torch.manual_seed(20180521)
    os.makedirs(DATA, exist_ok=True)
    param_counts()
    tensor_names()
    attention_goldens()
    tiny_goldens()


if __name__ == "__main__":
    main()
