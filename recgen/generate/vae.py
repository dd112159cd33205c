"""Convolutional VAE (arXiv 1312.6114), optionally conditioned on a class or text (a CVAE, Sohn et al. 2015).

    encoder: x -> conv3x3 (b) -> conv4x4/2 (2b) -> conv4x4/2 (4b) -> flatten (+ condition) -> mu, log var (latent_dim)
    decoder: z (+ condition) -> linear -> (2b, H/4, W/4) -> convT 4x4/2 (b) -> convT 4x4/2 (C) -> sigmoid

The decoder is a Gaussian with a learned per-channel scale (the calibrated "sigma-VAE", arXiv 2006.13202), trained
on uniformly dequantised pixels y = (x_255 + u) / 256, so the ELBO is a bound on a proper density on [0, 1]^D and
converts to an upper bound on the 8-bit negative log-likelihood: bits/dim <= -ELBO / (D ln 2) + 8.
The decoder is deliberately small: it is what sampling runs, and it is meant to decode thousands of images a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recgen.generate.common import GeneratorTask, bits_per_dim, slerp
from recgen.generate.condition import make_conditioner
from recgen.generate.family import GeneratorFamily
from recgen.train import seeded


@dataclass
class VAEConfig:
    channels: int = 1  # image channels: 1 grayscale, 3 RGB
    height: int = 28  # image height in pixels (divisible by 4)
    width: int = 28  # image width in pixels (divisible by 4)
    num_classes: int = 10  # classes of the dataset (embedding rows when cond is 'class')
    cond: str = "class"  # none | class | text
    latent_dim: int = 16  # size of the Gaussian latent z
    base: int = 32  # channels at full resolution in the encoder (2x at 1/2, 4x at 1/4 resolution)
    cond_dim: int = 32  # size of the condition vector given to encoder and decoder


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        b = cfg.base
        self.convs = nn.Sequential(nn.Conv2d(cfg.channels, b, 3, 1, 1), nn.SiLU(), nn.Conv2d(b, 2 * b, 4, 2, 1),
                                   nn.SiLU(), nn.Conv2d(2 * b, 4 * b, 4, 2, 1), nn.SiLU(), nn.Flatten())
        feat = 4 * b * (cfg.height // 4) * (cfg.width // 4)
        self.cond = make_conditioner(cfg.cond, cfg.num_classes, cfg.cond_dim)
        self.cond_proj = nn.Linear(cfg.cond_dim, feat) if self.cond is not None else None
        self.head = nn.Linear(feat, 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor, c=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [0, 1] -> posterior mean and log variance, each (B, latent_dim)."""
        h = self.convs(x * 2 - 1)
        if self.cond is not None:
            h = h + self.cond_proj(self.cond(c))
        mu, logvar = self.head(F.silu(h)).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        b, self.h0, self.w0 = cfg.base, cfg.height // 4, cfg.width // 4
        self.cond = make_conditioner(cfg.cond, cfg.num_classes, cfg.cond_dim)
        zin = cfg.latent_dim + (cfg.cond_dim if self.cond is not None else 0)
        self.fc = nn.Linear(zin, 2 * b * self.h0 * self.w0)
        self.net = nn.Sequential(nn.SiLU(), nn.ConvTranspose2d(2 * b, b, 4, 2, 1), nn.SiLU(),
                                 nn.ConvTranspose2d(b, cfg.channels, 4, 2, 1))  # straight to pixels
        self.log_sigma = nn.Parameter(torch.full((cfg.channels,), math.log(0.1)))  # learned decoder scale

    def forward(self, z: torch.Tensor, c=None) -> torch.Tensor:
        """Latents (B, latent_dim) -> mean images (B, C, H, W) in (0, 1)."""
        if self.cond is not None:
            z = torch.cat([z, self.cond(c)], 1)
        return torch.sigmoid(self.net(self.fc(z).view(len(z), -1, self.h0, self.w0)))


def build(cfg: VAEConfig) -> dict[str, nn.Module]:
    return {"encoder": Encoder(cfg), "decoder": Decoder(cfg)}


def neg_elbo(modules, x: torch.Tensor, c, g: torch.Generator) -> dict[str, torch.Tensor]:
    """-ELBO per image in nats (B,) for uint8-valued images x in [0, 1], dequantised with noise from g."""
    enc, dec = modules["encoder"], modules["decoder"]
    y = (x * 255 + torch.rand(x.shape, generator=g).to(x.device)) / 256  # uniform dequantisation
    mu, logvar = enc(y, c)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g).to(x.device)  # reparameterisation
    mean = dec(z, c)
    log_sigma = dec.log_sigma.clamp(min=-7)[None, :, None, None]
    nll = (0.5 * ((y - mean) / log_sigma.exp()) ** 2 + log_sigma + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)  # KL(q(z|x) || N(0, I)) in closed form
    return {"nll": nll, "kl": kl, "neg_elbo": nll + kl, "mean": mean}


# ------------------------------------------------------------------------------------------------------ sampling
@torch.no_grad()
def decode(modules, z: torch.Tensor, c) -> torch.Tensor:
    """Latents (N, latent_dim) -> images (N, C, H, W) in [0, 1] (the decoder's mean)."""
    return modules["decoder"](z, c).clamp(0, 1)


@torch.no_grad()
def encode(modules, x: torch.Tensor, c) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] -> posterior mean and standard deviation (N, latent_dim)."""
    mu, logvar = modules["encoder"](x, c)
    return mu, (0.5 * logvar).exp()


def sample(modules, cfg: VAEConfig, c, n: int, g: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    z = torch.randn(n, cfg.latent_dim, generator=g) * temperature
    return decode(modules, z.to(next(modules["decoder"].parameters()).device), c)


def variations(modules, cfg: VAEConfig, x: torch.Tensor, c, n: int, g: torch.Generator,
               strength: float) -> torch.Tensor:
    """n variations of one image x (1, C, H, W): z = sqrt(1 - s) mu + sqrt(s) eps, the variance-preserving mix of
    the image's code with prior noise (s = 0: its reconstruction, s = 1: an unrelated sample)."""
    mu, _ = encode(modules, x, c[:1] if c is not None else None)
    eps = torch.randn(n, cfg.latent_dim, generator=g).to(mu.device)
    return decode(modules, math.sqrt(1 - strength) * mu + math.sqrt(strength) * eps, c)


@torch.no_grad()
def infer_class(modules, x: torch.Tensor, conds: torch.Tensor, g: torch.Generator) -> int:
    """The condition (index into conds, one per class) under which image x (1, C, H, W) has the highest ELBO:
    a conditional VAE is a generative classifier."""
    xs = x.expand(len(conds), *x.shape[1:])
    return int(neg_elbo(modules, xs, conds, g)["neg_elbo"].argmin())


def interpolate(modules, cfg: VAEConfig, c, n: int, g: torch.Generator, a=None, b=None) -> torch.Tensor:
    """n images between the codes of images a and b (1, C, H, W) (straight line between posterior means), or
    between two prior samples from g (great circle) when no images are given."""
    if a is not None and b is not None:
        ca = c[:1] if c is not None else None
        za, zb = encode(modules, a, ca)[0][0], encode(modules, b, ca)[0][0]
        t = torch.linspace(0, 1, n, device=za.device)[:, None]
        z = (1 - t) * za + t * zb
    else:
        za, zb = torch.randn(2, cfg.latent_dim, generator=g)
        z = slerp(za, zb, torch.linspace(0, 1, n))
    return decode(modules, z.to(next(modules["decoder"].parameters()).device), c)


# ------------------------------------------------------------------------------------------------------ training
class VAETask(GeneratorTask):
    monitor, monitor_mode = "val_bpd", "min"

    def training_step(self, batch, g):
        x, y = batch
        x = self.augment(x, g)
        out = neg_elbo(self.modules, x, self.condition(y, g), g)
        dims = x[0].numel()
        return {"loss": out["neg_elbo"].mean() / dims, "kl": out["kl"].mean().detach()}  # nats per dimension

    def sample(self, modules, c, n, g):
        return sample(modules, self.arch, c, n, g)

    @torch.no_grad()
    def validate(self, modules):
        """-ELBO as bits/dim (an upper bound on the 8-bit NLL), the ELBO in nats per image, KL and the mean squared
        error of reconstructions from the posterior mean, on up to 1000 validation images."""
        if self.val is None:
            return {}
        for m in modules.values():
            m.eval()
        m = evaluate(modules, self.arch, self.val[0][:1000].to(self.device), self.val[1][:1000].to(self.device),
                     self.condition)
        for mod in self.modules.values():
            mod.train()
        return {f"val_{k}": v for k, v in m.items()}


@torch.no_grad()
def evaluate(modules, cfg: VAEConfig, x: torch.Tensor, y: torch.Tensor, condition, batch: int = 500) -> dict:
    g = seeded(11)
    tot = {"neg_elbo": 0.0, "kl": 0.0, "mse": 0.0}
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        c = condition(yb, g)
        out = neg_elbo(modules, xb, c, g)
        tot["neg_elbo"] += float(out["neg_elbo"].sum())
        tot["kl"] += float(out["kl"].sum())
        mu, _ = encode(modules, xb, c)
        tot["mse"] += float(((decode(modules, mu, c) - xb) ** 2).flatten(1).mean(1).sum())
    n, dims = len(x), x[0].numel()
    return {"bpd": round(bits_per_dim(tot["neg_elbo"] / n, dims) + 8, 4), "elbo": round(-tot["neg_elbo"] / n, 2),
            "kl": round(tot["kl"] / n, 3), "recon_mse": round(tot["mse"] / n, 5)}


# ---------------------------------------------------------------------------------------- the family protocol
class VAEFamily(GeneratorFamily):
    name, arch_class, task_class = "vae", VAEConfig, VAETask
    options = ("vae_width", "latent_size")
    side_multiple = 4  # two stride-2 levels
    can_vary = can_interpolate = interpolates_images = has_latent = can_embed = can_infer_class = True

    def make_arch(self, cfg, common):
        return VAEConfig(**common, **({"base": cfg.vae_width} if cfg.vae_width else {}),
                         **({"latent_dim": cfg.latent_size} if cfg.latent_size else {}))

    def build(self, arch):
        return build(arch)

    def sample(self, modules, arch, cond, n, g, opts, progress=None):
        return sample(modules, arch, cond, n, g, opts.temperature)

    def vary(self, modules, arch, cond, start, n, g, opts, progress=None):
        return variations(modules, arch, start, cond, n, g, opts.strength)

    def interpolate(self, modules, arch, cond, n, g, a, b, opts):
        return interpolate(modules, arch, cond, n, g, a, b)

    def latent_size(self, arch):
        return arch.latent_dim

    def decode(self, modules, arch, z, cond):
        return decode(modules, z, cond)

    def embed(self, modules, arch, x, cond):
        return encode(modules, x, cond)[0]

    def infer_class(self, modules, arch, x, conds, g):
        return infer_class(modules, x, conds, g)

    def evaluate(self, modules, arch, x, y, condition):
        return evaluate(modules, arch, x, y, condition)


FAMILY = VAEFamily()
