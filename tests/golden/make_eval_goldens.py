#!/usr/bin/python3
"""Golden values for the evaluation code (tests/test_eval_*.cpp).

Writes tests/data/eval_goldens.json (float64 values, full precision):
  ops        conv2d_rect, max/avg pooling, adaptive average pooling and
             bilinear resize, from torch.nn.functional on fixed inputs;
  metrics    Frechet distance as pytorch-fid computes it (scipy.linalg.sqrtm
             of S1 S2), np.cov statistics, the unbiased cubic-kernel MMD^2
             as torch-fidelity computes it, the Inception Score as the
             original code computes it, k-NN precision/recall as
             Kynkaanniemi et al.'s reference code computes it;
  inception  pool3 features and logits of pytorch-fid's FID Inception-v3
             (fid_inception_torch.py: torchvision's Inception3 with
             pytorch-fid's FIDInceptionA/C/E blocks) with deterministic pseudo-random weights that the C++
             test regenerates from the same formula (weight_value below), so
             no 96 MB weights file is needed.

Needs torch, torchvision and scipy (Debian: python3-torch python3-torchvision
python3-scipy). Run from anywhere: /usr/bin/python3 tests/golden/make_eval_goldens.py
"""
import json
import os

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

import fid_inception_torch  # beside this script

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "eval_goldens.json")


def flat(t):
    return [float(v) for v in np.asarray(t, dtype=np.float64).reshape(-1)]


def tensor_entry(t):
    t = torch.as_tensor(t)
    return {"shape": list(t.shape), "values": flat(t.detach().numpy())}


# ---------------------------------------------------------------- ops
def ops_goldens():
    g = torch.Generator().manual_seed(7)
    out = {}
    x = torch.randn(2, 3, 5, 7, generator=g)
    out["x"] = tensor_entry(x)
    convs = []
    for (kh, kw, sh, sw, ph, pw, co) in [(1, 3, 1, 1, 0, 1, 4), (3, 1, 2, 1, 1, 0, 4), (2, 3, 2, 2, 1, 0, 2),
                                          (1, 7, 1, 1, 0, 3, 3), (7, 1, 1, 1, 3, 0, 3), (3, 3, 1, 2, 1, 1, 5)]:
        w = torch.randn(co, 3, kh, kw, generator=g)
        b = torch.randn(co, generator=g)
        y = F.conv2d(x, w, b, stride=(sh, sw), padding=(ph, pw))
        convs.append({"stride": [sh, sw], "pad": [ph, pw], "w": tensor_entry(w), "b": tensor_entry(b),
                      "y": tensor_entry(y)})
    out["conv2d_rect"] = convs
    pools = []
    for (kind, k, s, p, cip) in [("max", 3, 2, 0, True), ("max", 3, 1, 1, True), ("avg", 3, 1, 1, False),
                                 ("avg", 3, 1, 1, True), ("avg", 3, 2, 1, False), ("max", 2, 2, 1, True)]:
        if kind == "max":
            y = F.max_pool2d(x, k, s, p)
        else:
            y = F.avg_pool2d(x, k, s, p, count_include_pad=cip)
        pools.append({"kind": kind, "kernel": k, "stride": s, "pad": p, "count_include_pad": cip,
                      "y": tensor_entry(y)})
    out["pool2d"] = pools
    out["adaptive"] = [{"size": list(sz), "y": tensor_entry(F.adaptive_avg_pool2d(x, sz))}
                       for sz in [(1, 1), (3, 2), (4, 5), (5, 7), (2, 4)]]
    out["resize"] = [{"size": list(sz),
                      "y": tensor_entry(F.interpolate(x, size=sz, mode="bilinear", align_corners=False))}
                     for sz in [(11, 17), (3, 4), (5, 7), (1, 1), (13, 3)]]
    return out


# ---------------------------------------------------------------- metrics
def fid_pytorch_fid(mu1, s1, mu2, s2):
    # pytorch-fid's calculate_frechet_distance (without its eps retry).
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean), float(tr_covmean)


def kid_mmd2(f1, f2):
    # torch-fidelity's mmd2 with the polynomial kernel (degree 3, gamma 1/d, coef 1), unbiased.
    d = f1.shape[1]
    kxx = (f1 @ f1.T / d + 1) ** 3
    kyy = (f2 @ f2.T / d + 1) ** 3
    kxy = (f1 @ f2.T / d + 1) ** 3
    m = f1.shape[0]
    kt_xx = kxx.sum() - np.trace(kxx)
    kt_yy = kyy.sum() - np.trace(kyy)
    return float((kt_xx + kt_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def inception_score(logits, splits):
    p = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    n = p.shape[0]
    scores = []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part) - np.log(py))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def precision_recall(real, fake, k):
    # Kynkaanniemi et al.'s ManifoldEstimator, squared distances, self included at rank 0.
    def sqd(a, b):
        return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]

    def radii(s):
        return np.partition(sqd(s, s), k, axis=1)[:, k]

    def cover(q, ref):
        return float((sqd(q, ref) <= radii(ref)[None, :]).any(axis=1).mean())

    return cover(fake, real), cover(real, fake)


def metrics_goldens():
    rng = np.random.default_rng(11)
    d = 6
    a = rng.normal(size=(d, d))
    b = rng.normal(size=(d, d))
    s1 = a @ a.T / d + 0.1 * np.eye(d)
    s2 = b @ b.T / d + 0.05 * np.eye(d)
    mu1 = rng.normal(size=d)
    mu2 = rng.normal(size=d)
    fd, tr = fid_pytorch_fid(mu1, s1, mu2, s2)
    # A rank-deficient covariance (3 samples in 6-d) against a full one.
    few = rng.normal(size=(3, d))
    s3 = np.cov(few, rowvar=False)
    fd3, tr3 = fid_pytorch_fid(mu1, s3, mu2, s2)
    feats = rng.normal(size=(37, 5)) * np.array([1.0, 2.0, 0.5, 3.0, 1.5]) + np.array([1, -2, 0, 4, 0.5])
    feats[:, 1] += 0.7 * feats[:, 0]
    kx = rng.normal(size=(30, 8))
    ky = rng.normal(size=(30, 8)) * 1.1 + 0.2
    logits = rng.normal(size=(40, 7)) * 2.0
    real = rng.normal(size=(40, 4))
    fake = rng.normal(size=(35, 4)) * 0.8 + 0.5
    prec, rec = precision_recall(real, fake, 3)
    is_mean, is_std = inception_score(logits, 4)
    return {
        "fid": {"mu1": flat(mu1), "mu2": flat(mu2), "s1": flat(s1), "s2": flat(s2), "s3": flat(s3), "dim": d,
                "fd": fd, "trace_sqrt": tr, "fd_rank_deficient": fd3, "trace_sqrt_rank_deficient": tr3},
        "cov": {"x": tensor_entry(feats), "mu": flat(feats.mean(0)), "sigma": flat(np.cov(feats, rowvar=False))},
        "kid": {"x": tensor_entry(kx), "y": tensor_entry(ky), "mmd2": kid_mmd2(kx, ky)},
        "is": {"logits": tensor_entry(logits), "splits": 4, "mean": is_mean, "std": is_std},
        "pr": {"real": tensor_entry(real), "fake": tensor_entry(fake), "k": 3, "precision": prec, "recall": rec},
    }


# ---------------------------------------------------------------- FID Inception
def fnv1a32(s):
    h = 0x811C9DC5
    for c in s.encode():
        h ^= c
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def uniform01(name, n):
    """u_j = fmix32(fnv1a32(name) + j * 0x9E3779B9) / 2^32: the C++ test's formula."""
    h = np.uint64(fnv1a32(name))
    j = np.arange(n, dtype=np.uint64)
    x = ((h + j * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)).astype(np.uint64)
    m = np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & m
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & m
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 4294967296.0


def weight_value(name, shape):
    """Deterministic weights that keep activations O(1) through the network."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform01(name, n)
    if name.endswith("conv.weight") or name == "fc.weight":
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * np.sqrt(6.0 / fan_in)
    elif name.endswith("bn.weight") or name.endswith("bn.running_var"):
        v = 0.8 + 0.4 * u
    else:  # bn.bias, bn.running_mean, fc.bias
        v = 0.2 * (u - 0.5)
    return torch.from_numpy(v.reshape(shape))


def weighted_fid_inception():
    """The FID network with weight_value's weights."""
    net = fid_inception_torch.fid_inception()
    sd = {k: weight_value(k, tuple(v.shape)) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    return net


def inception_goldens():
    net = weighted_fid_inception()
    names = [k for k, v in net.state_dict().items() if v.is_floating_point()]
    cases = []
    for (h, w, size, seed) in [(35, 29, 99, 3), (32, 32, 299, 4)]:
        # Image in [-1, 1] as the engine sees it; pytorch-fid's input is (x + 1) / 2.
        img = 2 * uniform01(f"image{seed}", 3 * h * w).reshape(1, 3, h, w) - 1
        x = torch.from_numpy((img + 1) / 2)
        with torch.no_grad():
            feat = fid_inception_torch.pool3(net, x, size)
            logits = feat @ net.fc.weight.T  # torch-fidelity's logits_unbiased (IS)
            logits_bias = net.fc(feat)
            # The engine's check of the whole torchvision forward (its own pools and avgpool + fc).
            full = net(F.interpolate(2 * x - 1, size=(size, size), mode="bilinear", align_corners=False))
        assert torch.allclose(full, logits_bias)
        cases.append({"seed": seed, "h": h, "w": w, "size": size, "pool3": flat(feat), "logits": flat(logits),
                      "logits_bias": flat(logits_bias)})
    return {"names": names, "shapes": {k: list(v.shape) for k, v in net.state_dict().items()
                                         if v.is_floating_point()}, "cases": cases}


def main():
    data = {"ops": ops_goldens(), "metrics": metrics_goldens(), "inception": inception_goldens()}
    with open(OUT, "w") as f:
        json.dump(data, f)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
