"""Preprocessing and augmentation on image batches (N, C, H, W) float in [0, 1].

Two layers: plain functions (resize, rotate, crop, pad, flip, translate, pixel ops, normalize) usable alone from the
API, and random transforms composed into a pipeline that draws its parameters from an explicit torch.Generator, so
an augmentation stream is reproducible from (seed, step) alone. Geometry uses kornia's warps.
"""

from __future__ import annotations

import math

import kornia.geometry.transform as KT
import torch
import torch.nn.functional as F

from recgen.errors import RecgenError


def _batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (x[None], True) if x.ndim == 3 else (x, False)


def _unbatch(x: torch.Tensor, squeeze: bool) -> torch.Tensor:
    return x[0] if squeeze else x


# ----------------------------------------------------------------------------------------------- functional
def resize(x: torch.Tensor, size: int | tuple[int, int], antialias: bool = True) -> torch.Tensor:
    xb, sq = _batch(x)
    size = (size, size) if isinstance(size, int) else tuple(size)
    return _unbatch(F.interpolate(xb, size=size, mode="bilinear", align_corners=False, antialias=antialias), sq)


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate counter-clockwise about the centre, filling with black."""
    xb, sq = _batch(x)
    angle = torch.full((len(xb),), float(degrees), dtype=xb.dtype)
    return _unbatch(KT.rotate(xb, angle, padding_mode="zeros"), sq)


def translate(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    xb, sq = _batch(x)
    t = torch.tensor([[dx, dy]], dtype=xb.dtype).expand(len(xb), 2)
    return _unbatch(KT.translate(xb, t, padding_mode="zeros"), sq)


def flip(x: torch.Tensor, horizontal: bool = True) -> torch.Tensor:
    return x.flip(-1 if horizontal else -2)


def pad(x: torch.Tensor, padding: int, value: float = 0.0) -> torch.Tensor:
    return F.pad(x, (padding,) * 4, value=value)


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    if top < 0 or left < 0 or top + height > x.shape[-2] or left + width > x.shape[-1]:
        raise RecgenError(f"crop ({top}, {left}, {height}, {width}) lies outside a {tuple(x.shape[-2:])} image")
    return x[..., top:top + height, left:left + width]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return crop(x, (h - size) // 2, (w - size) // 2, size, size)


def adjust_brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    return (x * factor).clamp(0, 1)


def adjust_contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    return ((x - mean) * factor + mean).clamp(0, 1)


def adjust_gamma(x: torch.Tensor, gamma: float) -> torch.Tensor:
    return x.clamp(0, 1).pow(gamma)


def invert(x: torch.Tensor) -> torch.Tensor:
    return 1.0 - x


def normalize(x: torch.Tensor, mean: float | list[float], std: float | list[float]) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype).reshape(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).reshape(-1, 1, 1)
    return (x - m) / s


# --------------------------------------------------------------------------------------------------- random
def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


class RandomFlip:
    """Horizontal flip with probability p (clothes and most objects are left-right symmetric in meaning)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m = (torch.rand(len(x), generator=g) < self.p).view(-1, 1, 1, 1).to(x.device)
        return torch.where(m, x.flip(-1), x)


class RandomCrop:
    """Pad by `padding` pixels then crop back at a random integer offset (the classic translate augmentation)."""

    def __init__(self, padding: int = 2):
        self.padding = padding

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        p, (n, c, h, w) = self.padding, x.shape
        xp = F.pad(x, (p,) * 4)
        dy = torch.randint(0, 2 * p + 1, (n,), generator=g).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=g).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * p)
        xp = xp.gather(2, rows)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
        return xp.gather(3, cols)


def affine(x: torch.Tensor, degrees: torch.Tensor, scale: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor
           ) -> torch.Tensor:
    """Batch (N, C, H, W), per image: rotation about the centre (degrees), isotropic scale, then a shift of (tx, ty)
    pixels; one kornia warp, zeros outside."""
    n, _, h, w = x.shape
    center = torch.tensor([(w - 1) / 2, (h - 1) / 2]).expand(n, 2)
    mat = KT.get_rotation_matrix2d(center, degrees, torch.stack([scale, scale], 1))
    mat[:, :, 2] += torch.stack([tx, ty], 1)
    return KT.warp_affine(x, mat.to(x.device, x.dtype), (h, w), padding_mode="zeros")


class RandomAffine:
    """Rotation (degrees), translation (fraction of size) and isotropic scale, one kornia warp per batch."""

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1)):
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        ang = _uniform(g, n, -self.degrees, self.degrees)
        sc = _uniform(g, n, *self.scale)
        tx = _uniform(g, n, -self.translate, self.translate) * w
        ty = _uniform(g, n, -self.translate, self.translate) * h
        return affine(x, ang, sc, tx, ty)


class RandomJitter:
    """Brightness and contrast factors drawn from [1 - b, 1 + b] and [1 - c, 1 + c]."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2):
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = len(x)
        b = _uniform(g, n, 1 - self.brightness, 1 + self.brightness).view(n, 1, 1, 1)
        c = _uniform(g, n, 1 - self.contrast, 1 + self.contrast).view(n, 1, 1, 1)
        b, c = b.to(x.device), c.to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (((x - mean) * c + mean) * b).clamp(0, 1)


class RandomErasing:
    """Random erasing / cutout (arXiv 1708.04896): one rectangle of area fraction in `scale` set to zero, with
    probability p."""

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.25)):
        self.p, self.scale = p, scale

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        area = _uniform(g, n, *self.scale) * h * w
        aspect = torch.exp(_uniform(g, n, math.log(0.3), math.log(3.3)))
        eh = (area * aspect).sqrt().clamp(1, h).long()
        ew = (area / aspect).sqrt().clamp(1, w).long()
        top = (torch.rand(n, generator=g) * (h - eh + 1)).long()
        left = (torch.rand(n, generator=g) * (w - ew + 1)).long()
        apply = torch.rand(n, generator=g) < self.p
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        box = ((yy >= top.view(n, 1, 1)) & (yy < (top + eh).view(n, 1, 1))
               & (xx >= left.view(n, 1, 1)) & (xx < (left + ew).view(n, 1, 1)) & apply.view(n, 1, 1))
        return x.masked_fill(box[:, None].to(x.device), 0.0)


class GaussianNoise:
    def __init__(self, sigma: float = 0.05):
        self.sigma = sigma

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return (x + torch.randn(x.shape, generator=g).to(x.device) * self.sigma).clamp(0, 1)


class Compose:
    def __init__(self, transforms: list):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, g)
        return x

    def __len__(self) -> int:
        return len(self.transforms)


AUGMENTATIONS = {
    "flip": RandomFlip,
    "crop": RandomCrop,
    "affine": RandomAffine,
    "rotate": lambda: RandomAffine(degrees=15.0, translate=0.0, scale=(1.0, 1.0)),
    "jitter": RandomJitter,
    "erase": RandomErasing,
    "noise": GaussianNoise,
}


def build_augment(spec: str | None) -> Compose:
    """'flip+crop+erase' -> Compose of those, in that order. '' or 'none' -> identity."""
    if not spec or spec == "none":
        return Compose([])
    parts = [p.strip() for p in spec.replace(",", "+").split("+") if p.strip()]
    unknown = [p for p in parts if p not in AUGMENTATIONS]
    if unknown:
        raise RecgenError(f"augment: unknown {unknown[0]!r}; choose from {'+'.join(AUGMENTATIONS)}")
    return Compose([AUGMENTATIONS[p]() for p in parts])
