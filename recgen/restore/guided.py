"""Restoration with a trained diffusion generator (recgen.generate, family 'diffusion'), no retraining.

    ddnm     Denoising Diffusion Null-space Model (arXiv 2212.00490) for a linear degradation y = A x: at every
             step the network's estimate of the clean image x0 is corrected to agree with y,
                 x0 <- A^+ y + (I - A^+ A) x0
             (inpainting: A keeps the known pixels, A^+ = A; super-resolution: A = area downscaling,
             A^+ = pixel replication), and the DDIM scheduler (arXiv 2010.02502) steps from the corrected x0
             (diffusers, prediction_type="sample"), so the update rule stays the scheduler's.
    repaint  RePaint (arXiv 2201.09865), inpainting only: the known region is re-noised to each step's level and
             pasted in, with forward "jumps" that let the generated region harmonise (diffusers' RePaintScheduler).
    reverse  denoising: Gaussian noise of std sigma (on [0, 1]) is the forward process itself at the step t* where
             sqrt((1 - a_t) / a_t) = 2 sigma (images in [-1, 1]): scale y by sqrt(a_t*) and run the reverse process
             from t*. One step is Tweedie's posterior mean E[x0 | x_t*] (the MMSE estimate, best PSNR); more steps
             give sharper samples.

The generator's unconditional prediction is used (the "no condition" token that classifier-free guidance training
teaches), so class-conditional runs need cond_dropout > 0.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, RePaintScheduler

from recgen.errors import RecgenError
from recgen.generate.diffusion import make_scheduler
from recgen.restore.degrade import Observation, consistent, project

# The first of each task is its default.
METHODS = {"inpaint": ("ddnm", "repaint"), "denoise": ("reverse",), "superres": ("ddnm",)}


def check_generator(gen, task: str, method: str) -> None:
    """Refuse generator runs that cannot do `task` with `method`, in one line."""
    if gen.family != "diffusion":
        raise RecgenError(f"{gen.path}: a {gen.family} run cannot restore images; use a diffusion generator run or "
                          f"a restorer run (recgen restore train --task {task})")
    if method not in METHODS[task]:
        raise RecgenError(f"method {method!r} cannot {task}; choose {' or '.join(METHODS[task])}")
    if gen.arch.cond != "none" and gen.arch.cond_dropout <= 0:
        raise RecgenError(f"{gen.path}: this {gen.arch.cond}-conditional run was trained without cond_dropout, so it "
                          "has no unconditional prediction to restore with")


def _eps(model, x: torch.Tensor, t) -> torch.Tensor:
    """The unconditional noise prediction (B, C, H, W) at timestep t."""
    return model(x, torch.full((len(x),), int(t), device=x.device), None)


def _x0(sched, x: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    a = sched.alphas_cumprod[int(t)].to(x)
    return ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)


@torch.no_grad()
def ddnm(gen, obs: Observation, g: torch.Generator, steps: int = 20, eta: float = 0.85) -> torch.Tensor:
    """Inpainting / super-resolution by null-space guidance; images (N, C, H, W) in [0, 1]."""
    model = gen.modules["model"]
    dev = next(model.parameters()).device
    base = make_scheduler(gen.arch, "ddim")
    sched = DDIMScheduler.from_config(base.config, prediction_type="sample", clip_sample=False)
    sched.set_timesteps(steps)
    y = (obs.y.to(dev) * 2 - 1)
    x = torch.randn(obs.out_shape, generator=g).to(dev)
    for t in sched.timesteps:
        x0 = project(obs, _x0(sched, x, _eps(model, x, t), t), y)  # (N, C, H, W), consistent with y
        x = sched.step(x0, t, x, eta=eta, generator=g).prev_sample
    return consistent(obs, ((x + 1) / 2).clamp(0, 1)).cpu()


@torch.no_grad()
def repaint(gen, obs: Observation, g: torch.Generator, steps: int = 50, jump_length: int = 5,
            jump_n_sample: int = 3) -> torch.Tensor:
    """RePaint inpainting with resampling jumps; images (N, C, H, W) in [0, 1]."""
    model = gen.modules["model"]
    dev = next(model.parameters()).device
    a = gen.arch
    sched = RePaintScheduler(num_train_timesteps=a.train_timesteps, beta_schedule=a.beta_schedule, eta=1.0)
    sched.set_timesteps(steps, jump_length, jump_n_sample)
    y, known = obs.y.to(dev) * 2 - 1, 1 - obs.mask.to(dev)
    x = torch.randn(obs.out_shape, generator=g).to(dev)
    t_last = int(sched.timesteps[0]) + 1
    for t in sched.timesteps.tolist():
        if t < t_last:  # a reverse step: denoise the unknown region, re-noise and paste the known one
            x = sched.step(_eps(model, x, t), t, x, y, known, generator=g).prev_sample
        else:  # a forward jump: add back the noise of the steps between
            x = sched.undo_step(x, t_last, generator=g)
        t_last = t
    return consistent(obs, ((x + 1) / 2).clamp(0, 1)).cpu()


@torch.no_grad()
def denoise(gen, obs: Observation, g: torch.Generator, steps: int = 1) -> torch.Tensor:
    """Denoising by entering the reverse process at the step whose noise level matches sigma (per image group)."""
    model = gen.modules["model"]
    dev = next(model.parameters()).device
    sched = make_scheduler(gen.arch, "ddim")
    abar = sched.alphas_cumprod  # (T,)
    ratio = ((1 - abar) / abar).sqrt()  # noise-to-signal ratio of each training timestep, increasing
    out = torch.empty(obs.out_shape)
    t_star = torch.searchsorted(ratio, (2 * obs.sigma).clamp(min=float(ratio[0])))  # (N,), noise std in [-1, 1]
    t_star = t_star.clamp(max=len(abar) - 1)
    for t0 in t_star.unique().tolist():
        idx = (t_star == t0).nonzero()[:, 0]
        x = (obs.y[idx].to(dev) * 2 - 1) * abar[t0].sqrt()  # x_t* = sqrt(a) y: signal sqrt(a) x0, noise sqrt(a) 2 sigma
        ts = torch.linspace(t0, 0, steps + 1).round().long()[:-1] if steps > 1 else torch.tensor([t0])
        for i, t in enumerate(ts.tolist()):
            x0 = _x0(sched, x, _eps(model, x, t), t)
            if i + 1 == len(ts):
                x = x0
                break
            a_next = abar[int(ts[i + 1])].to(x)
            eps = (x - abar[t].sqrt().to(x) * x0) / (1 - abar[t]).sqrt().to(x)
            # deterministic DDIM step (eta = 0, arXiv 2010.02502 eq. 12) between the irregular timesteps
            # t*, ..., 0 that the fixed-stride diffusers scheduler cannot take
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        out[idx] = ((x + 1) / 2).clamp(0, 1).cpu()
    return out
