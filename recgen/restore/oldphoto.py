"""The "old photo" corruption: what decades do to a print, in the order it happens, each strength drawn per image.

    blur       Gaussian, std BLUR px (a soft lens, a print made from a print)
    fading     contrast lost towards a lifted black and a dimmed white, FADE; colour photos also drift towards a
               sepia tone by a share TINT (the dyes of colour prints fade unevenly, arXiv 2004.09484 models the
               same family of degradations)
    grain      additive Gaussian noise of std GRAIN (film grain, scanner noise)
    scratches  thin bright lines (recgen.restore.degrade.scratch_mask) and dust specks, SCRATCH share of pixels

The restorer is blind to all of it: it sees only the aged photo and learns the whole chain back in one network.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

BLUR = (0.3, 1.5)  # px, Gaussian std
FADE = (0.55, 0.9)  # contrast kept
LIFT = (0.03, 0.15)  # black level lifted to
TINT = (0.0, 0.6)  # share of the sepia-toned image mixed in (colour only)
GRAIN = (0.01, 0.05)  # noise std, images in [0, 1]
SCRATCH = (0.002, 0.02)  # share of pixels under scratches and dust
SEPIA = np.array([1.07, 0.74, 0.43], np.float32)  # RGB gains on the luma of a sepia print


def _age_one(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image (H, W, C) float32 in [0, 1] -> aged, same shape."""
    from recgen.restore.degrade import scratch_mask

    h, w, c = im.shape
    a = cv2.GaussianBlur(im, (0, 0), float(rng.uniform(*BLUR))).reshape(h, w, c)
    contrast, lift = rng.uniform(*FADE), rng.uniform(*LIFT)
    a = lift + contrast * a
    if c == 3:
        luma = a @ np.array([0.299, 0.587, 0.114], np.float32)
        t = rng.uniform(*TINT)
        a = (1 - t) * a + t * luma[..., None] * SEPIA
    a = a + rng.uniform(*GRAIN) * rng.standard_normal(a.shape).astype(np.float32)
    m = scratch_mask(h, w, float(rng.uniform(*SCRATCH)), rng).astype(bool)
    for _ in range(int(rng.integers(0, 1 + h * w // 20000))):  # dust: small bright or dark specks
        cv2.circle(m.view(np.uint8), (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, 3)), 1, -1)
    a[m] = rng.uniform(0.75, 1.0)
    return np.clip(a, 0, 1)


def age(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Clean images (N, C, H, W) in [0, 1] -> aged, quantised to 8 bits."""
    from recgen.restore.degrade import quantize

    arr = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = np.stack([_age_one(np.ascontiguousarray(im), rng) for im in arr])
    return quantize(torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device))
