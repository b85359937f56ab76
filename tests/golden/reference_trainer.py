"""A small PyTorch SAGAN trainer for the reference models (sagan_reference.py).

It is written the way the anchors of /work/shared/SAGAN.md (BigGAN-PyTorch,
PyTorch-StudioGAN) train, independently of the engine's Trainer
(models/trainer.h), so that a difference between the two shows up in the
trajectory test (make_trajectory_goldens.py, tests/test_trajectory.cpp):

  one iteration (step):
    repeat n_dis times (d_step):
      fake = G(z, y_fake) under no_grad, G in training mode (SN iterates,
             BN batch statistics and running statistics update)
      out  = D(cat[x, fake], cat[y, y_fake])   one batch: one SN iteration
      loss_D = mean(relu(1 - out_real)) + mean(relu(1 + out_fake))
      backward; clip_grad_norm_(D) if grad_clip > 0; Adam(D)
    g_step: D's parameters frozen; fresh z, y_fake
      loss_G = -mean(D(G(z, y_fake))); backward; clip; Adam(G)
    step += 1; EMA with that count (BigGAN: decay 0 before ema_start)
  EMA: every parameter and the BN running statistics
    ema = decay * ema + (1 - decay) * G, as BigGAN-PyTorch's utils.ema (all
    of state_dict) and StudioGAN's Ema (all buffers but num_batches_tracked);
    the SN vectors weight_u / weight_v are COPIED from G. Those two average
    them too, but torch's spectral_norm in eval mode takes sigma = u^T W v
    with the stored u, v as unit vectors, and an average of rotating unit
    vectors is shorter (norms down to 0.43 by step 2000 of a Fashion-MNIST
    run: sigma 5x too small, G_ema's samples lose their classes).
    BigGAN-PyTorch escapes this only because its own SN re-runs a power
    iteration from u in eval mode.
  Optimisers: torch.optim.Adam (bias-corrected, eps outside the sqrt).

The inputs of every step (real batches, latents, fake labels) are arguments,
so a caller can feed both this trainer and the engine the same numbers;
draw_inputs() draws them for an ordinary training run.
"""
import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class TrainOptions:
    """Mirrors the optimisation part of models/train_config.h (TrainConfig)."""
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    adam_eps: float = 1e-8
    n_dis: int = 1
    ema_decay: float = 0.9999
    ema_start: int = 1000
    grad_clip: float = 0.0  # max global gradient norm per network; 0 = off


@dataclass
class DInputs:
    x: torch.Tensor  # (B, C, H, W) real images in [-1, 1]
    y: torch.Tensor  # (B,) int64 real labels (ignored when unconditional)
    z: torch.Tensor  # (B, z_dim)
    y_fake: torch.Tensor  # (B,) int64


@dataclass
class GInputs:
    z: torch.Tensor
    y_fake: torch.Tensor


class ReferenceTrainer:
    def __init__(self, G, D, opts):
        self.G, self.D, self.opts = G, D, opts
        self.conditional = G.cfg.num_classes > 0
        self.G_ema = copy.deepcopy(G)
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        self.G_ema.eval()
        betas = (opts.beta1, opts.beta2)
        self.opt_g = torch.optim.Adam(G.parameters(), lr=opts.lr_g, betas=betas, eps=opts.adam_eps)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=opts.lr_d, betas=betas, eps=opts.adam_eps)
        self.step_count = 0

    def _labels(self, y):
        return y if self.conditional else None

    def _clip(self, module):
        if self.opts.grad_clip <= 0:
            return 0.0
        return float(torch.nn.utils.clip_grad_norm_(module.parameters(), self.opts.grad_clip))

    def d_step(self, inp):
        G, D = self.G, self.D
        G.train()
        D.train()
        with torch.no_grad():
            fake = G(inp.z, self._labels(inp.y_fake))
        b = inp.x.shape[0]
        out = D(torch.cat([inp.x, fake]), self._labels(torch.cat([inp.y, inp.y_fake])))
        real, fk = out[:b], out[b:]
        loss = F.relu(1 - real).mean() + F.relu(1 + fk).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        norm = self._clip(D)
        self.opt_d.step()
        return {"loss_d": loss.item(), "d_real": real.mean().item(), "d_fake": fk.mean().item(), "grad_norm_d": norm}

    def g_step(self, inp):
        G, D = self.G, self.D
        G.train()
        D.train()
        for p in D.parameters():
            p.requires_grad_(False)
        try:
            y = self._labels(inp.y_fake)
            loss = -D(G(inp.z, y), y).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            norm = self._clip(G)
            self.opt_g.step()
        finally:
            for p in D.parameters():
                p.requires_grad_(True)
        return {"loss_g": loss.item(), "grad_norm_g": norm}

    @torch.no_grad()
    def update_ema(self):
        decay = 0.0 if self.step_count < self.opts.ema_start else self.opts.ema_decay
        src = self.G.state_dict()  # parameters and buffers
        for k, t in self.G_ema.state_dict().items():
            if k.endswith(".weight_u") or k.endswith(".weight_v"):
                t.copy_(src[k])  # power-iteration state: copied (see the top)
            else:
                t.copy_(t * decay + src[k] * (1 - decay))

    def step(self, d_inputs, g_inputs):
        """n_dis DInputs and one GInputs; returns the last D step's and the G step's statistics."""
        assert len(d_inputs) == self.opts.n_dis, (len(d_inputs), self.opts.n_dis)
        stats = {}
        for inp in d_inputs:
            stats.update(self.d_step(inp))
        stats.update(self.g_step(g_inputs))
        self.step_count += 1
        self.update_ema()
        stats["step"] = self.step_count
        return stats

    def optimizer_state(self, which):
        """Adam state under the engine's names (layers/adam.h): step, exp_avg.<p>, exp_avg_sq.<p>."""
        module, opt = (self.G, self.opt_g) if which == "G" else (self.D, self.opt_d)
        out = {}
        for name, p in module.named_parameters():
            st = opt.state[p]
            out["exp_avg." + name] = st["exp_avg"]
            out["exp_avg_sq." + name] = st["exp_avg_sq"]
            out["step"] = torch.tensor(int(st["step"]), dtype=torch.int64)
        return out


def draw_inputs(batches, cfg, n_dis, gen, dtype=torch.float32):
    """Inputs of one iteration for an ordinary run: `batches` yields (x, y)."""
    def latent():
        b = x.shape[0]
        z = torch.randn(b, cfg.z_dim, generator=gen, dtype=dtype)
        y_fake = torch.randint(0, max(cfg.num_classes, 1), (b,), generator=gen)
        return z, y_fake

    d = []
    for _ in range(n_dis):
        x, y = next(batches)
        z, yf = latent()
        d.append(DInputs(x.to(dtype), y, z, yf))
    z, yf = latent()
    return d, GInputs(z, yf)
