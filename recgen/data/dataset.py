"""The one in-memory dataset type every task consumes: uint8 images (N, H, W, C), int64 labels, class names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from recgen.errors import RecgenError

if TYPE_CHECKING:  # torch loads on first use: listing datasets needs none of it
    import torch


@dataclass
class ImageSet:
    x: np.ndarray  # uint8 (N, H, W, C), C in {1, 3}
    y: np.ndarray  # int64 (N,), indices into `classes`
    classes: list[str]  # class names, carried to every report
    name: str = "dataset"  # what it was loaded from, for configs and reports
    split: str = "train"  # train | val | test
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.x.ndim == 3:
            self.x = self.x[..., None]
        if self.x.ndim != 4 or self.x.shape[-1] not in (1, 3):
            raise RecgenError(f"{self.name}: images must be (N, H, W[, C]) with 1 or 3 channels, got {self.x.shape}")
        if len(self.x) != len(self.y):
            raise RecgenError(f"{self.name}: {len(self.x)} images but {len(self.y)} labels")
        if len(self.x) == 0:
            raise RecgenError(f"{self.name}: the dataset is empty")
        if 0 in self.x.shape[1:3]:
            raise RecgenError(f"{self.name}: images of {self.x.shape[1]}x{self.x.shape[2]} pixels hold nothing")
        self.x = np.ascontiguousarray(self.x, dtype=np.uint8)
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.y.min() < 0 or self.y.max() >= len(self.classes):
            raise RecgenError(f"{self.name}: labels must lie in [0, {len(self.classes) - 1}]")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) as the networks see it."""
        n, h, w, c = self.x.shape
        return c, h, w

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, idx, split: str | None = None) -> ImageSet:
        return ImageSet(self.x[idx], self.y[idx], list(self.classes), self.name, split or self.split, dict(self.meta))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.num_classes)

    def fingerprint(self) -> str:
        """Short content hash: same images and labels -> same fingerprint, recorded in every run's config."""
        h = hashlib.sha256()
        h.update(str(self.x.shape).encode())
        h.update(self.x.tobytes())
        h.update(self.y.tobytes())
        return h.hexdigest()[:16]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images (N, C, H, W) in [0, 1] and int64 labels."""
        import torch

        x = torch.from_numpy(self.x).permute(0, 3, 1, 2).float().div_(255.0)
        return x.contiguous(), torch.from_numpy(self.y)

    def convert(self, size: int | tuple[int, int] | None = None, channels: int | None = None) -> ImageSet:
        """Resize to `size` (int -> square) and convert to `channels` (1 or 3)."""
        x = self.x
        if channels is not None and channels != x.shape[-1]:
            x = to_channels(x, channels)
        if size is not None:
            x = resize_batch(x, size)
        if x is self.x:
            return self
        return ImageSet(x, self.y, list(self.classes), self.name, self.split, dict(self.meta))


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> the requested channel count (luma for RGB -> gray, replication for gray -> RGB)."""
    if channels not in (1, 3):
        raise RecgenError(f"channels must be 1 or 3, got {channels}")
    c = x.shape[-1]
    if c == channels:
        return x
    if channels == 1:  # ITU-R BT.601 luma, as PIL's "L" mode
        g = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
        return np.clip(np.rint(g), 0, 255).astype(np.uint8)[..., None]
    return np.repeat(x, 3, axis=-1)


def resize_batch(x: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize (N, H, W, C) uint8 with area averaging when shrinking and bicubic when enlarging."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if x.shape[1:3] == (h, w):
        return x
    interp = cv2.INTER_AREA if h * w < x.shape[1] * x.shape[2] else cv2.INTER_CUBIC
    out = np.empty((len(x), h, w, x.shape[-1]), dtype=np.uint8)
    for i, im in enumerate(x):
        r = cv2.resize(im, (w, h), interpolation=interp)
        out[i] = r.reshape(h, w, -1)
    return out


def fit_images(images: list[np.ndarray], shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 images (H, W, C) of any size -> one uint8 array (N, H, W, C) at `shape` (C, H, W)."""
    c, h, w = shape
    return np.stack([resize_batch(to_channels(im[None], c), (h, w))[0] for im in images])


def train_val_split(ds: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Seeded, class-stratified split: every class keeps the same share in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise RecgenError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in range(ds.num_classes):
        idx = np.flatnonzero(ds.y == c)
        rng.shuffle(idx)
        val_idx.append(idx[: int(round(len(idx) * val_fraction))])
    val = np.sort(np.concatenate(val_idx))
    train = np.setdiff1d(np.arange(len(ds)), val)
    if len(train) == 0 or len(val) == 0:
        raise RecgenError(f"{ds.name}: too few images ({len(ds)}) to split off {val_fraction:.0%} for validation")
    return ds.subset(train, "train"), ds.subset(val, "val")


def limit_per_class(ds: ImageSet, n: int, seed: int) -> ImageSet:
    """At most n images of each class, chosen with `seed` (for low-data experiments and fast tests)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(ds.num_classes):
        idx = np.flatnonzero(ds.y == c)
        keep.append(rng.permutation(idx)[:n])
    return ds.subset(np.sort(np.concatenate(keep)))


def held_out(split: str, test, val, data: str):
    """The set an evaluation of `split` uses: the test set when asked for and present, else the validation split
    (for datasets without a test split). `test` and `val` may be any dataset type."""
    if split not in ("test", "val"):
        raise RecgenError(f"split must be test or val, got {split!r}")
    chosen = test if split == "test" and test is not None else val
    if chosen is None:
        what = "no validation split (val_fraction 0)" if split == "val" else "no test split and no validation split"
        raise RecgenError(f"{data}: {what} to evaluate on")
    return chosen


def image_batch(images, what: str = "images") -> np.ndarray:
    """An array handed to the Python API as images -> uint8 (N, H, W, C), C 1 or 3, N > 0; else a RecgenError
    naming what was expected. (N, H, W) is taken as grey; floats in [0, 1] are scaled to 0-255."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise RecgenError(f"{what} must be a numeric array (N, H, W) or (N, H, W, C) with C 1 or 3 and N > 0, got "
                          f"{x.dtype} {x.shape}")
    return pixels_uint8(x, what)


def pixels_uint8(x: np.ndarray, what: str = "images") -> np.ndarray:
    """Pixel values -> uint8: uint16 (16-bit images) is scaled by 255/65535 (v / 257), floats in [0, 1] by 255,
    other values clipped to 0-255 and rounded; NaN or infinite values and non-numeric arrays (strings) are refused,
    naming `what`. uint8 passes through."""
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.issubdtype(x.dtype, np.complexfloating):
        raise RecgenError(f"{what} must hold pixel numbers, got dtype {x.dtype}")
    if x.size == 0:
        return x.astype(np.uint8)
    if x.dtype == np.uint16:  # scaled, not clipped: clipping turns nearly every 16-bit pixel white
        return np.rint(x / 257.0).astype(np.uint8)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise RecgenError(f"{what} holds NaN or infinite pixel values")
    return np.clip(x * 255.0 if x.max() <= 1.0 else x, 0, 255).round().astype(np.uint8)
