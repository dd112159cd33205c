"""Optimizers, learning-rate schedules and the EMA update of the training loop (recgen/train.py)."""

from __future__ import annotations

import torch
from torch import nn

from recgen.config import TrainConfig
from recgen.errors import RecgenError


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and normalisation gains: decaying them only hurts (arXiv 1706.05350).
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    raise RecgenError(f"optimizer must be adamw or sgd, got {cfg.optimizer!r}")


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    sched = torch.optim.lr_scheduler
    warm = max(1, int(cfg.warmup * total_steps))
    if cfg.schedule == "onecycle":  # arXiv 1708.07120
        total = max(total_steps, 4)  # OneCycleLR needs each phase to span at least one step
        return sched.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=min(0.5, max(cfg.warmup, 2 / total)),
                                cycle_momentum=cfg.optimizer == "sgd", div_factor=25.0, final_div_factor=1e3)
    if cfg.schedule == "cosine":  # arXiv 1608.03983, one cycle without restarts, after linear warmup
        return sched.SequentialLR(opt, [sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm),
                                        sched.CosineAnnealingLR(opt, T_max=max(1, total_steps - warm))],
                                  milestones=[warm])
    if cfg.schedule == "linear":  # linear warmup then linear decay to zero (the airbench / ResNet-9 shape)
        return sched.SequentialLR(opt, [sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm),
                                        sched.LinearLR(opt, 1.0, 0.0, total_iters=max(1, total_steps - warm))],
                                  milestones=[warm])
    if cfg.schedule == "constant":
        return sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm)
    raise RecgenError(f"schedule must be onecycle, cosine, linear or constant, got {cfg.schedule!r}")


def ema_with_warmup(decay: float):
    """EMA update for AveragedModel whose decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates
    (n = updates so far), the warm-up of diffusers' EMAModel. A plain EMA of 0.999 remembers ~1000 steps, so
    after a short run its weights were still mostly the random initial ones (a one-epoch GAN's EMA generator
    drew unrecognizable samples)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        d = min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:  # integer buffers (BatchNorm's step count) cannot be lerped
            for a, c in zip(averaged, current, strict=True):
                a.copy_(a * d + c * (1 - d))

    return update
