#!/usr/bin/python3
"""Golden values for layers/diffaugment (DiffAugment, Zhao et al. 2020).

The functions below are the official DiffAugment_pytorch.py of
mit-han-lab/data-efficient-gans (the DiffAugment-stylegan2-pytorch copy:
ratio 1/8 translation and 1/2 cutout, sizes int(n * ratio + 0.5)), with one
change: each torch.rand / torch.randint call is replaced by a tensor passed
in, so the C++ test can apply the same draws. Writes
tests/data/diffaugment_goldens.json: the images, the draws (as the C++
DiffAugmentParams: brightness = r - 0.5, saturation = 2 r, contrast = r + 0.5,
integers as drawn), PyTorch's float64 output and the gradient of
sum(out * gy) with respect to the images. The C++ tests never need torch.
Regenerate with
  /usr/bin/python3 tests/golden/make_diffaugment_goldens.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240614)
D = torch.float64


# ---- the official functions; `r` / `t*` / `o*` are the injected draws ----
def rand_brightness(x, r):  # r = torch.rand(B, 1, 1, 1)
    x = x + (r - 0.5)
    return x


def rand_saturation(x, r):
    x_mean = x.mean(dim=1, keepdim=True)
    x = (x - x_mean) * (r * 2) + x_mean
    return x


def rand_contrast(x, r):
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - x_mean) * (r + 0.5) + x_mean
    return x


def rand_translation(x, translation_x, translation_y):  # torch.randint(-shift, shift + 1, size=[B, 1, 1])
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(x.size(2), dtype=torch.long, device=x.device),
        torch.arange(x.size(3), dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    x = x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)
    return x


def rand_cutout(x, offset_x, offset_y, ratio=0.5):  # torch.randint(0, n + (1 - size % 2), size=[B, 1, 1])
    cutout_size = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(cutout_size[0], dtype=torch.long, device=x.device),
        torch.arange(cutout_size[1], dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype, device=x.device)
    mask[grid_batch, grid_x, grid_y] = 0
    x = x * mask.unsqueeze(1)
    return x


def shift(n, ratio=0.125):
    return int(n * ratio + 0.5)


def cutout_size(n, ratio=0.5):
    return int(n * ratio + 0.5)


# ---- draws as the official code makes them (or given), and the forward ----
def draw(policy, B, H, W, given):
    p = {}
    for op in policy.split(","):
        if op == "color":
            for k in ("brightness", "saturation", "contrast"):
                p["r_" + k] = given.get("r_" + k, torch.rand(B, 1, 1, 1, dtype=D))
        elif op == "translation":
            sx, sy = shift(H), shift(W)
            p["shift_h"] = given.get("shift_h", torch.randint(-sx, sx + 1, size=[B, 1, 1]))
            p["shift_w"] = given.get("shift_w", torch.randint(-sy, sy + 1, size=[B, 1, 1]))
        elif op == "cutout":
            ch, cw = cutout_size(H), cutout_size(W)
            p["cutout_h"] = given.get("cutout_h", torch.randint(0, H + (1 - ch % 2), size=[B, 1, 1]))
            p["cutout_w"] = given.get("cutout_w", torch.randint(0, W + (1 - cw % 2), size=[B, 1, 1]))
    return p


def apply(x, policy, p):
    for op in policy.split(","):
        if op == "color":
            x = rand_brightness(x, p["r_brightness"])
            x = rand_saturation(x, p["r_saturation"])
            x = rand_contrast(x, p["r_contrast"])
        elif op == "translation":
            x = rand_translation(x, p["shift_h"], p["shift_w"])
        elif op == "cutout":
            x = rand_cutout(x, p["cutout_h"], p["cutout_w"])
    return x.contiguous()


def flat(t):
    return t.detach().reshape(-1).tolist()


def case(policy, B, C, H, W, **given):
    x = (torch.rand(B, C, H, W, dtype=D) * 2 - 1).requires_grad_(True)  # images in [-1, 1]
    p = draw(policy, B, H, W, {k: torch.tensor(v).view(B, 1, 1, 1) if k.startswith("r_") else
                               torch.tensor(v).view(B, 1, 1) for k, v in given.items()})
    y = apply(x, policy, p)
    gy = torch.randn(y.shape, dtype=D)
    (gx,) = torch.autograd.grad(y, x, gy)
    out = {"policy": policy, "x": flat(x), "x_shape": list(x.shape), "out": flat(y), "gy": flat(gy), "gx": flat(gx)}
    # The C++ DiffAugmentParams form.
    if "r_brightness" in p:
        out["brightness"] = flat(p["r_brightness"] - 0.5)
        out["saturation"] = flat(p["r_saturation"] * 2)
        out["contrast"] = flat(p["r_contrast"] + 0.5)
    for k in ("shift_h", "shift_w", "cutout_h", "cutout_w"):
        if k in p:
            out[k] = [int(v) for v in p[k].reshape(-1)]
    return out


g = {}
# 12 x 10: translation radius 2 x 1, cutout 6 (even: offsets 0..12) x 5 (odd: offsets 0..9).
g["color"] = case("color", 3, 3, 12, 10)
g["translation"] = case("translation", 3, 3, 12, 10, shift_h=[-2, 0, 2], shift_w=[1, -1, 0])
g["cutout"] = case("cutout", 3, 3, 12, 10, cutout_h=[0, 12, 5], cutout_w=[9, 0, 4])
g["all"] = case("color,translation,cutout", 4, 3, 12, 10)
# Another order: the draws and the ops follow it.
g["reordered"] = case("cutout,translation,color", 2, 3, 8, 8)
# Fashion-MNIST's shape: one channel (saturation is then the identity), radius 4, cutout 14.
g["gray28"] = case("color,translation,cutout", 2, 1, 28, 28)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "diffaugment_goldens.json")
with open(out, "w") as f:
    json.dump({"torch_version": torch.__version__, "cases": g}, f, separators=(",", ":"))
print("wrote", os.path.normpath(out))
