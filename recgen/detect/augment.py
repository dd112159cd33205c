"""Augmentations that move boxes with their pixels, drawn from an explicit generator (reproducible from the step).

    x, targets = augment(x, targets, g, flip=0.5, scale=0.15, translate=0.1)

x: float (B, C, S, S) in [0, 1]; targets: (B, M, 5) = (x1, y1, x2, y2, class) in pixels with -1 rows as padding.
A box pushed partly out of the image is clipped; one that keeps less than `min_visible` of its area is dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, targets: torch.Tensor, g: torch.Generator, flip: float = 0.5, scale: float = 0.0,
            translate: float = 0.0, min_visible: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    b, _, h, w = x.shape
    t = targets.clone()
    valid = t[..., 4] >= 0
    # horizontal flip: x -> w - x, left and right edges swap
    m = torch.rand(b, generator=g) < flip
    if m.any():
        md = m.to(x.device)
        x = torch.where(md.view(b, 1, 1, 1), x.flip(-1), x)
        fl = md.view(b, 1) & valid
        x1, x2 = t[..., 0].clone(), t[..., 2].clone()
        t[..., 0] = torch.where(fl, w - x2, x1)
        t[..., 2] = torch.where(fl, w - x1, x2)
    if scale or translate:
        # p_out = s * (p_in - c) + c + shift about the image centre c, the same map for pixels and box corners
        s = (torch.rand(b, generator=g) * 2 - 1) * scale + 1
        # whole-pixel shifts: without zoom, resampling then only moves pixels, so boxes stay exactly tight
        shift = ((torch.rand(b, 2, generator=g) * 2 - 1) * translate * torch.tensor([w, h])).round()
        s, shift = s.to(x.device), shift.to(x.device)
        # affine_grid maps output to input in normalised coordinates (align_corners=False: edges at -1, 1)
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
        theta[:, 0, 2] = -shift[:, 0] / s * (2 / w)
        theta[:, 1, 2] = -shift[:, 1] / s * (2 / h)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        c = torch.tensor([w / 2, h / 2, w / 2, h / 2], device=x.device)
        sh = shift.repeat(1, 2)  # (B, 4)
        moved = (t[..., :4] - c) * s.view(b, 1, 1) + c + sh.view(b, 1, 4)
        lim = torch.tensor([w, h, w, h], device=x.device, dtype=moved.dtype)
        clipped = torch.minimum(moved.clamp_min(0), lim)
        area = lambda bx: (bx[..., 2] - bx[..., 0]).clamp_min(0) * (bx[..., 3] - bx[..., 1]).clamp_min(0)  # noqa: E731
        keep = valid & (area(clipped) >= min_visible * area(moved).clamp_min(1e-6))
        t[..., :4] = torch.where(valid[..., None], clipped, t[..., :4])
        t[~keep] = -1.0
    return x, t
