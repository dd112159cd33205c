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


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (N,) with the standard 11x11 Gaussian window (sigma 1.5), data range 1."""
    with torch.no_grad():
        return structural_similarity_index_measure(x.float().clamp(0, 1), ref.float(), data_range=1.0,
                                                   reduction="none")


def quality(x: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over a batch."""
    return {"psnr": round(float(psnr(x, ref).mean()), 3), "ssim": round(float(ssim(x, ref).mean()), 4)}
