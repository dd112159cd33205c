"""Restoration quality against ground truth, per image (torchmetrics): PSNR and SSIM on [0, 1] images.

PSNR of an exact restoration is infinite; it is capped at PSNR_MAX so means over images stay finite and an identity
restoration scores exactly PSNR_MAX. Means are over per-image scores, as restoration papers report them.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

PSNR_MAX = 100.0  # dB, the score of a pixel-exact restoration


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (N,) of x against ref, both (N, C, H, W) in [0, 1]."""
    x, ref = x.float().clamp(0, 1), ref.float()
    with torch.no_grad():
        v = peak_signal_noise_ratio(x, ref, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return torch.nan_to_num(v, nan=PSNR_MAX, posinf=PSNR_MAX).clamp(max=PSNR_MAX)


def psnr_y(x: torch.Tensor, ref: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """Per-image PSNR (N,) on the luma channel Y of ITU-R BT.601 YCbCr (16-235 range), `shave` border pixels left
    out: how super-resolution papers (VDSR, arXiv 1511.04587) report it. Grey images are their own luma."""
    def luma(t: torch.Tensor) -> torch.Tensor:
        t = t.float().clamp(0, 1)
        t = (16 + (65.481 * t[:, :1] + 128.553 * t[:, 1:2] + 24.966 * t[:, 2:]) if t.shape[1] == 3 else
             16 + 219 * t) / 255
        return t[..., shave:t.shape[-2] - shave, shave:t.shape[-1] - shave]

    return psnr(luma(x), luma(ref))


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (N,) with the standard 11x11 Gaussian window (sigma 1.5), data range 1."""
    with torch.no_grad():
        return structural_similarity_index_measure(x.float().clamp(0, 1), ref.float(), data_range=1.0,
                                                   reduction="none")


def quality(x: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over a batch."""
    return {"psnr": round(float(psnr(x, ref).mean()), 3), "ssim": round(float(ssim(x, ref).mean()), 4)}
