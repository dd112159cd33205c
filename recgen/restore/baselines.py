"""Classical baselines, run on the same observations as recgen's restorers (OpenCV, 8-bit images):

    inpaint   Telea's fast marching method (2004) and Navier-Stokes (Bertalmio et al. 2001), cv2.inpaint
    denoise   non-local means (Buades et al. 2005), cv2.fastNlMeansDenoising, filter strength h = h_factor * sigma;
              BM3D (Dabov et al. 2007, the `bm3d` package) with the known or estimated sigma, slow: files.py runs
              it only on images up to SLOW_PIXELS
    superres  bicubic interpolation, cv2.resize(INTER_CUBIC)
    jpeg, oldphoto  none beyond the input itself (the decoded JPEG, the aged photo)

plus `none`, the corrupted input itself (missing pixels black, low resolution enlarged by pixel replication): the
floor every method must beat.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from recgen.restore.degrade import Observation, add_noise

INPAINT_RADIUS = 3  # pixels around a missing one that cv2.inpaint looks at
NLM_H_FACTOR = 1.0  # default NLM strength h = factor * sigma (0-255 units); `tune_nlm` picks it on training images
NLM_TEMPLATE, NLM_SEARCH = 5, 13  # patch and search window sides for 28x28 images (OpenCV's defaults: 7, 21)
NLM_PHOTO_FROM = 64  # image side from which NLM uses OpenCV's default windows (7, 21), meant for photos
SLOW_PIXELS = 2 ** 19  # BM3D is far slower than the restorers: restore_files runs it only on images up to this


def _u8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (N, H, W, C)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _float(a: list[np.ndarray], c: int) -> torch.Tensor:
    arr = np.stack([im.reshape(im.shape[0], im.shape[1], c) for im in a])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255)


def _inpaint(obs: Observation, flag: int) -> torch.Tensor:
    ys, ms = _u8(obs.y), obs.mask[:, 0].cpu().numpy().astype(np.uint8)
    return _float([cv2.inpaint(y, m, INPAINT_RADIUS, flag) for y, m in zip(ys, ms)], obs.y.shape[1])


def telea(obs: Observation) -> torch.Tensor:
    return _inpaint(obs, cv2.INPAINT_TELEA)


def navier_stokes(obs: Observation) -> torch.Tensor:
    return _inpaint(obs, cv2.INPAINT_NS)


def nlm(obs: Observation, h_factor: float = NLM_H_FACTOR) -> torch.Tensor:
    c = obs.y.shape[1]
    t, w = (7, 21) if min(obs.y.shape[-2:]) >= NLM_PHOTO_FROM else (NLM_TEMPLATE, NLM_SEARCH)
    out = []
    for y, s in zip(_u8(obs.y), obs.sigma.tolist()):
        h = max(h_factor * s * 255, 1e-3)
        if c == 1:
            out.append(cv2.fastNlMeansDenoising(y, None, h, t, w))
        else:
            out.append(cv2.fastNlMeansDenoisingColored(y, None, h, h, t, w))
    return _float(out, c)


def bm3d(obs: Observation) -> torch.Tensor:
    """BM3D with each image's sigma (bm3d_rgb in its opponent colour space for RGB); float64 inside."""
    import bm3d as lib

    out = []
    for y, s in zip(obs.y.permute(0, 2, 3, 1).cpu().double().numpy(), obs.sigma.tolist()):
        s = max(float(s), 1e-4)
        if y.shape[-1] == 3 and not (y == y[..., :1]).all():
            out.append(lib.bm3d_rgb(y, s))
        else:  # grey, or a grey photo as three equal channels (bm3d_rgb's colour transform gives NaN there)
            out.append(np.repeat(lib.bm3d(y[..., 0], s)[..., None], y.shape[-1], -1))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().clamp(0, 1).to(obs.y.device)


def bicubic(obs: Observation) -> torch.Tensor:
    n, c, h, w = obs.out_shape
    return _float([cv2.resize(y, (w, h), interpolation=cv2.INTER_CUBIC) for y in _u8(obs.y)], c)


def none(obs: Observation) -> torch.Tensor:
    """Do nothing: the corrupted input as it is (low resolution enlarged by pixel replication)."""
    return F.interpolate(obs.y, scale_factor=obs.scale, mode="nearest") if obs.scale > 1 else obs.y.clone()


BASELINES: dict[str, dict[str, Callable[[Observation], torch.Tensor]]] = {
    "inpaint": {"telea": telea, "navier-stokes": navier_stokes},
    "denoise": {"nlm": nlm},
    "superres": {"bicubic": bicubic},
    "jpeg": {},
    "oldphoto": {},
}
SLOW_BASELINES: dict[str, dict[str, Callable[[Observation], torch.Tensor]]] = {"denoise": {"bm3d": bm3d}}


def tune_nlm(clean: torch.Tensor, sigma: float, seed: int = 0,
             factors: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0)) -> float:
    """The NLM strength factor with the best mean PSNR on `clean` images (training images, never the test split)
    noised at `sigma`: the baseline gets its best setting, not a guess."""
    from recgen.restore.metrics import psnr

    y = add_noise(clean, sigma, torch.Generator().manual_seed(seed))
    obs = Observation("denoise", y, sigma=torch.full((len(y),), float(sigma)))
    scores = {f: float(psnr(nlm(obs, f), clean).mean()) for f in factors}
    return max(scores, key=scores.get)
