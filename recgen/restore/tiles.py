"""Restoration in overlapping tiles: any image size in bounded memory.

The image is cut into TILE x TILE tiles; each is restored together with a margin of `overlap` pixels of its
neighbours (clipped at the image border) and only its own centre is kept, so every output pixel is computed with
at least that much context on each side. With the restorer's receptive radius as the overlap (RestorerConfig.reach)
a fully convolutional restorer gives the untiled result (tests/test_photos.py checks the two agree). Peak memory
is one tile's activations plus the input and output images, which may be uint8 (1 byte a value instead of 4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recgen.restore.degrade import Observation

TILE = 512  # pixels (input side): large tiles waste less on margins; activations grow with the tile's area
OVERLAP = 32  # pixels of context around each tile where the caller does not say


def _float(t: torch.Tensor) -> torch.Tensor:
    return t.float().div(255) if t.dtype == torch.uint8 else t


def crop(obs: Observation, top: int, bottom: int, left: int, right: int) -> Observation:
    """The observation of one window (input coordinates); uint8 images become float in [0, 1]."""
    s = obs.scale if obs.task == "superres" else 1
    mask = None if obs.mask is None else _float(obs.mask[..., top * s:bottom * s, left * s:right * s])
    return Observation(obs.task, _float(obs.y[..., top:bottom, left:right]), mask, obs.sigma, obs.scale)


def tiled(fn: Callable[[Observation], torch.Tensor], obs: Observation, tile: int = TILE,
          overlap: int = OVERLAP, align: int = 1) -> torch.Tensor:
    """fn(observation) -> restored (N, C, H * s, W * s), applied tile by tile; s is the super-resolution scale.
    Each window starts on a multiple of `align`, so that a network with strided levels sees every tile on the
    same grid as the whole image. A uint8 input gives a uint8 output (rounded), a float input a float output."""
    n, c, h, w = obs.y.shape
    if h <= tile and w <= tile:
        out = fn(crop(obs, 0, h, 0, w))
        return (out * 255).round().clamp(0, 255).to(torch.uint8) if obs.y.dtype == torch.uint8 else out
    s = obs.scale if obs.task == "superres" else 1
    out = torch.empty((n, c, h * s, w * s), dtype=torch.uint8 if obs.y.dtype == torch.uint8 else torch.float32)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0) // align * align, max(left - overlap, 0) // align * align
            r = fn(crop(obs, t0, min(bottom + overlap, h), l0, min(right + overlap, w)))
            r = r[..., (top - t0) * s:(bottom - t0) * s, (left - l0) * s:(right - l0) * s]
            if out.dtype == torch.uint8:
                r = (r * 255).round().clamp(0, 255).to(torch.uint8)
            out[..., top * s:bottom * s, left * s:right * s] = r
    return out
