"""PyTorch reference of the sagan engine's SAGAN (generator, discriminator).

Module for module and name for name the same as layers/ and models/ in C++,
so that state dicts move both ways (checkpoint interop) and benchmarks can
time the same network in PyTorch. Runs with torch 1.13 (/usr/bin/python3):

    from sagan_reference import Config, Generator, Discriminator
    cfg = Config(resolution=32, ch=64, num_classes=10)   # or g_ch=..., d_ch=... apart
    G, D = Generator(cfg), Discriminator(cfg)
    x = G(torch.randn(8, cfg.z_dim), torch.randint(0, 10, (8,)))

Choices (the official TF code, brain-research/self-attention-gan, wins over
the paper; /work/shared/SAGAN.md):
  * Spectral norm is torch.nn.utils.spectral_norm (weight_orig, weight_u,
    weight_v; one power iteration per training forward, v first then u,
    eps 1e-12; eval uses the stored u, v). Embeddings keep dim 0: W is
    (classes, C), u has `classes` entries, v has C.
  * Initialisation as the official code: xavier-uniform for every conv,
    linear and the projection embedding; zeros for biases.
  * Conditional BN as the official code: BN without affine (eps 1e-5,
    momentum 0.1) then per-class gamma = 1 + gain[y], beta = bias[y], where
    gain and bias are plain (not spectrally normalised) embeddings
    initialised to zero (official gamma init 1, beta init 0). With no
    classes it is an ordinary affine BatchNorm2d (weight, bias).
  * BatchNorm keeps only running_mean / running_var (no num_batches_tracked).
  * Self-attention (official form): theta, phi C->C/8, g C->C/2, 2x2 max-pool
    on phi and g, softmax(theta^T phi) without scaling, output SN conv
    C/2->C, y = x + gamma * o, gamma (1,) init 0; all 1x1 convs without bias.
    pooled=False is the paper's text: no pooling, g C->C, no output conv.
  * Modules run in sequence in `blocks`; an attention block is an entry of
    its own after the residual block whose output resolution it names.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

SN_EPS = 1e-12
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _log2(n):
    return int(round(math.log2(n)))


class Config:
    """Mirrors models/config.h (SaganConfig)."""

    def __init__(self, resolution=32, ch=64, z_dim=128, num_classes=10, g_attn_res=None, d_attn_res=None,
                 pooled_attention=True, image_channels=3, g_ch=None, d_ch=None):
        self.resolution = resolution
        self.ch = ch
        # Each network's width multiplier; ch for both unless given (None or 0).
        self.g_ch = g_ch or ch
        self.d_ch = d_ch or ch
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.pooled_attention = pooled_attention
        self.image_channels = image_channels
        default = [self.default_attn_res(resolution)]
        self.g_attn_res = list(default if g_attn_res is None else g_attn_res)
        self.d_attn_res = list(default if d_attn_res is None else d_attn_res)

    @staticmethod
    def default_attn_res(resolution):
        # 32 -> 16, 64 -> 32, 128 -> 64; capped at 64 beyond (memory).
        return min(resolution // 2, 64)

    def g_factors(self):
        """G's width factors at 4x4 and after each up block; D's reversed (R >= 64)."""
        if self.resolution == 32:
            return [4, 4, 4, 4]
        n = _log2(self.resolution) - 2
        return [16] * max(0, n + 1 - 5) + [16, 8, 4, 2, 1]

    def g_widths(self):
        """Channels at 4x4 and after each up block (len = blocks + 1)."""
        return [m * self.g_ch for m in self.g_factors()]

    def d_blocks(self):
        """(in, out, downsample, output resolution) of each D block."""
        if self.resolution == 32:
            c = 2 * self.d_ch
            specs = [(self.image_channels, c, True), (c, c, True), (c, c, False), (c, c, False)]
        else:
            outs = [m * self.d_ch for m in reversed(self.g_factors())]
            specs = [(self.image_channels, outs[0], True)]
            for i in range(1, len(outs)):
                specs.append((outs[i - 1], outs[i], i < len(outs) - 1))
        res, out = self.resolution, []
        for cin, cout, down in specs:
            res = res // 2 if down else res
            out.append((cin, cout, down, res))
        return out


def _xavier(m):
    nn.init.xavier_uniform_(m.weight)
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)
    return m


def sn_conv2d(cin, cout, k, bias=True):
    return spectral_norm(_xavier(nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)), eps=SN_EPS)


def sn_linear(cin, cout, bias=True):
    return spectral_norm(_xavier(nn.Linear(cin, cout, bias=bias)), eps=SN_EPS)


def sn_embedding(num, dim):
    return spectral_norm(_xavier(nn.Embedding(num, dim)), eps=SN_EPS)


class BatchNorm2d(nn.Module):
    """Affine BN with running statistics (no num_batches_tracked buffer)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x, y=None):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            BN_MOMENTUM, BN_EPS)


class ConditionalBatchNorm2d(nn.Module):
    """BN without affine, then gamma = 1 + gain[y], beta = bias[y]."""

    def __init__(self, c, num_classes):
        super().__init__()
        self.num_classes = num_classes
        if num_classes > 0:
            self.gain = nn.Embedding(num_classes, c)
            self.bias = nn.Embedding(num_classes, c)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        else:
            self.weight = nn.Parameter(torch.ones(c))
            self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x, y):
        if self.num_classes == 0:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                                BN_MOMENTUM, BN_EPS)
        h = F.batch_norm(x, self.running_mean, self.running_var, None, None, self.training, BN_MOMENTUM, BN_EPS)
        gain = (1 + self.gain(y))[:, :, None, None]
        bias = self.bias(y)[:, :, None, None]
        return h * gain + bias


class SelfAttention(nn.Module):
    """keep_map: whether forward keeps its attention map (detached) as
    last_map, for the goldens and for inspection. On by default; the
    benchmarks turn it off (at SAGAN-128, batch 64, one map is 1 GiB, kept
    alive until the module's next forward)."""

    def __init__(self, c, pooled=True, keep_map=True):
        super().__init__()
        self.pooled = pooled
        self.keep_map = keep_map
        cv = c // 2 if pooled else c
        self.theta = sn_conv2d(c, c // 8, 1, bias=False)
        self.phi = sn_conv2d(c, c // 8, 1, bias=False)
        self.g = sn_conv2d(c, cv, 1, bias=False)
        if pooled:
            self.o = sn_conv2d(cv, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.last_map = None

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, -1, h * w)  # (B, C/8, N)
        phi = self.phi(x)
        g = self.g(x)
        if self.pooled:
            phi = F.max_pool2d(phi, 2)
            g = F.max_pool2d(g, 2)
        phi = phi.view(b, phi.shape[1], -1)  # (B, C/8, S)
        g = g.view(b, g.shape[1], -1)  # (B, Cv, S)
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # (B, N, S)
        if self.keep_map:
            self.last_map = beta.detach()
        o = torch.bmm(g, beta.transpose(1, 2)).view(b, -1, h, w)  # (B, Cv, H, W)
        if self.pooled:
            o = self.o(o)
        return x + self.gamma * o


class GBlock(nn.Module):
    def __init__(self, cin, cout, num_classes):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = sn_conv2d(cin, cout, 3)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = sn_conv2d(cout, cout, 3)
        self.conv_sc = sn_conv2d(cin, cout, 1)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class DOptimizedBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = sn_conv2d(cin, cout, 3)
        self.conv2 = sn_conv2d(cout, cout, 3)
        self.conv_sc = sn_conv2d(cin, cout, 1)

    def forward(self, x):
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.conv_sc(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    def __init__(self, cin, cout, down):
        super().__init__()
        self.down = down
        self.conv1 = sn_conv2d(cin, cout, 3)
        self.conv2 = sn_conv2d(cout, cout, 3)
        self.learnable_sc = cin != cout or down
        if self.learnable_sc:
            self.conv_sc = sn_conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = self.conv_sc(x) if self.learnable_sc else x
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        widths = cfg.g_widths()
        self.linear = sn_linear(cfg.z_dim, widths[0] * 16)
        blocks, res = [], 4
        for i in range(1, len(widths)):
            blocks.append(GBlock(widths[i - 1], widths[i], cfg.num_classes))
            res *= 2
            if res in cfg.g_attn_res:
                blocks.append(SelfAttention(widths[i], cfg.pooled_attention))
        self.blocks = nn.ModuleList(blocks)
        self.bn = BatchNorm2d(widths[-1])
        self.conv_out = sn_conv2d(widths[-1], cfg.image_channels, 3)

    def forward(self, z, y=None):
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        for m in self.blocks:
            h = m(h, y) if isinstance(m, GBlock) else m(h)
        return torch.tanh(self.conv_out(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        blocks, done = [], set()
        for i, (cin, cout, down, res) in enumerate(cfg.d_blocks()):
            blocks.append(DOptimizedBlock(cin, cout) if i == 0 else DBlock(cin, cout, down))
            if res in cfg.d_attn_res and res not in done:  # after the first block at that resolution
                blocks.append(SelfAttention(cout, cfg.pooled_attention))
                done.add(res)
        self.blocks = nn.ModuleList(blocks)
        c = cfg.d_blocks()[-1][1]
        self.linear = sn_linear(c, 1)
        if cfg.num_classes > 0:
            self.embed = sn_embedding(cfg.num_classes, c)

    def forward(self, x, y=None):
        h = x
        for m in self.blocks:
            h = m(h)
        h = torch.sum(F.relu(h), dim=(2, 3))  # (B, C)
        out = self.linear(h).squeeze(1)
        if self.cfg.num_classes > 0:
            out = out + torch.sum(self.embed(y) * h, dim=1)
        return out


def num_parameters(m):
    return sum(p.numel() for p in m.parameters())
