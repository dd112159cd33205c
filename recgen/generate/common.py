"""What the four generator families share: the task base class (conditioning of a batch, per-epoch sample grids),
pixel-range conversions and a sample-spread measure. Networks and training steps live in the family files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recgen.data import build_augment
from recgen.generate.condition import batch_condition, fit_text_head, phrase_table
from recgen.runs import Run
from recgen.train import TrainTask, seeded

MAX_GRIDS = 20  # per-epoch sample grids kept by a run at most
GRID_SEED = 1234  # the same noise every epoch, so successive grids show the model changing, not the noise


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range GAN and diffusion networks work in."""
    return x * 2 - 1


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C)."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    x = np.ascontiguousarray(x)
    # torch warns on read-only arrays (a decoded image file is one); .float() copies anyway
    return torch.from_numpy(x if x.flags.writeable else x.copy()).permute(0, 3, 1, 2).float().div(255)


def spread(x: torch.Tensor) -> float:
    """Mean pairwise L2 distance between images of a batch (N, C, H, W): how varied a set of samples is."""
    flat = x.flatten(1).float()
    d = torch.cdist(flat, flat)
    n = len(flat)
    return float(d.sum() / max(n * (n - 1), 1))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between Gaussian latents a, b (D,) at fractions t (T,) -> (T, D) (keeps the norm
    typical of the prior, unlike a straight line; Shoemake 1985, as used for GAN latents by White, arXiv 1609.04468)."""
    omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so


def grid_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels 0, 1, ..., K-1, 0, 1, ... so a grid with K columns holds one class per column."""
    return torch.arange(n) % max(num_classes, 1)


class GeneratorTask(TrainTask):
    """Base of the family tasks: holds the architecture, the options, validation images and, for text
    conditioning, the table of training-phrasing embeddings a batch draws from."""

    grid_n: int = 40  # images in the per-epoch sample grid

    def __init__(self, modules: dict[str, nn.Module], arch, cfg, val: tuple[torch.Tensor, torch.Tensor] | None,
                 classes: list[str], device: torch.device):
        super().__init__()
        self.modules, self.arch, self.cfg, self.val = modules, arch, cfg, val
        self.classes, self.device = classes, device
        self.phrases = phrase_table(classes, framed=True).to(device) if arch.cond == "text" else None  # (K, P, 384)
        if self.phrases is not None:
            fit_text_head(modules, self.phrases)  # before training; a resumed run's checkpoint then restores it
        self.augment = build_augment(cfg.augment)
        self._sums: dict[str, float] = {}
        self._steps = 0

    def tally(self, stats: dict[str, float]) -> None:
        """Add one training step's statistics to the sums that epoch_means reads."""
        for k, v in stats.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._steps += 1

    def epoch_means(self) -> dict[str, float]:
        """Means of the statistics tallied since the last call (empty when none were), then a fresh start."""
        means = {k: v / self._steps for k, v in self._sums.items()} if self._steps else {}
        self._sums, self._steps = {}, 0
        return means

    def condition(self, y: torch.Tensor, g: torch.Generator) -> torch.Tensor | None:
        return batch_condition(self.arch.cond, y, self.phrases, g)

    def grid_condition(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        labels = grid_labels(n, len(self.classes))
        if self.arch.cond == "none":
            return None, labels
        if self.arch.cond == "class":
            return labels.to(self.device), labels
        return self.phrases[labels.to(self.device), 0], labels  # phrasing 0 is the class name

    def sample(self, modules: dict[str, nn.Module], c, n: int, g: torch.Generator) -> torch.Tensor:
        """(n, C, H, W) in [0, 1]; each family implements it with its own sampling loop."""
        raise NotImplementedError

    def on_epoch_end(self, epoch: int, modules: dict[str, nn.Module], run: Run) -> None:
        # at most ~MAX_GRIDS grids per run (and always the last epoch's): on a 100-image subset (`recgen augment`)
        # 1,500 steps are 100+ epochs, and a diffusion grid per epoch would cost more than the training
        every = max(1, math.ceil(self.cfg.epochs / MAX_GRIDS))
        if (epoch + 1) % every and epoch + 1 < self.cfg.epochs:
            return
        c, labels = self.grid_condition(self.grid_n)
        for m in modules.values():
            m.eval()
        x = self.sample(modules, c, self.grid_n, seeded(GRID_SEED))
        for m in self.modules.values():
            m.train()
        cols = len(self.classes) if self.arch.cond != "none" and len(self.classes) <= 16 else 8
        titles = list(self.classes) if self.arch.cond != "none" and cols == len(self.classes) else None
        save_grid(to_uint8(x), run.plots / f"samples-epoch{epoch + 1:03d}.png", cols, titles)


def save_grid(images: np.ndarray, path: Path, cols: int = 8, col_titles: list[str] | None = None,
              scale: int = 2) -> Path:
    """uint8 images (N, H, W, C) tiled into one PNG (pixel-exact, nearest-neighbour enlarged `scale` times), with
    optional column titles. Milliseconds even for thousands of images, unlike one matplotlib axis per image."""
    from PIL import Image, ImageDraw

    from recgen.runs import atomic_write

    n, h, w, c = images.shape
    cols = max(1, min(cols, n))
    rows, gap = -(-n // cols), 2
    head = 12 if col_titles else 0
    canvas = np.full((head + rows * (h + gap) + gap, cols * (w + gap) + gap, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        top, left = head + gap + r * (h + gap), gap + k * (w + gap)
        canvas[top:top + h, left:left + w] = im
    pil = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    if col_titles:
        draw = ImageDraw.Draw(pil)
        for k, t in enumerate(col_titles[:cols]):
            draw.text(((gap + k * (w + gap)) * scale, 2), t[: max(1, (w + gap) * scale // 6)], fill=0)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    atomic_write(Path(path), buf.getvalue())
    return Path(path)


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> float:
    """Negative log-likelihood in nats per image -> bits per dimension."""
    return float(nll_nats) / (dims * math.log(2))
