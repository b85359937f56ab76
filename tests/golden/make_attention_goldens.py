#!/usr/bin/python3
"""Golden values for the attention op, spectral-norm power iteration and Adam.

Writes tests/data/attention_goldens.json: inputs and PyTorch's outputs, read
by tests/test_attention.cpp, tests/test_spectral_norm.cpp and
tests/test_optim.cpp (through tests/golden/attention_goldens.h); the C++ tests
never need torch. Regenerate with
  /usr/bin/python3 tests/golden/make_attention_goldens.py

- attention_*: out = softmax(q k^T) v (no 1/sqrt(d) scaling, SAGAN), the map,
  and the input gradients of sum(out * gy), all float64.
- spectral_*: one training forward of torch.nn.utils.spectral_norm (one power
  iteration, v first: v = normalize(W^T u), u = normalize(W v)) from a fixed
  W, u0, v0; sigma = u^T W v; and torch.linalg.svdvals(W)[0].
- adam_*: several torch.optim.Adam steps on two tensors with a fixed gradient
  sequence, in float64 and float32 (float32 values are exact in the JSON).
"""
import json
import os

import torch
import torch.nn as nn

torch.manual_seed(20240612)
D = torch.float64


def flat(t):
    return t.detach().to(D).reshape(-1).tolist()


def entry(**kv):
    out = {}
    for k, v in kv.items():
        if isinstance(v, torch.Tensor):
            out[k] = flat(v)
            out[k + "_shape"] = list(v.shape)
        else:
            out[k] = v
    return out


g = {}


# ---- attention ----
def attention_case(name, B, N, S, d, dv, scale=1.0):
    q = (torch.randn(B, N, d, dtype=D) * scale).requires_grad_(True)
    k = (torch.randn(B, S, d, dtype=D) * scale).requires_grad_(True)
    v = torch.randn(B, S, dv, dtype=D).requires_grad_(True)
    p = torch.softmax(q @ k.transpose(1, 2), dim=-1)
    out = p @ v
    gy = torch.randn(out.shape, dtype=D)
    gq, gk, gv = torch.autograd.grad(out, (q, k, v), gy)
    g[name] = entry(q=q, k=k, v=v, out=out, map=p, gy=gy, gq=gq, gk=gk, gv=gv)


attention_case("attention_odd", 2, 7, 5, 3, 4)
attention_case("attention_square", 2, 6, 6, 3, 5)
# Unscaled logits around +-100: exp() overflows without the max subtraction.
attention_case("attention_large_logits", 2, 5, 4, 8, 3, scale=6.0)


# ---- spectral norm ----
def spectral_case(name, module, out_features):
    sn = nn.utils.spectral_norm(module.double(), n_power_iterations=1, eps=1e-12)
    w = sn.weight_orig.detach().clone()
    w2d = w.reshape(out_features, -1)
    u0 = torch.randn(w2d.shape[0], dtype=D)
    u0 = u0 / u0.norm()
    v0 = torch.randn(w2d.shape[1], dtype=D)
    v0 = v0 / v0.norm()
    with torch.no_grad():
        sn.weight_u.copy_(u0)
        sn.weight_v.copy_(v0)
    sn.train()
    x = torch.randn((1, w.shape[1]) + ((5, 5) if w.dim() == 4 else ()), dtype=D)
    sn(x)  # the forward pre-hook runs one power iteration and sets sn.weight
    u1, v1 = sn.weight_u.detach().clone(), sn.weight_v.detach().clone()
    sigma = torch.dot(u1, w2d @ v1)
    g[name] = entry(w=w2d, u0=u0, v0=v0, u1=u1, v1=v1, sigma=sigma.item(),
                    weight_sn=sn.weight.detach().reshape(w2d.shape),
                    sigma_max=torch.linalg.svdvals(w2d)[0].item())


spectral_case("spectral_linear", nn.Linear(7, 5), 5)
spectral_case("spectral_conv", nn.Conv2d(3, 4, 3), 4)


# ---- Adam ----
def adam_case(name, betas, dtype, steps=5, lr=1e-2, eps=1e-8):
    p0 = [torch.randn(3, 5, dtype=D), torch.randn(4, dtype=D)]
    grads = [[torch.randn(p.shape, dtype=D) * (0.1 + t) for p in p0] for t in range(steps)]
    params = [p.clone().to(dtype).requires_grad_(True) for p in p0]
    opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)
    after = []
    for t in range(steps):
        for p, gr in zip(params, grads[t]):
            p.grad = gr.to(dtype)
        opt.step()
        after.append([flat(p) for p in params])
    st = [opt.state[p] for p in params]
    g[name] = {
        "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "steps": steps,
        "dtype": str(dtype).replace("torch.", ""),
        "shapes": [list(p.shape) for p in p0],
        "p0": [flat(p.to(dtype)) for p in p0],
        "grads": [[flat(x.to(dtype)) for x in gs] for gs in grads],
        "params_after": after,
        "m": [flat(s["exp_avg"]) for s in st],
        "v": [flat(s["exp_avg_sq"]) for s in st],
    }


adam_case("adam_b0_0.9_f64", (0.0, 0.9), torch.float64)
adam_case("adam_b0.5_0.999_f64", (0.5, 0.999), torch.float64)
adam_case("adam_b0_0.9_f32", (0.0, 0.9), torch.float32)

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "data", "attention_goldens.json")
with open(path, "w") as f:
    json.dump({"torch_version": torch.__version__, "cases": g}, f, separators=(",", ":"))
    f.write("\n")
print("wrote", os.path.normpath(path))
