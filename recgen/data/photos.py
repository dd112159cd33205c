"""Photographs at their own size: the `photos` dataset (the photographs scikit-image and scikit-learn ship, so it
works offline) and users' folders of photos, cut into random patches on the fly for training the photo restorers.

    train   the scikit-image photographs in TRAIN_PHOTOS (colour and grayscale: portraits, animals, objects,
            textures, documents, astronomy, microscopy)
    test    HELD_OUT: scikit-learn's china.jpg and flower.jpg plus scikit-image's coffee and camera, never trained
            on; the photo benchmark names them

A user folder (`--data path/to/folder`) holding images at its top level is read the same way, recursively, each
image at its own size; a `test/` subfolder, if present, is its held-out split (and is never trained on).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from recgen.data.dataset import ImageSet
from recgen.data.images import IMAGE_SUFFIXES, read_image, read_images
from recgen.errors import RecgenError

# File names in scikit-image's data folder (skimage.data reads the same files).
TRAIN_PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "coins.png", "brick.png", "grass.png", "gravel.png",
                "page.png", "text.png", "moon.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "cell.png",
                "motorcycle_left.png")
HELD_OUT = (("sklearn", "china.jpg"), ("sklearn", "flower.jpg"), ("skimage", "coffee.png"),
            ("skimage", "camera.png"))
GREY_SHARE = 0.2  # share of colour training patches turned grey, so one RGB restorer also serves grey photos
# Share of colour training patches made more saturated (chroma scaled by VIVID, clipped): the bundled colour photos
# are muted, and a restorer that never saw a channel clipped at 0 or 255 lifts it on vivid photos (flowers, signs)
VIVID_SHARE, VIVID = 0.3, (1.2, 2.5)
# Share of colour training patches whose channels are put in a random order: without it a restorer learns the
# bundled photos' colour balance (skin, fur, rockets) as a prior and tints photos of other colours (a red flower
# came out redder)
PERMUTE_SHARE = 0.5
# Share of patches cut larger and shrunk (`zoom` > 1): a photo taken at a lower resolution, or shrunk for the web,
# carries detail up to its last pixel, while the bundled photos are soft at pixel level. Shrinking by a factor
# drawn log-uniformly in [1, zoom] (area averaging, as a camera's sensor does) shows a restorer that sharper
# detail, and each photo at several scales (the scale augmentation of VDSR, arXiv 1511.04587)
ZOOM_SHARE = 0.5
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as PIL's convert("L")


def _bundled_dir(package: str) -> Path:
    if package == "sklearn":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "images"
    import skimage.data

    return Path(skimage.data.__file__).parent


def is_photo_data(data: str) -> bool:
    """`photos`, or a folder holding images at its top level (not class subfolders): read at each image's size."""
    if data == "photos":
        return True
    p = Path(data).expanduser()
    return p.is_dir() and any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())


def load_photos(data: str, split: str = "train") -> list[tuple[str, np.ndarray]]:
    """(name, uint8 (H, W, C)) at each photo's own size, C = 1 (grey) or 3 (RGB), EXIF orientation applied."""
    if split not in ("train", "test"):
        raise RecgenError(f"split must be 'train' or 'test', got {split!r}")
    if data == "photos":
        picks = HELD_OUT if split == "test" else [("skimage", f) for f in TRAIN_PHOTOS]
        out = []
        for package, name in picks:
            path = _bundled_dir(package) / name
            if not path.is_file():
                raise RecgenError(f"photos: {path} is missing (the {package} installation lacks its bundled images)")
            out.append((Path(name).stem, read_image(path)))
        return out
    root = Path(data).expanduser()
    if not root.is_dir():
        raise RecgenError(f"{data}: not a folder of photos")
    test = root / "test"
    if split == "test":
        if not test.is_dir():
            raise RecgenError(f"{root}: no test/ subfolder of held-out photos")
        names, images = read_images([str(test)])
    else:
        files = [str(f) for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                 and test not in f.parents]
        if not files:
            raise RecgenError(f"{root}: no training photos outside test/")
        names, images = read_images(files)
    return [(Path(n).stem, im) for n, im in zip(names, images)]


def photos_channels(photos: list[tuple[str, np.ndarray]]) -> int:
    return max(im.shape[-1] for _, im in photos)


def fingerprint(photos: list[tuple[str, np.ndarray]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, im in photos:
        h.update(f"{name}{im.shape}".encode())
        h.update(im.tobytes())
    return h.hexdigest()[:16]


class PatchSampler:
    """Random square patches from photos of any size: a photo drawn with probability proportional to the square
    root of its area (large scans do not crowd out small photos), a uniform position, one of the 8 flips and
    rotations, GREY_SHARE of colour patches turned grey, VIVID_SHARE of the others made more saturated and
    PERMUTE_SHARE of them given a random channel order; grey photos are repeated to `channels`. With zoom > 1,
    ZOOM_SHARE of the patches are cut up to `zoom` times larger and shrunk to the patch side."""

    def __init__(self, photos: list[tuple[str, np.ndarray]], patch: int, channels: int = 3,
                 grey_share: float = GREY_SHARE, vivid_share: float = VIVID_SHARE,
                 permute_share: float = PERMUTE_SHARE, zoom: float = 1.0):
        if zoom < 1:
            raise RecgenError(f"zoom must be at least 1 (1 = patches at the photos' own scale), got {zoom}")
        self.images = [im for _, im in photos if min(im.shape[:2]) >= patch]
        if not self.images:
            raise RecgenError(f"no photo is at least {patch}x{patch} pixels; pass a smaller --patch")
        self.patch, self.channels, self.grey_share, self.vivid_share = patch, channels, grey_share, vivid_share
        self.permute_share, self.zoom = permute_share, zoom
        area = np.array([im.shape[0] * im.shape[1] for im in self.images], np.float64)
        self.p = np.sqrt(area) / np.sqrt(area).sum()

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 patches (n, patch, patch, channels)."""
        p, c = self.patch, self.channels
        out = np.empty((n, p, p, c), np.uint8)
        for i, k in enumerate(rng.choice(len(self.images), n, p=self.p)):
            im = self.images[k]
            side = p
            if self.zoom > 1 and rng.random() < ZOOM_SHARE:
                side = min(int(round(p * np.exp(rng.uniform(0, np.log(self.zoom))))), *im.shape[:2])
            top, left = rng.integers(0, im.shape[0] - side + 1), rng.integers(0, im.shape[1] - side + 1)
            a = im[top:top + side, left:left + side]
            if side != p:
                a = cv2.resize(a, (p, p), interpolation=cv2.INTER_AREA).reshape(p, p, -1)
            a = np.rot90(a, int(rng.integers(4)))
            a = a[:, ::-1] if rng.integers(2) else a
            if a.shape[-1] == 3 and (c == 1 or rng.random() < self.grey_share):
                a = np.rint(a.astype(np.float32) @ LUMA).clip(0, 255).astype(np.uint8)[..., None]
            elif a.shape[-1] == 3 and rng.random() < self.vivid_share:
                f = a.astype(np.float32)
                luma = f @ LUMA
                a = np.rint(luma[..., None] + rng.uniform(*VIVID) * (f - luma[..., None])).clip(0, 255).astype(np.uint8)
            if a.shape[-1] == 3 and rng.random() < self.permute_share:
                a = a[..., rng.permutation(3)]
            out[i] = a if a.shape[-1] == c else np.repeat(a, c, -1) if c == 3 else a[..., :1]
        return out


def photo_set(data: str, split: str, size: int = 0, n: int = 256, seed: int = 0) -> ImageSet:
    """Patches as an ImageSet (one class, `photos`), so that commands built on fixed-size sets (`recgen data show`)
    also read photos; training draws fresh patches instead (PatchSampler)."""
    photos = load_photos(data, split)
    sampler = PatchSampler(photos, size or 96, photos_channels(photos), grey_share=0.0, vivid_share=0.0,
                           permute_share=0.0)
    x = sampler.draw(n, np.random.default_rng(seed))
    return ImageSet(x, np.zeros(n, np.int64), ["photo"], Path(data).name, split, {"source": data})
