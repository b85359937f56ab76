#!/usr/bin/python3
"""Golden values for batch_norm, pooling, upsampling and indexing ops.

Writes tests/data/norm_pool_goldens.json: inputs and PyTorch's float64
outputs and input gradients (for a given upstream gradient gy). The C++ tests
read this file; they never need torch. Regenerate with
  /usr/bin/python3 tests/golden/make_norm_pool_goldens.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240611)
D = torch.float64


def flat(t):
    return t.detach().reshape(-1).tolist()


def entry(**kv):
    out = {}
    for k, v in kv.items():
        if isinstance(v, torch.Tensor):
            out[k] = flat(v)
            out[k + "_shape"] = list(v.shape)
        else:
            out[k] = v
    return out


def with_grad(fn, x):
    """Forward fn(x) and the gradient of sum(y * gy) with respect to x."""
    x = x.clone().requires_grad_(True)
    y = fn(x)
    gy = torch.randn(y.shape, dtype=D)
    (gx,) = torch.autograd.grad(y, x, gy)
    return y, gy, gx


g = {}

# Batch norm, training: batch statistics (biased variance) normalise; the
# running statistics move towards the batch mean and unbiased variance.
x = torch.randn(3, 4, 3, 5, dtype=D) * 2.0 + 0.7
rm0 = torch.randn(4, dtype=D)
rv0 = torch.rand(4, dtype=D) + 0.5
rm, rv = rm0.clone(), rv0.clone()
y, gy, gx = with_grad(lambda t: F.batch_norm(t, rm, rv, training=True, momentum=0.1, eps=1e-5), x)
# with_grad ran the forward once, so rm/rv hold exactly one update.
g["batch_norm_train"] = entry(x=x, running_mean0=rm0, running_var0=rv0, momentum=0.1, eps=1e-5, out=y,
                              running_mean=rm, running_var=rv, gy=gy, gx=gx)

# Batch norm, eval: running statistics are constants.
rm = torch.randn(4, dtype=D)
rv = torch.rand(4, dtype=D) + 0.5
y, gy, gx = with_grad(lambda t: F.batch_norm(t, rm, rv, training=False, eps=1e-5), x)
g["batch_norm_eval"] = entry(x=x, running_mean=rm, running_var=rv, eps=1e-5, out=y, gy=gy, gx=gx)

# Batch norm on (N, C) input (BatchNorm1d semantics).
x2 = torch.randn(5, 3, dtype=D)
y, gy, gx = with_grad(lambda t: F.batch_norm(t, None, None, training=True, eps=1e-5), x2)
g["batch_norm_2d"] = entry(x=x2, eps=1e-5, out=y, gy=gy, gx=gx)

# Pools on odd sizes: floor semantics drop the last row and column.
x = torch.randn(2, 3, 7, 5, dtype=D)
y, gy, gx = with_grad(lambda t: F.avg_pool2d(t, 2), x)
g["avg_pool2x2"] = entry(x=x, out=y, gy=gy, gx=gx)

# Small integers make ties common: the gradient goes to the first maximum.
xi = torch.randint(-2, 3, (2, 3, 7, 5)).to(D)
y, gy, gx = with_grad(lambda t: F.max_pool2d(t, 2), xi)
g["max_pool2x2_ties"] = entry(x=xi, out=y, gy=gy, gx=gx)

y, gy, gx = with_grad(lambda t: F.max_pool2d(t, 2), x)
g["max_pool2x2"] = entry(x=x, out=y, gy=gy, gx=gx)

x = torch.randn(2, 3, 3, 5, dtype=D)
y, gy, gx = with_grad(lambda t: F.interpolate(t, scale_factor=2, mode="nearest"), x)
g["upsample_nearest2x"] = entry(x=x, out=y, gy=gy, gx=gx)

# index_select with repeated indices (the backward accumulates them).
x = torch.randn(3, 5, 4, dtype=D)
idx = torch.tensor([4, 0, 4, 2, 1, 4])
for dim in (0, 1, 2):
    i = idx % x.shape[dim]
    y, gy, gx = with_grad(lambda t: torch.index_select(t, dim, i), x)
    g[f"index_select_dim{dim}"] = entry(x=x, dim=dim, idx=i.tolist(), out=y, gy=gy, gx=gx)

w = torch.randn(6, 3, dtype=D)
ids = torch.tensor([[1, 5, 1], [0, 1, 3]])
y, gy, gx = with_grad(lambda t: F.embedding(ids, t), w)
g["embedding"] = entry(weight=w, idx=ids.reshape(-1).tolist(), idx_shape=list(ids.shape), out=y, gy=gy, gx=gx)

a = torch.randn(2, 3, 4, dtype=D)
b = torch.randn(2, 1, 4, dtype=D)
c = torch.randn(2, 2, 4, dtype=D)
g["concat_dim1"] = entry(a=a, b=b, c=c, dim=1, out=torch.cat([a, b, c], 1))

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "data", "norm_pool_goldens.json")
with open(path, "w") as f:
    json.dump({"torch_version": torch.__version__, "cases": g}, f, separators=(",", ":"))
    f.write("\n")
print("wrote", os.path.normpath(path))
