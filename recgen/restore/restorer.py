"""The restorer: a small residual U-Net trained by the shared loop on (corrupted, clean) pairs made on the fly.

One network per task. It sees the corrupted image at full resolution plus one auxiliary map saying what is known
about the corruption, and predicts a correction added to a base image (global residual learning, VDSR
arXiv 1511.04587 / DnCNN arXiv 1608.03981):

    inpaint   input [y, mask]                                  x = P(y + f)     P keeps the known pixels
              (prefill "telea": y's holes first filled by Telea's method, so a short-trained network starts from
              the classical fill and learns a correction to it)
    denoise   input [y, sigma map] (FFDNet, arXiv 1710.04026)  x = y + f        sigma known or estimated
    superres  input [bicubic(y), nearest(y)]                   x = P(bicubic(y) + f)
              P: back-projection onto {z : downscale(z) = y}, the null-space step of DDNM (arXiv 2212.00490)
    jpeg, oldphoto  input y (blind: nothing else is known)     x = y + f

Residual blocks without normalisation (EDSR, arXiv 1707.02921); three levels (H, H/2, H/4), so 28x28 needs no
padding. The network only predicts; `restore` is the composition above, kept out of it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recgen.errors import RecgenError
from recgen.restore.degrade import (
    TASKS,
    Observation,
    add_noise,
    age,
    apply_mask,
    consistent,
    downscale,
    draw_masks,
    is_grey,
    jpeg,
    project,
    quantize,
)
from recgen.restore.metrics import psnr
from recgen.restore.tiles import TILE, tiled
from recgen.train import TrainTask, seeded


@dataclass
class RestorerConfig:
    task: str = "denoise"  # inpaint | denoise | superres | jpeg | oldphoto
    channels: int = 1  # image channels: 1 grayscale, 3 RGB
    scale: int = 2  # superres: upscaling factor the network is trained for
    widths: tuple[int, ...] = (32, 64, 96)  # channels per U-Net level (H, H/2, H/4)
    blocks: int = 1  # residual blocks per level on each side of the U-Net
    prefill: str = ""  # inpaint: classical fill of the holes the correction is added to ('' = zeros, telea)
    unshuffle: int = 1  # the U-Net's top level works at H / unshuffle (space-to-depth; 1 = full resolution)

    def __post_init__(self):
        self.widths = tuple(self.widths)
        if self.unshuffle not in (1, 2, 4):
            raise RecgenError(f"unshuffle must be 1, 2 or 4, got {self.unshuffle!r}")
        if self.task not in TASKS:
            raise RecgenError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.prefill not in ("", "telea"):
            raise RecgenError(f"prefill must be '' or telea, got {self.prefill!r}")

    @property
    def multiple(self) -> int:
        """What the network's input sides must be divisible by (inputs are padded to it)."""
        return self.unshuffle * 2 ** (len(self.widths) - 1)

    @property
    def reach(self) -> int:
        """How far (pixels, input grid) an output pixel can see: the receptive field's radius, so that tiles with
        this much overlap give exactly the untiled result (recgen.restore.tiles). Each 3x3 convolution at a level
        of stride f adds f, each 2x2 (transposed) resampling f, and a pixel-unshuffle cell u - 1."""
        u, n = self.unshuffle, len(self.widths)
        convs = 2 * self.blocks
        r = u - 1 + 2 * u  # the unshuffle cell, the stem and the head
        for i in range(n):
            f = u * 2 ** i
            r += convs * f * (2 if i < n - 1 else 1)  # blocks down and up (the deepest level has one side)
            r += 2 * f if i < n - 1 else 0  # the stride-2 convolution down and the transposed one up
        return r

    @property
    def in_channels(self) -> int:
        if self.task in ("jpeg", "oldphoto"):
            return self.channels
        return 2 * self.channels if self.task == "superres" else self.channels + 1


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class RestorerNet(nn.Module):
    """(B, in_channels, H, W) -> correction (B, channels, H, W); H and W divisible by cfg.multiple.
    Levels are joined by 2x2 stride-2 convolutions down and 2x2 transposed convolutions up (U-Net,
    arXiv 1505.04597), skips added rather than concatenated: about 0.43 GFLOP per 28x28 training image for the
    default widths, 30 % less than 3x3 resampling convolutions with concatenation.

    With unshuffle u > 1 the image enters as u x u sub-images stacked on channels (pixel unshuffle) and leaves by
    the inverse shuffle, as in FFDNet (arXiv 1710.04026) and ESPCN (arXiv 1609.05158): every convolution then
    costs u^2 times less per image pixel and reaches u times further, which buys width and depth on photographs
    (for super-resolution u = scale puts the network at the low-resolution grid)."""

    def __init__(self, cfg: RestorerConfig):
        super().__init__()
        w, u = cfg.widths, cfg.unshuffle
        self.unshuffle = u
        self.stem = nn.Conv2d(cfg.in_channels * u * u, w[0], 3, padding=1)
        self.down = nn.ModuleList(nn.Sequential(*[ResBlock(c) for _ in range(cfg.blocks)]) for c in w)
        self.pool = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(w[:-1], w[1:]))
        self.unpool = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(w[:-1], w[1:]))
        self.up = nn.ModuleList(nn.Sequential(*[ResBlock(a) for _ in range(cfg.blocks)]) for a in w[:-1])
        self.head = nn.Conv2d(w[0], cfg.channels * u * u, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as the identity on the base image
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.unshuffle
        # channels-last activations: oneDNN's convolutions run about 1.5x faster on them than on NCHW, for
        # forward and backward (a denoiser's input, concatenated with its noise map, would otherwise be NCHW)
        x = (F.pixel_unshuffle(x, u) if u > 1 else x).contiguous(memory_format=torch.channels_last)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h)
            if i < len(self.pool):
                skips.append(h)
                h = F.silu(self.pool[i](h))  # (B, w[i+1], H / 2^(i+1), W / 2^(i+1))
        for i in reversed(range(len(self.up))):
            h = self.up[i](F.silu(self.unpool[i](h)) + skips[i])
        out = self.head(F.silu(h))
        return F.pixel_shuffle(out, u) if u > 1 else out


def build(cfg: RestorerConfig) -> dict[str, nn.Module]:
    return {"model": RestorerNet(cfg)}


# ----------------------------------------------------------------------------------------------- composition
def net_input(cfg: RestorerConfig, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
    """(what the network sees (B, in_channels, H, W), the base image its correction is added to)."""
    y = obs.y
    if cfg.task == "inpaint":
        if cfg.prefill == "telea":
            from recgen.restore.baselines import telea

            y = telea(obs).to(y)
        return torch.cat([y, obs.mask], 1), y
    if cfg.task == "denoise":
        s = obs.sigma.to(y).reshape(-1, 1, 1, 1).expand(-1, 1, *y.shape[-2:])
        return torch.cat([y, s], 1), y
    if cfg.task in ("jpeg", "oldphoto"):
        return y, y
    up = F.interpolate(y, scale_factor=obs.scale, mode="bicubic", align_corners=False)
    return torch.cat([up, F.interpolate(y, scale_factor=obs.scale, mode="nearest")], 1), up


def compose(obs: Observation, base: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """The correction added to the base, made to agree with the observation (known pixels, or downscaling to y)."""
    return project(obs, base + f)


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), (h, w)


# The dihedral transforms a self-ensemble averages over, as (quarter turns, mirrored): the first two keep the
# image's orientation up to a mirror, the first four its height and width, all eight are the square's symmetries
# (EDSR+ / DnCNN's x8 geometric self-ensemble, arXiv 1707.02921 sec. 4.4).
DIHEDRAL = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))
ENSEMBLES = (1, 2, 4, 8)


def check_ensemble(ensemble: int) -> None:
    if isinstance(ensemble, bool) or ensemble not in ENSEMBLES:
        raise RecgenError(f"ensemble must be one of {', '.join(map(str, ENSEMBLES))} (flips and rotations "
                          f"averaged), got {ensemble!r}")


def _turn(t: torch.Tensor | None, turns: int, mirror: bool) -> torch.Tensor | None:
    if t is None:
        return None
    t = t.flip(-1) if mirror else t
    return torch.rot90(t, turns, (-2, -1)) if turns else t


def _unturn(t: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    t = torch.rot90(t, -turns, (-2, -1)) if turns else t
    return t.flip(-1) if mirror else t


@torch.no_grad()
def restore(net: RestorerNet, cfg: RestorerConfig, obs: Observation, batch_size: int = 500,
            tile: int = TILE, ensemble: int = 1) -> torch.Tensor:
    """Restored images (N, C, H, W) in [0, 1]; any size: padded to the U-Net's multiple and cropped back, and
    restored in overlapping tiles (recgen.restore.tiles) when a side exceeds `tile`, so memory stays bounded.
    ensemble > 1: the mean of the restorations of that many flipped and rotated copies (DIHEDRAL), tile by tile;
    each copy agrees with the observation, so their mean does too (the constraints are linear, [0, 1] convex)."""
    check_ensemble(ensemble)
    dev = next(net.parameters()).device
    mult = cfg.multiple
    s = obs.scale if cfg.task == "superres" else 1
    overlap = -(-cfg.reach // s) + (2 if s > 1 else 0)  # input pixels; bicubic upsampling reads 2 beyond
    align = max(1, cfg.multiple // s)
    if ensemble > 1:  # JPEG's 8x8 blocks start at the top left: a turned copy must keep them on that grid
        align = math.lcm(align, 8 if cfg.task in ("jpeg", "oldphoto") else 1)

    def one(o: Observation) -> torch.Tensor:
        inp, base = net_input(cfg, o)
        padded, (h, w) = pad_to(inp, mult)
        f = net(padded)[..., :h, :w]
        return consistent(o, compose(o, base, f))

    def run(o: Observation) -> torch.Tensor:
        o = Observation(o.task, o.y.to(dev), None if o.mask is None else o.mask.to(dev), o.sigma, o.scale)
        if ensemble == 1:
            return one(o).cpu()
        # Each window starts on a multiple of `align` and is padded to end on one, so that every turned copy of
        # it meets the network's strided levels (and JPEG's blocks) where the turned whole image would.
        h, w = o.y.shape[-2:]
        o = Observation(o.task, pad_to(o.y, align)[0], None if o.mask is None else pad_to(o.mask, align * s)[0],
                        o.sigma, o.scale)
        out = sum(_unturn(one(Observation(o.task, _turn(o.y, k, m), _turn(o.mask, k, m), o.sigma, o.scale)), k, m)
                  for k, m in DIHEDRAL[:ensemble])
        return (out / ensemble)[..., :h * s, :w * s].cpu()

    out = [tiled(run, obs.subset(slice(i, i + batch_size)), -(-tile // align) * align, overlap, align)
           for i in range(0, len(obs.y), batch_size)]
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------- training
@dataclass
class Corruptions:
    """The corruption ranges drawn during training (wider than the evaluation settings, so one network covers
    them)."""

    mask_kind: str = "box+strokes"
    ratio: tuple[float, float] = (0.05, 0.5)
    sigma: tuple[float, float] = (0.0, 0.4)
    scale: int = 2
    quality: tuple[int, int] = (10, 40)  # jpeg: qualities drawn uniformly (integers, both ends included)

    def draw(self, task: str, x: torch.Tensor, g: torch.Generator) -> Observation:
        n, _, h, w = x.shape
        if task == "inpaint":
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=g))
            mask = draw_masks(n, h, w, self.mask_kind, self.ratio, seed).to(x.device)
            return Observation(task, quantize(apply_mask(x, mask)), mask=mask)
        if task == "denoise":
            lo, hi = self.sigma
            s = lo + (hi - lo) * torch.rand(n, generator=g)
            return Observation(task, add_noise(x, s.to(x.device), g), sigma=s)
        if task == "jpeg":
            q = torch.randint(self.quality[0], self.quality[1] + 1, (n,), generator=g)
            return Observation(task, jpeg(x, q.tolist()))
        if task == "oldphoto":
            return Observation(task, age(x, np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=g)))))
        return Observation(task, downscale(x, self.scale), scale=self.scale)


LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}  # RestoreConfig.loss -> the function training and adapt_net use


def restoration_loss(net: RestorerNet, cfg: RestorerConfig, obs: Observation, x: torch.Tensor, loss) -> torch.Tensor:
    """`loss`(restoration of obs, clean x), the objective of training and of test-time adaptation."""
    inp, base = net_input(cfg, obs)
    z = base + net(inp)
    out = project(obs, z)
    value = loss(out, x)
    if obs.task == "superres":
        # The back-projection replaces the block means of the correction, so the loss on `out` leaves them free
        # to drift: they grew to several times the image's range, where bf16 autocast keeps too few bits for the
        # detail riding on them in the same pixels, and the network traded the detail of flat regions for it.
        # Asking the unprojected estimate to agree with the observation pins them; their optimum is independent
        # of what the loss sees. Inpainting's discarded part (the known pixels) shares no pixel with the holes,
        # and the same term there held its training back, as the network must then draw sharp edges in f.
        value = value + F.mse_loss(out, z)
    return value


# ------------------------------------------------------------------------------------------ test-time adaptation
# Two tasks have an objective that needs no clean image. Super-resolution: the input downscaled once more, with the
# input as its target (x2 only: at x4 the photo shrunk four times once more keeps too little to learn from, and
# adapting lost detail on the held-out photos where it gained at x2). Denoising with a known noise level: Stein's
# unbiased risk estimate of the error, which Gaussian noise makes computable from the noisy image alone.
ADAPT_TASKS, ADAPT_SCALES = ("superres", "denoise"), (2,)
ADAPT_LR = {"superres": 1e-3, "denoise": 5e-4}  # annealed to 0 over the adaptation (photo runs peak at 2e-3)
ADAPT_BATCH, ADAPT_SIDE = 16, 64  # patches per step and their side (input pixels), as in photo training
SURE_EPS = 1e-3  # the finite-difference step of the divergence estimate (images in [0, 1])
SURE_MARGIN = 1.5  # noise stds: pixels estimated nearer 0 or 1 are left out of SURE (sure_loss)


def adapts(task: str, scale: int = 2) -> bool:
    """Whether adapt_net has an objective for `task` (super-resolution: at this factor)."""
    return task in ADAPT_TASKS and (task != "superres" or scale in ADAPT_SCALES)


def check_adapt(task: str, adapt: int, scale: int = 2) -> None:
    if isinstance(adapt, bool) or not isinstance(adapt, int) or adapt < 0:
        raise RecgenError(f"adapt must be a whole number of steps, 0 or more, got {adapt!r}")
    if not adapt or adapts(task, scale):
        return
    if task not in ADAPT_TASKS:
        raise RecgenError(f"adapt fine-tunes super-resolution and denoising only (their error can be estimated from "
                          f"the input alone); {task} has no such objective")
    raise RecgenError(f"adapt fine-tunes x2 super-resolution only: at x{scale} the input shrunk once more keeps "
                      f"too little detail to learn from (leave adapt out)")


def sure_loss(net: RestorerNet, first: RestorerNet, cfg: RestorerConfig, y: torch.Tensor, sigma: torch.Tensor,
              grey: torch.Tensor, g: torch.Generator, margin: float = SURE_MARGIN) -> torch.Tensor:
    """Monte-Carlo SURE (arXiv 1806.00961) of the denoiser's squared error per pixel of the noisy patches y
    (B, C, h, w), noise std sigma (B,): |f(y) - y|^2 - sigma^2 + 2 sigma^2 div f(y), the divergence estimated as
    b . (f(y + eps b) - f(y)) / eps with b ~ N(0, I) (arXiv 0804.0404). Its expectation over the noise is the
    error against the clean image, though no clean image is at hand. The noise model must hold, and clipping at 0
    and 1 breaks it: where a photo saturates, SURE takes the clipped, quieter pixels for a cleaner image than there
    is, and fine-tuning on it made the held-out photos worse, not better. So the estimate is taken only where the
    un-adapted network (`first`) puts a pixel `margin` noise stds away from 0 and 1; elsewhere the network is held
    to its first answer. The nearer pixels that still clip now and then bias the estimate a little low; a wider
    margin would leave too little of a very noisy photo to learn from. A grey photo handed to a colour network
    carries one noise field on three equal channels (`grey`, one flag per patch): b is shared across them, which
    makes b's covariance the noise's, as Stein's lemma then asks."""
    s2 = sigma.reshape(-1, 1, 1, 1).square()
    with torch.no_grad():
        inp, base = net_input(cfg, Observation("denoise", y, sigma=sigma))
        f0 = base + first(inp).float()
        lo = margin * sigma.reshape(-1, 1, 1, 1)
        inside = ((f0 > lo) & (f0 < 1 - lo)).float()
        b = torch.randn(y.shape, generator=g).to(y)
        b = torch.where(grey.reshape(-1, 1, 1, 1), b[:, :1].expand_as(b), b) * inside
    inp, base = net_input(cfg, Observation("denoise", torch.cat([y, y + SURE_EPS * b]), sigma=sigma.repeat(2)))
    f, f_eps = (base + net(inp).float()).chunk(2)
    div = b * (f_eps - f) / SURE_EPS
    sure = ((f - y).square() - s2 + 2 * s2 * div) * inside
    return (sure + (f - f0).square() * (1 - inside)).mean()


def adapt_net(net: RestorerNet, cfg: RestorerConfig, obs: Observation, steps: int, seed: int = 0,
              precision: str = "fp32", loss: str = "l1") -> RestorerNet:
    """A copy of `net` fine-tuned for `steps` steps on the images it is about to restore, with an objective that
    needs no clean image. Patches of obs's images (uint8 or [0, 1] floats), flipped and turned, are drawn at random;
    the learning rate anneals from ADAPT_LR to 0.
    superres: zero-shot super-resolution (ZSSR, arXiv 1712.06087, started from the trained weights as in MZSR
    arXiv 2002.12213): the patches are downscaled once more and the network learns to undo that (`loss`), so it
    meets the photo's own textures at the scale below before it restores the photo.
    denoise: the patches' SURE (sure_loss) at the observation's noise level, always in fp32: its divergence is a
    difference of two nearly equal outputs, which bf16 would round away."""
    check_adapt(obs.task, steps, obs.scale)
    s = obs.scale if obs.task == "superres" else 1
    unit = math.lcm(s, cfg.multiple)
    h, w = obs.y.shape[-2:]
    side = min(ADAPT_SIDE, h, w) // unit * unit
    if side < 2 * unit:
        raise RecgenError(f"adapt: images of {w}x{h} pixels are too small to adapt to (at least {2 * unit} pixels a "
                          f"side are needed)")
    dev = next(net.parameters()).device
    first = net
    net = copy.deepcopy(net).train().requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=ADAPT_LR[obs.task])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    g = seeded(seed)
    denoise = obs.task == "denoise"
    autocast = torch.autocast(dev.type, torch.bfloat16, enabled=precision == "bf16" and not denoise)
    grey = is_grey(obs.y) if denoise else None
    with torch.enable_grad():
        for _ in range(steps):
            k = torch.randint(0, len(obs.y), (ADAPT_BATCH,), generator=g).tolist()
            top = torch.randint(0, h - side + 1, (ADAPT_BATCH,), generator=g).tolist()
            left = torch.randint(0, w - side + 1, (ADAPT_BATCH,), generator=g).tolist()
            x = torch.stack([obs.y[i, :, t:t + side, j:j + side] for i, t, j in zip(k, top, left)]).to(dev)
            x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
            turns, mirror = DIHEDRAL[int(torch.randint(0, 8, (1,), generator=g))]
            x = _turn(x, turns, mirror)
            with autocast:
                if denoise:
                    value = sure_loss(net, first, cfg, x, obs.sigma[k].to(x), grey[k].to(dev), g)
                else:
                    value = restoration_loss(net, cfg, Observation(obs.task, downscale(x, s), scale=s), x,
                                             LOSSES[loss])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            sched.step()
    return net.eval().requires_grad_(False)


class RestoreTask(TrainTask):
    monitor, monitor_mode = "val_psnr", "max"

    def __init__(self, modules: dict[str, nn.Module], arch: RestorerConfig, corruptions: Corruptions,
                 val: torch.Tensor | None, device: torch.device, loss: str = "mse"):
        super().__init__()
        self.modules, self.arch, self.corruptions, self.device = modules, arch, corruptions, device
        if loss not in LOSSES:
            raise RecgenError(f"loss must be mse or l1, got {loss!r}")
        self.loss = LOSSES[loss]
        # fixed corruptions of up to 1000 validation images, so val_psnr is comparable across epochs
        self.val = None if val is None else (val[:1000], self.corruptions.draw(arch.task, val[:1000], seeded(23)))

    def training_step(self, batch, g):
        x = batch[0]
        obs = self.corruptions.draw(self.arch.task, x, g)
        return {"loss": restoration_loss(self.modules["model"], self.arch, obs, x, self.loss)}

    def input_psnr(self) -> float | None:
        """Validation PSNR of the input itself: what a restorer that adds nothing scores."""
        if self.val is None:
            return None
        x, obs = self.val
        _, base = net_input(self.arch, obs)
        return round(float(psnr(consistent(obs, compose(obs, base, torch.zeros_like(base))), x).mean()), 3)

    def validate(self, modules):
        if self.val is None:
            return {}
        x, obs = self.val
        net = modules["model"].eval()
        out = restore(net, self.arch, obs)
        self.modules["model"].train()
        return {"val_loss": round(float(F.mse_loss(out, x)), 6), "val_psnr": round(float(psnr(out, x).mean()), 3)}
