"""Grad-CAM (arXiv 1610.02391) through captum's LayerGradCam, with heat-map overlays written as PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from recgen.classify.cnn import target_layer
from recgen.runs import atomic_write


def gradcam(model: nn.Module, x: torch.Tensor, targets: np.ndarray | list[int], layer: nn.Module | None = None,
            batch_size: int = 256) -> np.ndarray:
    """Class-activation maps (N, H, W) in [0, 1] for float images x (N, C, H, W) and one target class each."""
    model.eval()
    device = next(model.parameters()).device
    cam = LayerGradCam(model, layer or target_layer(model))
    out = []
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device).requires_grad_(True)
        a = cam.attribute(xb, target=targets[i:i + batch_size].to(device), relu_attributions=True)  # (B, 1, h, w)
        a = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
        a = a.detach().cpu()
        peak = a.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
        out.append((a / peak).numpy())
    return np.concatenate(out)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, scale: int = 8) -> np.ndarray:
    """uint8 image (H, W, C) + map (H, W) -> RGB uint8 overlay, enlarged `scale` times for viewing."""
    h, w = cam.shape
    big = (w * scale, h * scale)
    img = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    img = cv2.resize(img, big, interpolation=cv2.INTER_NEAREST)
    heat = cv2.applyColorMap(np.uint8(255 * cv2.resize(cam, big)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8((1 - alpha) * img + alpha * heat)


def beside(image: np.ndarray, cam: np.ndarray, scale: int = 8) -> np.ndarray:
    """The image as the model saw it, then its Grad-CAM overlay, side by side (RGB uint8, enlarged `scale` times):
    the overlay alone hides the detail the heat map is about."""
    h, w = cam.shape
    img = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    gap = np.full((h * scale, scale, 3), 255, np.uint8)
    return np.concatenate([cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST), gap,
                           overlay(image, cam, scale=scale)], axis=1)


def save_overlays(images: np.ndarray, cams: np.ndarray, names: list[str], out: Path) -> list[Path]:
    """One PNG per image: the input beside its Grad-CAM overlay."""
    out = Path(out)
    paths = []
    for i, (im, cam, name) in enumerate(zip(images, cams, names)):
        p = out / f"{i:04d}-{Path(name).stem[:40] or 'image'}-gradcam.png"
        ok, buf = cv2.imencode(".png", beside(im, cam)[..., ::-1])
        atomic_write(p, buf.tobytes())
        paths.append(p)
    return paths
