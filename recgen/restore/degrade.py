"""The corruptions recgen restores, one definition shared by training, evaluation, the baselines and the CLI.

    inpaint   pixels under a mask are missing: a given mask image, one box, or free-form brush strokes
              (as in DeepFill v2, arXiv 1806.03589) covering a share `ratio` of the image
    denoise   additive white Gaussian noise of standard deviation `sigma` on images in [0, 1], clipped to [0, 1]
              (what a stored image keeps)
    superres  area (box-filter) downscaling by an integer `scale`: each low-resolution pixel is the mean of a
              scale x scale block
    jpeg      JPEG compression at `quality` (PIL's encoder, 4:2:0 chroma subsampling for colour), decoded again
    oldphoto  an aged print (age, below): blur, faded and tinted colours, grain, scratches and dust

Images are float tensors (N, C, H, W) in [0, 1]; masks are float (N, 1, H, W) with 1 = missing. Every corruption is
quantised to 8 bits, exactly what a corrupted image written to disk and read back holds, so the restorers train on
what they will be handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from recgen.config import check_option
from recgen.data.photos import LUMA
from recgen.errors import RecgenError
from recgen.restore.config import MASK_KINDS, SCALES, TASKS  # noqa: F401 (re-exported)



@dataclass
class Observation:
    """What a restoration method is handed: the corrupted images and what is known about the corruption."""

    task: str  # inpaint | denoise | superres | jpeg | oldphoto
    y: torch.Tensor  # (N, C, h, w) in [0, 1]: masked, noisy or low-resolution images
    mask: torch.Tensor | None = None  # inpaint: (N, 1, H, W), 1 = missing pixel
    sigma: torch.Tensor | None = None  # denoise: (N,) noise standard deviation per image (known or estimated)
    scale: int = 1  # superres: the upscaling factor

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        n, c, h, w = self.y.shape
        return n, c, h * self.scale, w * self.scale

    def subset(self, idx) -> Observation:
        return Observation(self.task, self.y[idx], None if self.mask is None else self.mask[idx],
                           None if self.sigma is None else self.sigma[idx], self.scale)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> the nearest of the 256 levels an 8-bit image can hold."""
    return (x.clamp(0, 1) * 255).round() / 255


# ---------------------------------------------------------------------------------------------------------- masks
def box_mask(h: int, w: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """One rectangle of about ratio * h * w pixels, aspect ratio in [1/2, 2], anywhere inside the image."""
    area = ratio * h * w
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    bh = int(np.clip(round(np.sqrt(area * aspect)), 1, h))
    bw = int(np.clip(round(area / bh), 1, w))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    m = np.zeros((h, w), np.uint8)
    m[top:top + bh, left:left + bw] = 1
    return m


def stroke_mask(h: int, w: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Random brush strokes (polylines of 2-5 segments, width ~h/14 to h/7) drawn until `ratio` of the pixels are
    covered; the last stroke may overshoot by a few pixels."""
    m = np.zeros((h, w), np.uint8)
    target = ratio * h * w
    side = min(h, w)
    lo, hi = max(1, side // 14), max(2, side // 7)
    while m.sum() < target:
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        width = int(rng.integers(lo, hi + 1))
        for _ in range(int(rng.integers(2, 6))):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(side / 6, side / 2.5)
            nx, ny = np.clip(x + length * np.cos(angle), 0, w - 1), np.clip(y + length * np.sin(angle), 0, h - 1)
            cv2.line(m, (int(x), int(y)), (int(nx), int(ny)), 1, width)
            x, y = nx, ny
            if m.sum() >= target:
                break
    return m


def scratch_mask(h: int, w: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Thin scratches (lines 1-3 pixels wide, mostly long and near-vertical, as on film and prints) drawn until
    `ratio` of the pixels are covered (at most 40 of them: a high ratio ends with many scratches, not thick ones)."""
    m = np.zeros((h, w), np.uint8)
    for _ in range(40):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        angle = np.pi / 2 + rng.normal(0, 0.3) if rng.random() < 0.7 else rng.uniform(0, np.pi)
        length = rng.uniform(0.2, 1.0) * max(h, w)
        dx, dy = length * np.cos(angle) / 2, length * np.sin(angle) / 2
        cv2.line(m, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), 1, int(rng.integers(1, 4)))
        if m.mean() >= ratio:
            break
    return m


MASKERS = {"box": box_mask, "strokes": stroke_mask, "scratches": scratch_mask}


def draw_masks(n: int, h: int, w: int, kind: str, ratio: float | tuple[float, float], seed: int) -> torch.Tensor:
    """n masks (n, 1, h, w), 1 = missing. kind: box | strokes | scratches, or several joined by + (each mask
    picks one at random);
    ratio: a share of the pixels, or a (low, high) range each mask draws its share from."""
    kinds = kind.split("+")
    bad = [k for k in kinds if k not in MASK_KINDS]
    if bad:
        raise RecgenError(f"mask kind must be box, strokes, scratches or several joined by +, got {kind!r}")
    lo, hi = (ratio, ratio) if isinstance(ratio, (int, float)) else ratio
    if not 0 < lo <= hi < 1:
        raise RecgenError(f"mask ratio must be in (0, 1), got {ratio}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, h, w), np.float32)
    for i in range(n):
        r = float(rng.uniform(lo, hi))
        k = kinds[int(rng.integers(len(kinds)))]
        out[i, 0] = MASKERS[k](h, w, r, rng)
    return torch.from_numpy(out)


def mask_from_image(arr: np.ndarray, shape: tuple[int, int], name: str = "mask") -> torch.Tensor:
    """A mask image (H, W[, C]) uint8, white = missing -> (1, 1, H, W); refuses a wrong size, an empty mask (nothing
    to fill) and a full one (nothing to fill it from)."""
    if arr.ndim == 3:
        arr = arr.max(axis=-1)
    if arr.shape != tuple(shape):
        raise RecgenError(f"{name}: mask is {arr.shape[0]}x{arr.shape[1]} but the image is {shape[0]}x{shape[1]}")
    m = arr > 127
    check_mask(m, name)
    return torch.from_numpy(m.astype(np.float32))[None, None]


def check_mask(m: np.ndarray | torch.Tensor, name: str = "mask") -> None:
    frac = float(m.astype(np.float32).mean() if isinstance(m, np.ndarray) else m.float().mean())
    if frac == 0:
        raise RecgenError(f"{name}: the mask is empty (no white pixels): nothing to inpaint")
    if frac == 1:
        raise RecgenError(f"{name}: the mask covers the whole image: nothing left to inpaint from")


# ---------------------------------------------------------------------------------------------- the corruptions
def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Missing pixels set to 0 (what the grids show and what the restorer is fed)."""
    return x * (1 - mask)


def is_grey(x: torch.Tensor) -> torch.Tensor:
    """(N,) True where an image (N, C, H, W) has C > 1 equal channels: a grey photo in a colour batch."""
    if x.shape[1] == 1:
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)
    return (x[:, 1:] == x[:, :1]).flatten(1).all(1)


def add_noise(x: torch.Tensor, sigma: float | torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y = clip(x + sigma * n, 0, 1), quantised to 8 bits; sigma a number or (N,) per image. A grey image among
    colour ones (equal channels) gets one noise field on every channel: a grey photo has one channel of noise,
    and a colour restorer is handed it as three equal copies."""
    s = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
    n = torch.randn(x.shape, generator=g).to(x.device)
    grey = is_grey(x)
    if grey.any():
        n[grey] = n[grey][:, :1].expand(-1, x.shape[1], -1, -1)
    return quantize(x + s * n)


def downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Area downscaling (the mean of each scale x scale block, as cv2.INTER_AREA), quantised to 8 bits."""
    check_scale(scale, x.shape[-2:])
    return quantize(F.avg_pool2d(x, scale))


def project(obs: Observation, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """x + A^+ (y - A x): the image closest to x (in L2) that agrees with the observation y = A x (default obs.y;
    any pixel range, as long as x and y share it). Inpainting: A keeps the known pixels, A^+ = A; super-resolution:
    A = area downscaling, A^+ = pixel replication (A A^+ = I). Denoising has no exact constraint: x is returned."""
    y = obs.y.to(x) if y is None else y
    if obs.task == "inpaint":
        m = obs.mask.to(x)
        return y * (1 - m) + x * m
    if obs.task == "superres":
        return x + F.interpolate(y - F.avg_pool2d(x, obs.scale), scale_factor=obs.scale, mode="nearest")
    return x


def consistent(obs: Observation, x: torch.Tensor, iters: int = 10) -> torch.Tensor:
    """An image in [0, 1] that agrees with the observation: alternating projections onto {A z = y} and the [0, 1]
    box (POCS; both sets hold the true image, so no step moves away from it)."""
    for _ in range(iters if obs.task == "superres" else 1):
        x = project(obs, x).clamp(0, 1)
    return x


def check_scale(scale: int, hw: tuple[int, int] | None = None) -> None:
    if scale not in SCALES:
        raise RecgenError(f"scale {scale} not supported: choose one of {', '.join(map(str, SCALES))}")
    if hw is not None and (hw[0] % scale or hw[1] % scale):
        raise RecgenError(f"image sides must be divisible by the scale {scale}, got {hw[0]}x{hw[1]}")


def check_sigma(sigma: float) -> None:
    if sigma < 0 or not np.isfinite(sigma):
        raise RecgenError(f"sigma must be a non-negative noise level (images in [0, 1]), got {sigma}")
    if sigma > 1:
        raise RecgenError(f"sigma is the noise std for images in [0, 1]; {sigma} is too large (did you mean "
                          f"{sigma / 255:.3f} for 0-255 images?)")


def check_quality(quality: int) -> None:
    if not 1 <= check_option("quality", quality, int) <= 100:
        raise RecgenError(f"quality must be a JPEG quality from 1 to 100, got {quality}")


def corrupt(x: torch.Tensor, task: str, seed: int, mask_kind: str = "box", ratio: float = 0.25,
            sigma: float = 0.2, scale: int = 2, mask: torch.Tensor | None = None, quality: int = 20) -> Observation:
    """Clean images (N, C, H, W) -> the observation a restorer is handed; seeded, so the same images and seed give
    the same corruption for every method compared."""
    if task not in TASKS:
        raise RecgenError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    n, _, h, w = x.shape
    if task == "inpaint":
        if mask is None:
            mask = draw_masks(n, h, w, mask_kind, ratio, seed)
        mask = mask.expand(n, 1, h, w).to(x.device)
        return Observation(task, quantize(apply_mask(x, mask)), mask=mask)
    if task == "denoise":
        check_sigma(sigma)
        g = torch.Generator().manual_seed(seed)
        return Observation(task, add_noise(x, sigma, g), sigma=torch.full((n,), float(sigma)))
    if task == "jpeg":
        return Observation(task, jpeg(x, quality))
    if task == "oldphoto":
        return Observation(task, age(x, np.random.default_rng(seed)))
    check_scale(scale, (h, w))
    return Observation(task, downscale(x, scale), scale=scale)


def jpeg(x: torch.Tensor, quality: int | list[int]) -> torch.Tensor:
    """Each image (N, C, H, W) in [0, 1] JPEG-encoded at `quality` (one for all, or one per image) and decoded."""
    import io

    from PIL import Image

    qs = [quality] * len(x) if isinstance(quality, int) else list(quality)
    for q in qs:
        check_quality(q)
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for im, q in zip(u8, qs):
        buf = io.BytesIO()
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, "JPEG", quality=int(q))
        out.append(np.asarray(Image.open(buf)).reshape(im.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255).to(x.device)


# ------------------------------------------------------------------------------------------ noise-level estimate
def estimate_sigma(y: torch.Tensor) -> torch.Tensor:
    """Per-image noise std (N,) from the median absolute deviation of the finest diagonal (Haar HH) wavelet band
    (Donoho & Johnstone 1994). Clipping to [0, 1] eats part of the noise on black background (most of a
    Fashion-MNIST image), so only 2x2 blocks whose neighbourhood lies well inside (0, 1) count: first those with
    a local mean in [0.3, 0.7], then, with that first estimate s, those in [2.5 s, 1 - 2.5 s]."""
    n, ch = y.shape[:2]
    if ch > 1:  # each channel on its own, then their median; a grey photo given as three equal channels is one
        grey = (y[:, :1] == y).flatten(1).all(1)
        per = estimate_sigma(y.reshape(n * ch, 1, *y.shape[-2:])).reshape(n, ch)
        return torch.where(grey, per[:, 0], per.median(1).values)
    x = y.float()  # (N, 1, H, W)
    x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    hh = ((a - b - c + d) / 2).flatten(1)  # (N, h/2 * w/2): the noise std, smooth content cancelled
    local = F.avg_pool2d((a + b + c + d) / 4, 3, stride=1, padding=1, count_include_pad=False).flatten(1)
    out = []
    for band, mean in zip(hh, local):
        lo, hi, s = 0.3, 0.7, None
        for _ in range(2):
            keep = (mean > lo) & (mean < hi)
            v = band[keep] if keep.sum() >= 8 else band
            s = float(v.abs().median()) / 0.6745
            lo, hi = min(2.5 * s, 0.45), max(1 - 2.5 * s, 0.55)
        out.append(s)
    return torch.tensor(out, dtype=torch.float32)


# ----------------------------------------------------------------------------------------------- old photo
# The "old photo" corruption: what decades do to a print, in the order it happens, each strength drawn per image.
#
#     blur       Gaussian, std BLUR px (a soft lens, a print made from a print)
#     fading     contrast lost towards a lifted black and a dimmed white, FADE; colour photos also drift towards a
#                sepia tone by a share TINT (the dyes of colour prints fade unevenly, arXiv 2004.09484 models the
#                same family of degradations)
#     grain      additive Gaussian noise of std GRAIN (film grain, scanner noise)
#     scratches  thin bright lines (scratch_mask) and dust specks, SCRATCH share of pixels
#
# The restorer is blind to all of it: it sees only the aged photo and learns the whole chain back in one network.

BLUR = (0.3, 1.5)  # px, Gaussian std
FADE = (0.55, 0.9)  # contrast kept
LIFT = (0.03, 0.15)  # black level lifted to
TINT = (0.0, 0.6)  # share of the sepia-toned image mixed in (colour only)
GRAIN = (0.01, 0.05)  # noise std, images in [0, 1]
SCRATCH = (0.002, 0.02)  # share of pixels under scratches and dust
SEPIA = np.array([1.07, 0.74, 0.43], np.float32)  # RGB gains on the luma of a sepia print


def _age_one(im: np.ndarray, rng: np.random.Generator, grey: bool) -> np.ndarray:
    """One image (H, W, C) float32 in [0, 1] -> aged, same shape; grey (equal channels): one grain field on every
    channel, as a grey print has."""
    h, w, c = im.shape
    a = cv2.GaussianBlur(im, (0, 0), float(rng.uniform(*BLUR))).reshape(h, w, c)
    contrast, lift = rng.uniform(*FADE), rng.uniform(*LIFT)
    a = lift + contrast * a
    if c == 3:
        luma = a @ LUMA
        t = rng.uniform(*TINT)
        a = (1 - t) * a + t * luma[..., None] * SEPIA
    grain = rng.standard_normal(a.shape).astype(np.float32)
    if grey:
        grain[..., 1:] = grain[..., :1]
    a = a + rng.uniform(*GRAIN) * grain
    m = scratch_mask(h, w, float(rng.uniform(*SCRATCH)), rng).astype(bool)
    for _ in range(int(rng.integers(0, 1 + h * w // 20000))):  # dust: small bright or dark specks
        cv2.circle(m.view(np.uint8), (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, 3)), 1, -1)
    a[m] = rng.uniform(0.75, 1.0)
    return np.clip(a, 0, 1)


def age(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Clean images (N, C, H, W) in [0, 1] -> aged, quantised to 8 bits."""
    arr = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = np.stack([_age_one(np.ascontiguousarray(im), rng, bool(g)) for im, g in zip(arr, is_grey(x).tolist())])
    return quantize(torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device))
