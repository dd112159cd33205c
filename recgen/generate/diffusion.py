"""Diffusion: DDPM training (arXiv 2006.11239) of a small diffusers UNet2DModel at the images' own size, sampled
with DDPM, DDIM (arXiv 2010.02502) or DPM-Solver++ (arXiv 2211.01095) for any number of steps, with
classifier-free guidance (arXiv 2207.12598), SDEdit image variations (arXiv 2108.01073) and interpolation between
images through DDIM inversion.

The network only predicts the noise; the schedulers (diffusers) own the timesteps and update rules; `sample` is the
one visible loop joining them. The condition (class or text) becomes a vector added to the UNet's time embedding
(class_embed_type="identity"); dropping it for `cond_dropout` of the training images teaches the same network the
unconditional prediction that guidance extrapolates away from:
    eps = eps(x, t, null) + w * (eps(x, t, c) - eps(x, t, null))         (w = guidance; 1 = no guidance)

Sized for a CPU: three resolution levels (H, H/2, H/4, so 28x28 needs no padding), one ResNet block per level and
no attention: the default widths (32, 64, 64) give 1.05M parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recgen.errors import RecgenError
from recgen.generate.common import GeneratorTask, slerp, to_signed
from recgen.generate.condition import drop_mask, make_conditioner
from recgen.generate.config import SAMPLERS  # noqa: F401 (re-exported)
from recgen.generate.family import GeneratorFamily
from recgen.train import seeded

# diffusers is imported where it is used: it takes seconds to import, and only diffusion runs need it.


@dataclass
class DiffusionConfig:
    channels: int = 1  # image channels: 1 grayscale, 3 RGB
    height: int = 28  # image height in pixels (divisible by 4)
    width: int = 28  # image width in pixels (divisible by 4)
    num_classes: int = 10  # classes of the dataset (embedding rows when cond is 'class')
    cond: str = "class"  # none | class | text
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # UNet channels per resolution level (H, H/2, H/4)
    layers_per_block: int = 1  # ResNet blocks per level on the way down (one more on the way up)
    norm_groups: int = 8  # GroupNorm groups (must divide every entry of block_out_channels)
    train_timesteps: int = 1000  # T of the forward (noising) process
    beta_schedule: str = "squaredcos_cap_v2"  # noise schedule: squaredcos_cap_v2 (cosine, arXiv 2102.09672) | linear
    cond_dropout: float = 0.1  # share of training images whose condition is replaced by the null token (for CFG)
    augment_dim: int = 0  # length of the augmentation labels the network is told of (0 = none; see nonleaky_affine)

    def __post_init__(self):
        self.block_out_channels = tuple(self.block_out_channels)


class Denoiser(nn.Module):
    """UNet2DModel plus the conditioner whose vector it adds to its time embedding."""

    def __init__(self, cfg: DiffusionConfig):
        from diffusers import UNet2DModel

        super().__init__()
        n = len(cfg.block_out_channels)
        if any(c % cfg.norm_groups for c in cfg.block_out_channels):
            raise RecgenError(f"norm_groups {cfg.norm_groups} must divide every block width {cfg.block_out_channels}")
        self.unet = UNet2DModel(
            sample_size=(cfg.height, cfg.width), in_channels=cfg.channels, out_channels=cfg.channels,
            block_out_channels=cfg.block_out_channels, layers_per_block=cfg.layers_per_block,
            down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n, add_attention=False,
            norm_num_groups=cfg.norm_groups,
            class_embed_type="identity" if cfg.cond != "none" or cfg.augment_dim else None)
        width = 4 * cfg.block_out_channels[0]  # the UNet's time-embedding width
        self.cond = make_conditioner(cfg.cond, cfg.num_classes, width)
        # augmentation labels join the condition vector; zero labels (no augmentation) add nothing, which is how
        # every sample is drawn
        self.aug = nn.Linear(cfg.augment_dim, width, bias=False) if cfg.augment_dim else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, c=None, drop: torch.Tensor | None = None,
                aug: torch.Tensor | None = None) -> torch.Tensor:
        """Noisy images (B, C, H, W), timesteps (B,), condition, augmentation labels (B, augment_dim) or None (no
        augmentation) -> predicted noise (B, C, H, W)."""
        e = self.cond(c, drop, len(x)) if self.cond is not None else None  # c None: the no-condition token
        if self.aug is not None:  # no labels (every sample): zero, which adds nothing
            a = self.aug(aug.to(x.dtype)) if aug is not None else x.new_zeros(len(x), self.aug.out_features)
            e = a if e is None else e + a
        return self.unet(x, t, class_labels=e).sample


def build(cfg: DiffusionConfig) -> dict[str, nn.Module]:
    return {"model": Denoiser(cfg)}


def make_scheduler(cfg: DiffusionConfig, sampler: str = "ddpm"):
    """A weightless diffusers scheduler for the training noise schedule; 'trailing' spacing puts the first of few
    steps at t = T - 1 (arXiv 2305.08891)."""
    if sampler not in SAMPLERS:
        raise RecgenError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    kw = dict(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule, prediction_type="epsilon",
              timestep_spacing="trailing")
    if sampler == "dpm":
        # DPM-Solver++ steps on the data prediction x0 = (x - sqrt(1 - abar) eps) / sqrt(abar). At the first
        # trailing step the cosine schedule has sqrt(abar) ~ 5e-5, so an eps error of 0.01 puts x0 hundreds of
        # units out and the trajectory never returns (nearly every pixel saturates). Clipping x0 to the data
        # range (thresholding with a maximum of 1, the clip_sample of DDPM/DDIM) keeps every step in range.
        kw.update(algorithm_type="dpmsolver++", solver_order=2, thresholding=True, sample_max_value=1.0)
    else:
        kw.update(clip_sample=True, clip_sample_range=1.0)
    import diffusers

    return getattr(diffusers, SAMPLERS[sampler])(**kw)


# -------------------------------------------------------------------------------------------- augmentation
# Non-leaking augmentation (EDM, arXiv 2206.00364, sec. 5 and app. C.4): each training image is, with probability
# p, rotated, scaled and shifted, and the network is given the move's parameters as a condition. It then learns the
# clean distribution (labels zero) beside its moved copies instead of a blend of the two, so samples, always drawn
# with zero labels, do not show the moves: stronger moves than flips and shifts, which samples may show, can then
# widen what the model sees. Off by default: on `recgen augment`'s small subsets it gained the recognizer no
# more than flips and shifts alone, which already keep the model from replaying its images.
AUGMENT_DIM = 5  # sin(angle), cos(angle) - 1, log(scale), shift x, shift y (fractions of the side)
AUGMENT_RANGE = dict(degrees=20.0, log_scale=0.2, translate=0.125)


def nonleaky_affine(x: torch.Tensor, g: torch.Generator, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, C, H, W) in [0, 1] -> (moved images, labels (B, AUGMENT_DIM)); an unmoved image has zero labels.
    Background outside the moved image is 0, Fashion-MNIST's (and MNIST's) black."""
    from recgen.data.transforms import affine

    n, _, h, w = x.shape
    on = (torch.rand(n, generator=g) < p).float()
    u = lambda: (torch.rand(n, generator=g) * 2 - 1) * on  # noqa: E731 - uniform in [-1, 1], 0 where off
    ang = u() * AUGMENT_RANGE["degrees"]
    log_s = u() * AUGMENT_RANGE["log_scale"]
    tx, ty = u() * AUGMENT_RANGE["translate"], u() * AUGMENT_RANGE["translate"]
    rad = torch.deg2rad(ang)
    labels = torch.stack([torch.sin(rad), torch.cos(rad) - 1, log_s, tx, ty], 1)
    moved = affine(x, ang, torch.exp(log_s), tx * w, ty * h)
    keep = on.view(n, 1, 1, 1).to(x.device) > 0
    return torch.where(keep, moved, x), labels.to(x.device)


# ------------------------------------------------------------------------------------------------------ sampling
def guided_eps(model: Denoiser, x, t, c, guidance: float) -> torch.Tensor:
    tt = torch.full((len(x),), int(t), device=x.device)
    if c is None or guidance == 1.0:
        return model(x, tt, c)
    both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([c, c]),
                 torch.cat([torch.zeros(len(x), dtype=torch.bool), torch.ones(len(x), dtype=torch.bool)]).to(x.device))
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


def _skip(steps: int, strength: float) -> int:
    """Steps of a `steps`-step schedule left out when starting at noise level `strength` (1 = pure noise)."""
    return min(int(round(steps * (1 - strength))), steps - 1) if strength < 1.0 else 0


@torch.no_grad()
def sample(modules, cfg: DiffusionConfig, c, n: int, g: torch.Generator, sampler: str = "dpm", steps: int = 20,
           guidance: float = 2.0, start: torch.Tensor | None = None, strength: float = 1.0,
           latent: torch.Tensor | None = None, progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Images (n, C, H, W) in [0, 1]. With `start` (n, C, H, W) in [0, 1] this is SDEdit: noise the image to the
    level of step `strength` of the schedule and denoise from there (strength 1 = ignore the image). With `latent`
    (n, C, H, W) the denoising starts from that noisy image at step `strength` (from `invert`) instead.
    progress: called with the share of the steps done after each step."""
    model = modules["model"]
    dev = next(model.parameters()).device
    sched = make_scheduler(cfg, sampler)
    sched.set_timesteps(steps)
    timesteps = sched.timesteps
    x = torch.randn(n, cfg.channels, cfg.height, cfg.width, generator=g).to(dev) * sched.init_noise_sigma
    if (start is not None or latent is not None) and strength < 1.0:
        skip = _skip(steps, strength)
        timesteps = timesteps[skip * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(skip * sched.order)
        if latent is None:
            x = sched.add_noise(to_signed(start.to(dev)), x, timesteps[:1])  # q(x_t | x_0) at the first kept step
    if latent is not None:
        x = latent.to(dev, torch.float32)
    for i, t in enumerate(timesteps):
        eps = guided_eps(model, sched.scale_model_input(x, t), t, c, guidance)
        x = sched.step(eps, t, x, generator=g).prev_sample  # x_t -> x_{t-1} by the sampler's rule
        if progress is not None:
            progress((i + 1) / len(timesteps))
    return ((x + 1) / 2).clamp(0, 1)


@torch.no_grad()
def invert(modules, cfg: DiffusionConfig, x: torch.Tensor, c, steps: int = 50, strength: float = 1.0) -> torch.Tensor:
    """DDIM inversion (arXiv 2010.02502, sec. 4.3: the deterministic sampler's ODE run from the data toward noise):
    images (n, C, H, W) in [0, 1] -> the noisy images at step `strength` of a `steps`-step DDIM schedule that
    `sample(..., "ddim", steps, guidance=1, latent=..., strength=strength)` takes back to (close to) them. Unguided:
    a guided prediction does not retrace its own path (arXiv 2211.09794)."""
    model = modules["model"]
    sched = make_scheduler(cfg, "ddim")
    sched.set_timesteps(steps)
    abar = sched.alphas_cumprod.to(x.device)
    x, a_prev = to_signed(x).float(), sched.final_alpha_cumprod.to(x.device)  # the last sampling step's target
    for t in sched.timesteps[_skip(steps, strength):].flip(0).tolist():  # rising noise: the sampler's steps reversed
        eps = guided_eps(model, x, t, c, 1.0).float()  # approximation: eps at x_{t_prev} stands in for eps at x_t
        x0 = (x - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()
        x = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps
        a_prev = abar[t]
    return x


def interpolate(modules, cfg: DiffusionConfig, c, n: int, g: torch.Generator, a=None, b=None, steps: int = 20,
                guidance: float = 1.0) -> torch.Tensor:
    """n images between images a and b (1, C, H, W) in [0, 1]: their DDIM inversions joined on a great circle and
    each point sampled back with DDIM; or between two noise draws from g. Only unguided (guidance 1) do the end
    frames give back a and b, and then approximately: a model fitted to few images inverts loosely (a 20-step round
    trip on a 100-image model is off by about 0.1 per pixel; 0.06 when inverted only to noise level 0.9)."""
    dev = next(modules["model"].parameters()).device
    if a is not None and b is not None:
        ca = None if c is None else c[:1]
        za, zb = (invert(modules, cfg, im.to(dev), ca, steps)[0] for im in (a, b))
    else:
        za, zb = torch.randn(2, cfg.channels, cfg.height, cfg.width, generator=g)
    z = slerp(za.flatten().cpu(), zb.flatten().cpu(), torch.linspace(0, 1, n)).view(n, *za.shape)
    return sample(modules, cfg, c, n, g, "ddim", steps, guidance if c is not None else 1.0, latent=z)


def diffusion_loss(model: Denoiser, noise, x0: torch.Tensor, c, g: torch.Generator, drop=None,
                   aug: torch.Tensor | None = None) -> torch.Tensor:
    """The simplified DDPM objective (arXiv 2006.11239, eq. 14) for x0 in [-1, 1]:
    || eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t) ||^2, t uniform, eps ~ N(0, I) from g."""
    t = torch.randint(0, noise.config.num_train_timesteps, (len(x0),), generator=g).to(x0.device)
    eps = torch.randn(x0.shape, generator=g).to(x0.device)
    return F.mse_loss(model(noise.add_noise(x0, eps, t), t, c, drop, aug), eps)


@torch.no_grad()
def evaluate(model: Denoiser, cfg: DiffusionConfig, x: torch.Tensor, y: torch.Tensor, condition,
             batch: int = 250) -> dict:
    """The training loss on images x in [0, 1] with timesteps and noise from a fixed seed (comparable across
    epochs and runs of the same schedule)."""
    noise, g, total = make_scheduler(cfg), seeded(17), 0.0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        total += float(diffusion_loss(model, noise, to_signed(xb), condition(y[i:i + batch], g), g)) * len(xb)
    return {"loss": round(total / len(x), 5)}


# ------------------------------------------------------------------------------------------------------ training
class DiffusionTask(GeneratorTask):
    monitor, monitor_mode = "val_loss", "min"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.noise = make_scheduler(self.arch)  # weightless: holds the noise schedule for q(x_t | x_0)

    def training_step(self, batch, g):
        x, y = batch
        x = self.augment(x, g)
        aug = None
        if self.arch.augment_dim:
            x, aug = nonleaky_affine(x, g, self.cfg.augment_p)
        c = self.condition(y, g)
        drop = drop_mask(len(x), self.arch.cond_dropout, g, x.device) if c is not None else None
        return {"loss": diffusion_loss(self.modules["model"], self.noise, to_signed(x), c, g, drop, aug)}

    def sample(self, modules, c, n, g):
        return sample(modules, self.arch, c, n, g, self.cfg.sampler, self.cfg.steps,
                      self.cfg.guidance if c is not None else 1.0)

    def validate(self, modules):
        """The loss on up to 1000 validation images with fixed timesteps and noise."""
        if self.val is None:
            return {}
        model = modules["model"].eval()
        out = evaluate(model, self.arch, self.val[0][:1000].to(self.device), self.val[1][:1000].to(self.device),
                       self.condition)
        self.modules["model"].train()
        return {"val_loss": out["loss"]}


# ---------------------------------------------------------------------------------------- the family protocol
class DiffusionFamily(GeneratorFamily):
    name, arch_class, task_class = "diffusion", DiffusionConfig, DiffusionTask
    options = ("unet_width", "unet_blocks")
    side_multiple = 4  # two stride-2 levels
    guidable = takes_sampler = takes_steps = can_vary = can_interpolate = interpolates_images = True

    def make_arch(self, cfg, common):
        blocks = {"layers_per_block": cfg.unet_blocks} if cfg.unet_blocks else {}
        arch = DiffusionConfig(**common, cond_dropout=cfg.cond_dropout,
                               augment_dim=AUGMENT_DIM if cfg.augment_p else 0, **blocks)
        if cfg.unet_width:
            b = cfg.unet_width
            arch.block_out_channels, arch.norm_groups = (b, 2 * b, 2 * b), min(8, b)
        return arch

    def build(self, arch):
        return build(arch)

    def check(self, arch, opts):
        if opts.steps is not None and opts.steps > arch.train_timesteps:
            raise RecgenError(f"steps must be at most the {arch.train_timesteps} timesteps this model "
                              f"trained with, got {opts.steps}")
        if opts.sampler is not None and opts.sampler not in SAMPLERS:
            raise RecgenError(f"sampler must be one of {', '.join(SAMPLERS)}, got {opts.sampler!r}")

    def sample(self, modules, arch, cond, n, g, opts, progress=None):
        return sample(modules, arch, cond, n, g, opts.sampler, opts.steps, opts.guidance, progress=progress)

    def vary(self, modules, arch, cond, start, n, g, opts, progress=None):
        """SDEdit: noise the image to step `strength` of the schedule and denoise from there."""
        return sample(modules, arch, cond, n, g, opts.sampler, opts.steps, opts.guidance,
                      start=start.expand(n, -1, -1, -1), strength=opts.strength, progress=progress)

    def interpolate(self, modules, arch, cond, n, g, a, b, opts):
        # between images unguided, so the ends give the images back; between noise draws the run's guidance
        guidance = 1.0 if a is not None else opts.guidance
        return interpolate(modules, arch, cond, n, g, a, b, opts.steps, guidance)

    def evaluate(self, modules, arch, x, y, condition):
        return evaluate(modules["model"], arch, x[:2000], y[:2000], condition)


FAMILY = DiffusionFamily()
