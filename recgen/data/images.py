"""Reading users' image files: one image (read_image: size checked from the header before decoding, high bit
depths scaled, transparency composited over white) or many (files, folders and globs, with progress)."""

from __future__ import annotations

import contextlib
import glob
import os
import struct
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from recgen.data.dataset import pixels_uint8
from recgen.errors import RecgenError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# Images larger than this are refused as possible decompression bombs (PIL's own default warns at ~89M).
MAX_IMAGE_PIXELS = 40_000_000
PROGRESS_FROM = 200  # files: reading more shows progress (a bar on a terminal, else a line every few seconds)


class ImageTooLarge(RecgenError):
    """An image above the pixel budget: refused, never skipped as unreadable."""


# PIL's own bomb check warns from its default limit up; ours (from the header, before any pixel is decoded) is
# stricter, so its warning would only repeat our refusal. Set once, not per call: warning filters are
# process-wide and changing them per image is not thread-safe (the server decodes in threads).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
GREY_MODES = {"1", "L", "LA", "La", "I", "F"}
ALPHA_BACKGROUND = (255, 255, 255)  # what transparent pixels become (a white page); see read_image


def read_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Any PIL-readable image -> uint8 (H, W, C) with C = 1 (grey) or 3 (RGB).

    Width x height is read from the header and refused above `max_pixels` before any pixel is decoded (a small
    PNG can declare a huge canvas). High bit depths are scaled, not clipped: 16-bit grey (PIL mode I;16) maps to
    0-255 by v / 257, and 32-bit integer grey the same when its values exceed 255. Transparency (RGBA, LA, PA, or a
    palette / grey image with a transparent colour) is composited over ALPHA_BACKGROUND, white: the background
    garments and documents are photographed on, so a cut-out object shows on a clean page, never the colour that
    happens to lie under transparent pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageTooLarge(f"{path}: refused, image too large: {w}x{h} = {w * h:,} pixels, above the limit "
                                  f"of {max_pixels:,}")
            im.load()
            arr = _decode(ImageOps.exif_transpose(im), str(path))  # a camera's rotation flag applied
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{path}: refused, image too large ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as e:
        raise RecgenError(f"{path}: not a readable image ({e})") from None
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise RecgenError(f"{path}: the image is empty ({arr.shape[1]}x{arr.shape[0]} pixels)")
    return arr


def _decode(im: Image.Image, what: str) -> np.ndarray:
    """A loaded PIL image -> uint8 (H, W, 1) for grey modes, (H, W, 3) otherwise (see read_image)."""
    grey = im.mode in GREY_MODES or im.mode.startswith("I;16")
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im).astype(np.float64)
        if im.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)[..., None]
    if im.mode == "F":
        return pixels_uint8(np.asarray(im)[..., None], what)
    if im.has_transparency_data:
        page = Image.new("RGBA", im.size, ALPHA_BACKGROUND + (255,))
        im = Image.alpha_composite(page, im.convert("RGBA"))
    return np.asarray(im.convert("L"))[..., None] if grey else np.asarray(im.convert("RGB"))


def image_files(inputs: list[str], suffixes: set[str] = IMAGE_SUFFIXES) -> list[tuple[Path, bool]]:
    """Files, folders (searched recursively for `suffixes`) and globs -> (path, named) pairs, `named` meaning the
    user gave that very file. A folder without such files, or a pattern that matches nothing, is an error naming it."""
    if isinstance(inputs, (str, os.PathLike)):  # one path, not a list of one-letter paths
        inputs = [inputs]
    files: list[tuple[Path, bool]] = []
    for s in map(str, inputs):
        p = Path(s)
        if p.is_dir():
            found = [f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in suffixes]
            if not found:
                raise RecgenError(f"{s}: no images in this folder (looked for {', '.join(sorted(suffixes))})")
            files += [(f, False) for f in found]
        elif p.is_file():
            files.append((p, True))
        else:
            hits = [Path(f) for f in sorted(glob.glob(s, recursive=True)) if Path(f).is_file()]
            if not hits:
                raise RecgenError(f"{s}: no such file, folder or matching glob")
            files += [(f, False) for f in hits]
    if not files:
        raise RecgenError("no input images given")
    return files


Reader = Callable[[Path], list[tuple[str, np.ndarray]]]


def read_images(inputs: list[str], suffixes: set[str] = IMAGE_SUFFIXES,
                read: Reader | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Files, folders and globs (image_files) -> names and uint8 (H, W, C) images at their own size. `read` turns
    one file into (name, image) pairs (default: the image, named by its path). Unreadable files found in a folder
    or by a glob are skipped with a warning; an unreadable named file is an error."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    read = read or (lambda f: [(str(f), read_image(f))])
    names, images, bad = [], [], []
    files = image_files(inputs, suffixes)
    with reading_progress(len(files)) as progress:
        for k, (f, named) in enumerate(files):
            try:
                pairs = read(f)
            except ImageTooLarge:
                raise
            except RecgenError:
                if named:
                    raise
                bad.append(str(f))
                continue
            finally:
                progress.update(k + 1)
            names += [n for n, _ in pairs]
            images += [im for _, im in pairs]
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable file(s): {', '.join(bad[:3])}", stacklevel=2)
    if not images:
        raise RecgenError(f"no readable images in {', '.join(map(str, inputs[:3]))}")
    return names, images


def reading_progress(total: int, what: str = "reading images"):
    """Progress over `total` files (recgen.progress: a bar on a terminal, else a heading and a line every few
    seconds); a no-op below PROGRESS_FROM files, where reading takes no time worth showing."""
    if total < PROGRESS_FROM:
        return contextlib.nullcontext(_NoProgress())
    from recgen.progress import Progress

    return Progress(what, total, "files")


class _NoProgress:
    def update(self, done: float, info: str = "") -> None:
        pass
