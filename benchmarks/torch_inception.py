#!/usr/bin/python3
"""pytorch-fid's FID Inception-v3 forward timed as bench_inception times the
engine's: (B, 3, S, S) images, pytorch-fid's wrapper (bilinear resize to
299x299, align_corners=False, then to [-1, 1]) through Mixed_7c to the
2048-d pool3 features and the 1008 logits (pool3 @ fc.weight^T), eval mode,
no gradients, float32, random weights. The network is the one the golden
values check (tests/golden/fid_inception_torch.py); needs torch and
torchvision.

    torch_inception.py [--device cpu|cuda] [--batch N] [--size S] [--repeats N] [--warmup N]

Output: one line, inception-torch<TAB>device<TAB>batch<TAB>median ms per batch<TAB>images/s.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import fid_inception_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    if a.batch < 1 or a.size < 1 or a.repeats < 1 or a.warmup < 0:
        sys.exit("torch_inception.py: --batch, --size and --repeats must be positive, --warmup >= 0")
    # As the engine's OpenMP: OMP_NUM_THREADS, else 2 (run_inception.sh sets
    # it; alone, torch would take its own default, 1 on some builds).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    print(f"torch_inception.py: {torch.get_num_threads()} threads", file=sys.stderr)
    torch.manual_seed(5)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch_inception.py: --device {a.device}: torch sees no CUDA device")
    net = fid_inception_torch.fid_inception()
    with torch.no_grad():
        for p in net.parameters():  # bench_inception's weights: N(0, 0.05), seeded
            p.normal_(0, 0.05)
        for m in net.modules():  # eval-mode batch norm: positive variances
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.uniform_(1.0, 1.1)
    net = net.to(dev)
    images = ((torch.tanh(torch.randn(a.batch, 3, a.size, a.size)) + 1) / 2).to(dev)  # in [0, 1]
    times = []
    with torch.no_grad():
        for r in range(a.warmup + a.repeats):
            t0 = time.perf_counter()
            pool3 = fid_inception_torch.pool3(net, images)
            logits = pool3 @ net.fc.weight.t()
            logits.cpu()
            t = (time.perf_counter() - t0) * 1000
            if r >= a.warmup:
                times.append(t)
    med = sorted(times)[len(times) // 2]
    print(f"inception-torch\t{dev}\t{a.batch}\t{med:.1f}\t{1000 * a.batch / med:.2f}")


if __name__ == "__main__":
    main()
