#!/usr/bin/python3
"""Golden values for matmul, bmm, linear and conv2d.

Writes tests/data/conv_matmul_goldens.json: float64 inputs generated here,
PyTorch's outputs, and (for a random upstream gradient gy) the gradients of
sum(y * gy) with respect to every input. tests/test_matmul.cpp and
tests/test_conv2d.cpp read the file; they never need torch. Regenerate with
  /usr/bin/python3 tests/golden/make_conv_matmul_goldens.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240612)
D = torch.float64


def flat(t):
    return t.detach().reshape(-1).tolist()


def case(fn, inputs, **params):
    """Runs fn(**inputs, **params); records inputs, y, gy and d sum(y*gy)/d input."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves, **params)
    gy = r(*y.shape)
    grads = torch.autograd.grad(y, list(leaves.values()), gy)
    out = dict(params)
    for k, v in list(inputs.items()) + [("y", y), ("gy", gy)] + [("g" + k, g) for k, g in zip(leaves, grads)]:
        out[k] = flat(v)
        out[k + "_shape"] = list(v.shape)
    return out


def r(*shape):
    """Multiples of 1/8 in [-2, 2]: every product and sum below is exact in
    float64, so the goldens are exact and their decimal form is short."""
    return torch.randint(-16, 17, shape).to(D) / 8


cases = {
    "matmul_2d_2d": case(lambda a, b: a @ b, {"a": r(3, 5), "b": r(5, 4)}),
    "matmul_3d_3d": case(lambda a, b: a @ b, {"a": r(2, 3, 5), "b": r(2, 5, 4)}),
    "matmul_2d_3d": case(lambda a, b: a @ b, {"a": r(3, 5), "b": r(2, 5, 4)}),
    "matmul_3d_2d": case(lambda a, b: a @ b, {"a": r(2, 3, 5), "b": r(5, 4)}),
    "matmul_bcast1": case(lambda a, b: a @ b, {"a": r(1, 3, 5), "b": r(3, 5, 4)}),
    "bmm": case(lambda a, b: torch.bmm(a, b), {"a": r(3, 4, 6), "b": r(3, 6, 5)}),
    "linear_bias": case(lambda x, w, b: F.linear(x, w, b), {"x": r(2, 3, 5), "w": r(4, 5), "b": r(4)}),
    "linear_nobias": case(lambda x, w: F.linear(x, w), {"x": r(3, 5), "w": r(4, 5)}),
}

# conv2d: B=2, Ci=3, Co=5 on a 7x6 input, every kernel/stride/pad combination
# SAGAN uses and a few it does not.
for k, s, p, bias in [(3, 1, 1, True), (3, 2, 1, True), (3, 1, 0, False), (3, 2, 0, False),
                      (1, 1, 0, True), (1, 2, 0, False), (1, 1, 1, True), (5, 1, 2, False)]:
    inputs = {"x": r(2, 3, 7, 6), "w": r(5, 3, k, k)}
    if bias:
        inputs["b"] = r(5)
        fn = lambda x, w, b, stride, padding: F.conv2d(x, w, b, stride=stride, padding=padding)
    else:
        fn = lambda x, w, stride, padding: F.conv2d(x, w, None, stride=stride, padding=padding)
    cases[f"conv2d_k{k}_s{s}_p{p}" + ("_bias" if bias else "")] = case(fn, inputs, stride=s, padding=p)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "conv_matmul_goldens.json")
with open(path, "w") as f:
    json.dump({"generator": "tests/golden/make_conv_matmul_goldens.py", "torch": torch.__version__, "cases": cases},
              f, separators=(",", ":"))
print(f"wrote {os.path.normpath(path)}: {len(cases)} cases")
