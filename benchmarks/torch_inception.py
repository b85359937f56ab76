#!/usr/bin/env python3
"""pytorch-fid's FID Inception-v3 forward timed as bench_inception times the
engine's: (B, 3, S, S) images in [-1, 1], bilinear resize to 299x299
(align_corners=False), through Mixed_7c to the 2048-d pool3 features and the
1008 logits (pool3 @ fc.weight^T), eval mode, no gradients, float32, random
weights. The network is torchvision's Inception3 with pytorch-fid's block
changes (average pools that leave the padding out of the count, Mixed_7c's
max pool), built here so that the script needs only torch and torchvision.

    torch_inception.py [--device cpu|cuda] [--batch N] [--size S] [--repeats N] [--warmup N]

Output: one line, inception-torch<TAB>device<TAB>batch<TAB>median ms per batch<TAB>images/s.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torchvision.models import inception


def avg_pool_no_pad_count(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FidA(inception.InceptionA):
    def _forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(avg_pool_no_pad_count(x))]


class FidC(inception.InceptionC):
    def _forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            bd = conv(bd)
        return [self.branch1x1(x), b7, bd, self.branch_pool(avg_pool_no_pad_count(x))]


class FidE(inception.InceptionE):
    def __init__(self, in_channels, max_pool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else avg_pool_no_pad_count(x)
        return [self.branch1x1(x), b3, bd, self.branch_pool(pool)]


def fid_inception():
    net = inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = FidA(192, 32), FidA(256, 64), FidA(288, 64)
    net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = FidC(768, 128), FidC(768, 160), FidC(768, 160), FidC(
        768, 192)
    net.Mixed_7b, net.Mixed_7c = FidE(1280, False), FidE(2048, True)
    return net.eval()


def forward(net, x):
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
        x = getattr(net, name)(x)
    x = F.max_pool2d(x, 3, 2)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, 2)
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                 "Mixed_7a", "Mixed_7b", "Mixed_7c"):
        x = getattr(net, name)(x)
    pool3 = F.adaptive_avg_pool2d(x, 1).flatten(1)
    return pool3, pool3 @ net.fc.weight.t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(5)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch_inception.py: --device {a.device}: torch sees no CUDA device")
    net = fid_inception().to(dev)
    for m in net.modules():  # eval-mode batch norm: statistics of the right kind
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(1.0, 1.1)
    images = torch.tanh(torch.randn(a.batch, 3, a.size, a.size)).to(dev)
    times = []
    with torch.no_grad():
        for r in range(a.warmup + a.repeats):
            t0 = time.perf_counter()
            pool3, logits = forward(net, images)
            pool3.cpu()
            t = (time.perf_counter() - t0) * 1000
            if r >= a.warmup:
                times.append(t)
    med = sorted(times)[len(times) // 2]
    print(f"inception-torch\t{dev}\t{a.batch}\t{med:.1f}\t{1000 * a.batch / med:.2f}")


if __name__ == "__main__":
    main()
