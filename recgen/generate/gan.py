"""GAN: a DCGAN-shaped generator and discriminator (arXiv 1511.06434) trained with the hinge loss and spectral
normalisation in the discriminator (arXiv 1802.05957), conditioned through conditional BatchNorm in the generator
and a projection discriminator (arXiv 1802.05637).

    G: [z, e] (z_dim + cond_dim) -> linear -> (4b, H/4, W/4) -> CBN, ReLU, convT 4x4/2 (2b) -> CBN, ReLU,
       convT 4x4/2 (C) -> tanh
       (the last layer goes straight to pixels, as in DCGAN: ~7M multiply-adds per 28x28 image at b = 32)
    D: x -> conv3x3 (b) -> conv4x4/2 (2b) -> conv4x4/2 (4b) -> conv3x3 (4b), leaky ReLU between, all
       spectrally normalised -> sum over positions = phi (4b) -> psi(phi) + <embed(c), phi>

The condition vector e enters twice: with the noise at the input (as in the conditional GAN, arXiv 1411.1784) and
in the CBN gains. With e only in the CBN gains, the class could steer the image only by rescaling channels of a
class-blind 7x7 layout; on Fashion-MNIST some classes then collapsed into stripe and checkerboard textures
while the others were well formed.

With the class at the input, the generator learned to ignore its noise (every class drawn the same way
whatever z). The generator step therefore adds the mode-seeking term of MSGAN (arXiv 1903.05628): half of each
batch repeats the other half's conditions with fresh noise, and the loss grows as the image distance per unit
of noise distance shrinks (docs/BENCHMARKS.md: generate-gan against generate-gan-no-mode-seeking).

The training step watches for the two classic failures and reports them (metrics `gan_collapse`, `gan_diverging`,
`gan_min_class_spread` and a warning): mode collapse, when samples from fixed noise vary far less than real images
do, overall or within any one class, and divergence, when the discriminator wins outright (hinge loss near 0) while
the generator loss keeps growing.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from recgen.generate.common import GeneratorTask, slerp, spread, to_signed
from recgen.generate.condition import make_conditioner
from recgen.generate.family import GeneratorFamily
from recgen.train import make_schedule, seeded

COLLAPSE_RATIO = 0.35  # samples' spread / real images' spread below this = mode collapse
DIVERGE_D_LOSS = 0.05  # discriminator hinge loss below this (it separates everything) ...
DIVERGE_G_LOSS = 5.0  # ... with a generator loss above this = divergence
INFER_CHUNK = 256  # images per pass of Generator.infer on CPU


@dataclass
class GANConfig:
    channels: int = 1  # image channels: 1 grayscale, 3 RGB
    height: int = 28  # image height in pixels (divisible by 4)
    width: int = 28  # image width in pixels (divisible by 4)
    num_classes: int = 10  # classes of the dataset (embedding rows when cond is 'class')
    cond: str = "class"  # none | class | text
    z_dim: int = 64  # size of the generator's Gaussian noise input
    g_base: int = 32  # generator channels at full resolution (2x at 1/2, 4x at 1/4 resolution)
    d_base: int = 32  # discriminator channels at full resolution (2x at 1/2, 4x at 1/4 resolution)
    cond_dim: int = 64  # size of the condition vector feeding the generator's conditional BatchNorm


class CondBN(nn.Module):
    """BatchNorm whose per-channel gain and bias come from the condition vector (arXiv 1707.00683); plain affine
    BatchNorm when unconditional."""

    def __init__(self, c: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=cond_dim == 0)
        if cond_dim:
            self.gain, self.bias = nn.Linear(cond_dim, c), nn.Linear(cond_dim, c)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)
            nn.init.zeros_(self.bias.weight)
            nn.init.zeros_(self.bias.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if e is None:
            return h
        return h * (1 + self.gain(e)[:, :, None, None]) + self.bias(e)[:, :, None, None]

    def folded(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """forward() in eval mode as one multiply-add: (x - mean) / std * (1 + gain) + bias = x * s + t."""
        bn = self.bn
        s = torch.rsqrt(bn.running_var + bn.eps)
        t = -bn.running_mean * s
        if bn.affine:
            s, t = s * bn.weight, t * bn.weight + bn.bias
        if e is None:
            s, t = s[None], t[None]
        else:
            g = 1 + self.gain(e)
            s, t = s * g, t * g + self.bias(e)
        return torch.addcmul(t[:, :, None, None], x, s[:, :, None, None])


# A 4x4, stride-2, padding-1 transposed convolution gives output row 2m + p from input rows m - 1 + d (d = 0, 1, 2 of
# a 3x3 window) through kernel row TAPS[p][d]: even rows from taps 3 and 1, odd rows from taps 2 and 0.
TAPS = ({0: 3, 1: 1}, {1: 2, 2: 0})


def subpixel_weights(up: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The (4 C_out, C_in, 3, 3) convolution whose pixel shuffle by 2 equals the 4x4/2 transposed convolution."""
    w = up.weight  # (C_in, C_out, 4, 4)
    out = w.new_zeros(w.shape[1], 2, 2, w.shape[0], 3, 3)  # channel order (c, row phase, column phase)
    for py, px in itertools.product((0, 1), (0, 1)):
        for (dy, ky), (dx, kx) in itertools.product(TAPS[py].items(), TAPS[px].items()):
            out[:, py, px, :, dy, dx] = w[:, :, ky, kx].T
    return out.flatten(0, 2), up.bias.repeat_interleave(4)


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        b, self.h0, self.w0 = cfg.g_base, cfg.height // 4, cfg.width // 4
        self.c0 = 4 * b  # channels at H/4 (named, not -1, so that an empty batch reshapes too)
        self.cond = make_conditioner(cfg.cond, cfg.num_classes, cfg.cond_dim)
        cd = cfg.cond_dim if self.cond is not None else 0
        self.fc = nn.Linear(cfg.z_dim + cd, 4 * b * self.h0 * self.w0)  # noise and condition together
        self.bn0, self.bn1 = CondBN(4 * b, cd), CondBN(2 * b, cd)
        self.up1 = nn.ConvTranspose2d(4 * b, 2 * b, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(2 * b, cfg.channels, 4, 2, 1)  # straight to pixels, as in DCGAN

    def project(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise and condition -> (first feature map (B, 4b, H/4, W/4), condition embedding or None)."""
        e = self.cond(c) if self.cond is not None else None
        h = self.fc(z if e is None else torch.cat([z, e], 1))
        return h.view(len(z), self.c0, self.h0, self.w0), e

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z_dim), c labels (B,) or text embeddings (B, 384) -> images (B, C, H, W) in [-1, 1]."""
        h, e = self.project(z, c)
        h = self.up1(F.relu(self.bn0(h, e)))  # (B, 2b, H/2, W/2)
        return torch.tanh(self.up2(F.relu(self.bn1(h, e))))  # (B, C, H, W)

    @torch.no_grad()
    def infer(self, z: torch.Tensor, c: torch.Tensor | None = None, chunk: int = INFER_CHUNK) -> torch.Tensor:
        """forward() in eval mode, to float rounding, faster on CPU (BENCHMARKS.md, generate-gan-decoder):
        each BatchNorm and its condition's gain and bias folded into one multiply-add, the last transposed
        convolution (64 -> C channels, where oneDNN's transposed kernel is slowest) computed as a 3x3 convolution
        and a pixel shuffle (sub-pixel convolution, arXiv 1609.05158), and the batch cut into chunks whose
        activations stay in cache (the multiply-adds and ReLUs are memory-bound)."""
        if self.training:
            raise RuntimeError("Generator.infer uses the BatchNorm running statistics: call .eval() first")
        w, b = subpixel_weights(self.up2)  # once per call, shared by the chunks
        step = chunk if z.device.type == "cpu" else max(1, len(z))
        out = []
        for i in range(0, max(1, len(z)), step):  # an empty batch makes one empty chunk
            h, e = self.project(z[i:i + step], None if c is None else c[i:i + step])
            h = self.up1(self.bn0.folded(h, e).relu_())
            h = self.bn1.folded(h, e).relu_()
            out.append(torch.tanh(F.pixel_shuffle(F.conv2d(h, w, b, padding=1), 2)))
        return torch.cat(out)


class Discriminator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        b = cfg.d_base
        sn = spectral_norm
        self.convs = nn.ModuleList([sn(nn.Conv2d(cfg.channels, b, 3, 1, 1)), sn(nn.Conv2d(b, 2 * b, 4, 2, 1)),
                                    sn(nn.Conv2d(2 * b, 4 * b, 4, 2, 1)), sn(nn.Conv2d(4 * b, 4 * b, 3, 1, 1))])
        self.psi = sn(nn.Linear(4 * b, 1))
        self.embed = make_conditioner(cfg.cond, cfg.num_classes, 4 * b, sn=True)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> realness scores (B,)."""
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
        phi = h.sum((2, 3))  # (B, 4b)
        out = self.psi(phi)[:, 0]
        if self.embed is not None:  # projection: the class (or text) vector scores the features directly
            out = out + (self.embed(c) * phi).sum(1)
        return out


def build(cfg: GANConfig) -> dict[str, nn.Module]:
    return {"G": Generator(cfg), "D": Discriminator(cfg)}


# ------------------------------------------------------------------------------------------------------ sampling
@torch.no_grad()
def decode(G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Latents (N, z_dim) -> images (N, C, H, W) in [0, 1]."""
    return ((G(z, c) if G.training else G.infer(z, c)) + 1) / 2


def sample(modules, cfg: GANConfig, c, n: int, g: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """temperature < 1 shrinks the noise toward the mode: less varied, often cleaner samples."""
    z = torch.randn(n, cfg.z_dim, generator=g) * temperature
    dev = next(modules["G"].parameters()).device
    return decode(modules["G"], z.to(dev), c)


def interpolate(modules, cfg: GANConfig, c, n: int, g: torch.Generator) -> torch.Tensor:
    """n images along a great circle between two noise vectors drawn from g, with the same condition c (1,)."""
    a, b = torch.randn(2, cfg.z_dim, generator=g)
    z = slerp(a, b, torch.linspace(0, 1, n))
    dev = next(modules["G"].parameters()).device
    cc = None if c is None else c.expand(n, *c.shape[1:])
    return decode(modules["G"], z.to(dev), cc)


def spread_ratio(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Within-class spread of samples over that of real images with the same labels (overall when None)."""
    groups = [labels == k for k in labels.unique()] if labels is not None else [torch.ones(len(real), dtype=bool)]
    groups = [m for m in groups if m.sum() >= 2]
    return sum(spread(fake[m]) for m in groups) / max(sum(spread(real[m]) for m in groups), 1e-12)


def class_spread_ratios(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor) -> dict[int, float]:
    """spread_ratio per class label: one collapsed class hides in the overall ratio when the others are varied."""
    return {int(k): spread(fake[labels == k]) / max(spread(real[labels == k]), 1e-12)
            for k in labels.unique() if (labels == k).sum() >= 2}


def health(d_loss: float, g_loss: float, spread_ratio: float, class_ratios: dict[str, float] | None = None) -> list[str]:
    """Plain-language problems read from one epoch's GAN statistics (empty when training looks healthy).
    class_ratios: per-class spread ratios by class name (conditional models)."""
    problems = []
    if spread_ratio < COLLAPSE_RATIO:
        problems.append(f"mode collapse suspected: samples from different noise vary {spread_ratio:.2f}x as much "
                        f"as real images of the same class (below {COLLAPSE_RATIO}); try a lower --lr or more data")
    elif low := {k: v for k, v in (class_ratios or {}).items() if v < COLLAPSE_RATIO}:
        names = ", ".join(f"{k} ({v:.2f}x)" for k, v in sorted(low.items(), key=lambda kv: kv[1]))
        problems.append(f"mode collapse suspected in {len(low)} class(es): {names} vary far less than real images "
                        f"of the class (below {COLLAPSE_RATIO}); try a lower --lr or more epochs")
    if d_loss < DIVERGE_D_LOSS and g_loss > DIVERGE_G_LOSS:
        problems.append(f"training diverging: the discriminator separates real from fake outright (hinge loss "
                        f"{d_loss:.3f}) while the generator loss climbs ({g_loss:.2f}); try a lower --lr")
    return problems


# ------------------------------------------------------------------------------------------------------ training
# Adam(0, 0.9) with the discriminator at twice the generator's rate (TTUR, arXiv 1706.08500; SAGAN); the few-step
# student trains its discriminator the same way
D_LR_FACTOR, ADAM_BETAS = 2, (0.0, 0.9)


def hinge_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss (arXiv 1705.02894): real scores pushed above +1, fake below -1."""
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


class GANTask(GeneratorTask):
    manual_optimization = True
    monitor = "none"  # a GAN has no validation likelihood: the latest weights are kept as the best
    ema_modules = ("G",)

    def configure_optimizers(self, cfg, total_steps):
        out = []
        for name, lr in (("D", D_LR_FACTOR * cfg.lr), ("G", cfg.lr)):
            opt = torch.optim.Adam(self.modules[name].parameters(), lr=lr, betas=ADAM_BETAS)
            out.append((opt, make_schedule(opt, cfg, total_steps)))
        self.optims = out
        return out

    def training_step(self, batch, g):
        G, D = self.modules["G"], self.modules["D"]
        (opt_d, sched_d), (opt_g, sched_g) = self.optims
        x, y = batch
        x, c = to_signed(self.augment(x, g)), self.condition(y, g)
        z = torch.randn(2, len(x), self.arch.z_dim, generator=g).to(x.device)
        # 1. discriminator: hinge loss, real scores above +1, fake below -1
        with torch.no_grad():
            fake = G(z[0], c)
        d_real, d_fake = D(x, c), D(fake, c)
        d_loss = hinge_loss(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.grads_ready(D.parameters())  # the loop averages across processes and clips (--grad-clip)
        opt_d.step()
        sched_d.step()
        # 2. generator: raise the discriminator's score of fresh samples. The second half of the batch repeats the
        # first half's conditions with other noise, so that the mode-seeking term (MSGAN, arXiv 1903.05628) can ask
        # two noises under one condition for two different images: a conditional generator otherwise learns to
        # ignore its noise (its recall collapses with the class at the input).
        h, lam = len(x) // 2, self.cfg.mode_seeking
        seek = bool(lam and h)  # a batch of one has no pair
        if seek:
            c2 = None if c is None else torch.cat([c[:h], c[:h], c[2 * h:]])  # odd batch: the last keeps its own
            fake = G(z[1], c2)
            g_adv = -D(fake, c2).mean()
            dz = (z[1, :h] - z[1, h:2 * h]).abs().mean(1)  # (h,)
            dx = (fake[:h] - fake[h:2 * h]).abs().flatten(1).mean(1).float()
            ms = (dx / dz).mean()
            g_loss = g_adv + lam / (ms + 1e-5)
        else:
            fake = G(z[1], c)
            g_adv = g_loss = -D(fake, c).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.grads_ready(G.parameters())
        opt_g.step()
        sched_g.step()
        stats = {"d_loss": d_loss.item(), "g_loss": g_adv.item(), "d_real": d_real.mean().item(),
                 "d_fake": d_fake.mean().item()}
        if seek:
            stats["mode_seeking"] = ms.item()  # image distance per unit of noise distance, same condition
        self.tally(stats)
        return {"loss": d_loss.detach() + g_loss.detach(), **stats}

    def sample(self, modules, c, n, g):
        return sample(modules, self.arch, c, n, g)

    def validate(self, modules):
        """Epoch means of the losses, and how varied samples from fixed noise are relative to real images of the same
        classes (within-class spread, so a generator that draws one image per class is caught too). `modules` holds
        the EMA generator, which lags behind; health is judged on the one being trained."""
        means = self.epoch_means()
        out = {k: round(v, 4) for k, v in means.items()}
        if self.val is None:
            return out
        real, labels = self.val[0][:500].to(self.device), self.val[1][:500].to(self.device)
        G = self.modules["G"].eval()
        fake = sample({"G": G}, self.arch, self.condition(labels, seeded(7)), len(real), seeded(7))
        G.train()
        cond = self.arch.cond != "none"
        ratio = spread_ratio(fake, real, labels if cond else None)
        per_class = {self.classes[k]: v for k, v in class_spread_ratios(fake, real, labels).items()} if cond else {}
        problems = health(means.get("d_loss", 1.0), means.get("g_loss", 0.0), ratio, per_class)
        for p in problems:
            warnings.warn(p, stacklevel=2)
        return {**out, "gan_spread_ratio": round(ratio, 4),
                "gan_min_class_spread": round(min(per_class.values(), default=ratio), 4),
                "gan_collapse": int(any("collapse" in p for p in problems)),
                "gan_diverging": int(any("diverging" in p for p in problems))}


# ---------------------------------------------------------------------------------------- the family protocol
class GANFamily(GeneratorFamily):
    name, arch_class, task_class = "gan", GANConfig, GANTask
    options = ("gan_width", "latent_size")
    side_multiple = 4  # two stride-2 levels
    can_interpolate = has_latent = True

    def make_arch(self, cfg, common):
        width = {"g_base": cfg.gan_width, "d_base": cfg.gan_width} if cfg.gan_width else {}
        return GANConfig(**common, **width, **({"z_dim": cfg.latent_size} if cfg.latent_size else {}))

    def build(self, arch):
        return build(arch)

    def health(self, last):
        return health(last.get("d_loss", 1.0), last.get("g_loss", 0.0), last.get("gan_spread_ratio", 1.0),
                      {"the least varied class": last.get("gan_min_class_spread", 1.0)})

    def sample(self, modules, arch, cond, n, g, opts, progress=None):
        return sample(modules, arch, cond, n, g, opts.temperature)

    def interpolate(self, modules, arch, cond, n, g, a, b, opts):
        return interpolate(modules, arch, cond, n, g)

    def latent_size(self, arch):
        return arch.z_dim

    def decode(self, modules, arch, z, cond):
        return decode(modules["G"], z, cond)

    def evaluate(self, modules, arch, x, y, condition):
        """How varied samples are relative to real images of the same classes (a GAN has no likelihood)."""
        k, g = min(1000, len(x)), seeded(5)
        fake = sample(modules, arch, condition(y[:k], g), k, g)
        return {"spread_ratio": round(spread_ratio(fake, x[:k], y[:k] if arch.cond != "none" else None), 4)}


FAMILY = GANFamily()
