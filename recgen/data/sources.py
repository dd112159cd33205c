"""Readers for every dataset format recgen accepts, and the named-dataset registry.

Formats: IDX (MNIST / Fashion-MNIST, optionally gzipped), CIFAR-10 python batches, .npz with `x`/`y`, image folders
(one subfolder per class), and scikit-learn's bundled 8x8 digits. Nothing here unpickles: CIFAR batches are read
with a restricted unpickler that only builds plain containers and numpy arrays.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from recgen.data.dataset import ImageSet, pixels_uint8
from recgen.data.images import (  # noqa: F401 (re-exported: callers and tests read them from here)
    IMAGE_SUFFIXES,
    MAX_IMAGE_PIXELS,
    PROGRESS_FROM,
    ImageTooLarge,
    image_files,
    read_image,
    read_images,
    reading_progress,
)
from recgen.errors import RecgenError

FASHION_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SYSTEM_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_DIR = "data"  # where `recgen data download` puts datasets by default, relative to the working folder
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MAX_IDX_BYTES = MAX_ARRAY_BYTES = 2_000_000_000  # the most one IDX file or .npz array may declare
# Class names are built for every index up to the largest label: one label of 10^9 would build 10^9 names.
MAX_CLASSES = 100_000


NAMED = {
    "fashion-mnist": "Fashion-MNIST (Zalando, 70k 28x28 grayscale, 10 classes); IDX files",
    "digits": "scikit-learn's bundled 8x8 handwritten digits (1797 images), resized to 28x28",
    "photos": "the photographs scikit-image and scikit-learn bundle, at their own sizes (recgen.data.photos)",
}


# ---------------------------------------------------------------------------------------------------------- IDX
def read_idx(path: Path) -> np.ndarray:
    """Read an IDX array (optionally .gz), checking the header against the payload size before allocating."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise RecgenError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
            ndim = head[3]
            dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            n = math.prod(dims)  # Python integers: four dimensions of 2^16 must not wrap around to 0
            if n > MAX_IDX_BYTES:
                raise RecgenError(f"{path}: header declares {n} bytes, refusing (limit {MAX_IDX_BYTES})")
            if opener is open and n != os.fstat(f.fileno()).st_size - f.tell():
                held = os.fstat(f.fileno()).st_size - f.tell()
                raise RecgenError(f"{path}: IDX header declares {dims} = {n} bytes but the file holds {held}")
            data = f.read(n + 1)  # read at most one byte more than declared: bounded even for a gzip bomb
    except (OSError, EOFError, struct.error, gzip.BadGzipFile, zlib.error) as e:
        raise RecgenError(f"{path}: unreadable IDX file ({e})") from None
    if len(data) != n:
        raise RecgenError(f"{path}: IDX header declares {n} bytes but the file holds {len(data)} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims).copy()


def class_names(y: np.ndarray, where) -> list[str]:
    """Names "0" .. "K-1" for integer labels y, refusing negative labels or more than MAX_CLASSES classes."""
    if len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise RecgenError(f"{where}: labels must lie in [0, {MAX_CLASSES}), found {y.min()} to {y.max()}")
    return [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]


def find_idx_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_dir(directory: Path, split: str, classes: list[str] | None, name: str) -> ImageSet:
    img_stem, lab_stem = IDX_FILES["test" if split == "test" else "train"]
    img, lab = find_idx_file(directory, img_stem), find_idx_file(directory, lab_stem)
    if img is None or lab is None:
        raise RecgenError(f"{directory}: no {img_stem}[.gz] / {lab_stem}[.gz] pair found")
    x, y = read_idx(img), read_idx(lab)
    if x.ndim != 3 or y.ndim != 1:
        raise RecgenError(f"{img}: expected images (N, H, W) and labels (N,), got {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise RecgenError(f"{directory}: {len(x)} images but {len(y)} labels")
    classes = classes or class_names(y, lab)
    return ImageSet(x, y.astype(np.int64), classes, name, split, {"source": str(directory)})


def fashion_mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where Fashion-MNIST lives: --data-dir, then $RECGEN_DATA, then ./data (where `recgen data download` puts
    it), then Debian's dataset-fashion-mnist package."""
    candidates = []
    for base in (data_dir, os.environ.get("RECGEN_DATA"), DOWNLOAD_DIR):
        if base:
            candidates += [Path(base) / "fashion-mnist", Path(base)]
    candidates.append(SYSTEM_FASHION_DIR)
    for c in candidates:
        if find_idx_file(c, IDX_FILES["train"][0]) is not None:
            return c
    raise RecgenError(
        "fashion-mnist: files not found in " + ", ".join(str(c) for c in candidates)
        + " (install Debian's dataset-fashion-mnist, or `recgen data download fashion-mnist --data-dir DIR`)")


# --------------------------------------------------------------------------------------------------- CIFAR-10
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10 batches are pickles of dicts holding numpy arrays and lists. Allow exactly the globals needed to
    rebuild numpy arrays; anything else (a code-executing payload) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
        if not isinstance(d, dict):
            raise TypeError(f"expected a dict with b'data' and b'labels', found {type(d).__name__}")
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d.get(b"labels", d.get(b"fine_labels")), dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError,
            OverflowError) as e:
        raise RecgenError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise RecgenError(f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar_dir(directory: Path, split: str, name: str) -> ImageSet:
    files = [directory / "test_batch"] if split == "test" else sorted(directory.glob("data_batch_*"))
    files = [f for f in files if f.is_file()]
    if not files:
        raise RecgenError(f"{directory}: no CIFAR-10 {'test_batch' if split == 'test' else 'data_batch_*'} files")
    parts = [_read_cifar_batch(f) for f in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    classes = CIFAR10_CLASSES if 0 <= y.min() and y.max() < 10 else class_names(y, directory)
    meta = directory / "batches.meta"
    if meta.is_file():  # the real archive names its classes there
        try:
            with open(meta, "rb") as f:
                names = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()[b"label_names"]
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
            raise RecgenError(f"{meta}: unreadable CIFAR metadata ({e})") from None
    return ImageSet(x, y, classes, name, split, {"source": str(directory)})


# ------------------------------------------------------------------------------------------------------- npz
def read_npz(path: Path, names: tuple[str, ...], required: int, need: str) -> dict[str, np.ndarray]:
    """The arrays `names` that .npz `path` holds (optional ones left out when absent), never unpickling; the first
    `required` names must be there, else the error says the file must hold `need`. Each member's .npy header is
    checked against the bytes the member holds and against MAX_ARRAY_BYTES before anything is allocated: a header
    may claim any shape."""
    try:
        if not zipfile.is_zipfile(path):
            raise RecgenError(f"{path}: unreadable .npz (not a zip archive of .npy arrays)")
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if not set(names[:required]) <= set(members):
                raise RecgenError(f"{path}: .npz must hold {need}; found {sorted(members)}")
            for name in names:
                if name in members:
                    _check_npy_header(path, zf, members[name])
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in names if name in members}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise RecgenError(f"{path}: unreadable .npz ({e})") from None


def _check_npy_header(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    from numpy.lib import format as npy

    name = info.filename[:-4]
    with zf.open(info) as f:
        version = npy.read_magic(f)
        readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in readers:
            raise RecgenError(f"{path}: array {name!r} has .npy format version {version}, expected 1.0 or 2.0")
        shape, _, dtype = readers[version](f)
        held = info.file_size - f.tell()
    if dtype.hasobject:
        raise RecgenError(f"{path}: array {name!r} holds Python objects, which are never unpickled")
    n = math.prod(shape) * dtype.itemsize
    if n > MAX_ARRAY_BYTES:
        raise RecgenError(f"{path}: array {name!r} declares {shape} {dtype} = {n:,} bytes, refusing (limit "
                          f"{MAX_ARRAY_BYTES:,})")
    if n != held:
        raise RecgenError(f"{path}: array {name!r} declares {shape} {dtype} = {n:,} bytes but holds {held:,}")


def load_npz(path: Path, name: str, split: str) -> ImageSet:
    z = read_npz(path, ("x", "y", "classes"), 2, "arrays 'x' (images) and 'y' (labels)")
    x, y = z["x"], z["y"]
    classes = [str(c) for c in np.ravel(z["classes"])] if "classes" in z else None
    if x.ndim not in (3, 4) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise RecgenError(f"{path}: 'x' must be numeric images shaped (N, H, W) or (N, H, W, C), got {x.dtype} "
                          f"{x.shape}")
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)  # accept (N, C, H, W) too
    if len(x) == 0:
        raise RecgenError(f"{path}: the dataset is empty ('x' is {x.shape})")
    x = pixels_uint8(x, f"{path}: 'x'")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    whole = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all())
    if y.ndim != 1 or not whole:
        raise RecgenError(f"{path}: 'y' must be one integer class index per image, shape (N,); got {y.dtype} "
                          f"{y.shape}")
    y = y.astype(np.int64)
    if len(x) != len(y):
        raise RecgenError(f"{path}: {len(x)} images in 'x' but {len(y)} labels in 'y'")
    if len(y) == 0:
        raise RecgenError(f"{path}: the dataset is empty")
    if y.min() < 0 or (classes and y.max() >= len(classes)):
        top = f" and below {len(classes)} (the names in 'classes')" if classes else ""
        raise RecgenError(f"{path}: labels in 'y' must be >= 0{top}; found {y.min()} to {y.max()}")
    classes = classes or class_names(y, path)
    return ImageSet(x, y, classes, name, split, {"source": str(path)})


# ------------------------------------------------------------------------------------------------ image folder
def load_image_folder(root: Path, name: str, size: int | tuple[int, int] | None, channels: int | None) -> ImageSet:
    from recgen.data.dataset import resize_batch, to_channels

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise RecgenError(f"{root}: an image folder needs one subfolder per class; found none")
    xs, ys, bad = [], [], []
    h, w = (size, size) if isinstance(size, int) else (size or (None, None))
    files = [(label, f) for label, d in enumerate(class_dirs) for f in sorted(d.rglob("*"))
             if f.is_file() and not f.name.startswith(".")]
    with reading_progress(len(files)) as progress:
        for k, (label, f) in enumerate(files):
            progress.update(k + 1)
            try:
                im = read_image(f)
            except ImageTooLarge:
                raise
            except RecgenError:
                bad.append(f)
                continue
            if channels is not None:
                im = to_channels(im[None], channels)[0]
            if h is None:  # no size given: the first image's size is the dataset's
                h, w = im.shape[:2]
            xs.append(resize_batch(im[None], (h, w))[0])
            ys.append(label)
    if bad:
        shown = ", ".join(str(b) for b in bad[:3])
        warnings.warn(f"{root}: skipped {len(bad)} unreadable file(s): {shown}{' ...' if len(bad) > 3 else ''}",
                      stacklevel=2)
    if not xs:
        raise RecgenError(f"{root}: no readable images ({len(bad)} unreadable file(s))")
    seen = set(ys)
    empty = [d.name for label, d in enumerate(class_dirs) if label not in seen]
    if empty:  # a class the model would be asked to know without one example
        raise RecgenError(f"{root}: class folder(s) with no readable images: {', '.join(empty[:5])}; fill or remove "
                          "them")
    c = max(x.shape[-1] for x in xs)
    xs = [to_channels(x[None], c)[0] for x in xs]
    return ImageSet(np.stack(xs), np.array(ys), [d.name for d in class_dirs], name, "train", {"source": str(root)})


# ------------------------------------------------------------------------------------------------------ digits
def load_digits(split: str) -> ImageSet:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)[..., None]
    # sklearn ships one pool: a fixed, seeded 80/20 split gives digits a test set of its own.
    idx = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    idx = idx[cut:] if split == "test" else idx[:cut]
    return ImageSet(x[idx], d.target[idx], [str(i) for i in range(10)], "digits", split).convert(size=28)


# ---------------------------------------------------------------------------------------------------- dispatch
def load_dataset(data: str, split: str = "train", data_dir: str | None = None,
                 size: int | tuple[int, int] | None = None, channels: int | None = None) -> ImageSet:
    """Load a named dataset or a path (IDX folder, CIFAR folder, .npz, image folder).

    split: "train" or "test". Image folders with train/ and test/ subfolders use them; a folder without them
    has no test split and callers fall back to the validation split.
    """
    if split not in ("train", "test"):
        raise RecgenError(f"split must be 'train' or 'test', got {split!r}")
    if data == "fashion-mnist":
        ds = load_idx_dir(fashion_mnist_dir(data_dir), split, FASHION_CLASSES, "fashion-mnist")
    elif data == "digits":
        ds = load_digits(split)
    elif data == "photos":  # photos keep their sizes; as a fixed-size set they are patches
        from recgen.data.photos import photo_set

        ds = photo_set(data, split, size if isinstance(size, int) else 0)
    else:
        path = Path(data).expanduser()
        if not path.exists():
            from difflib import get_close_matches

            near = get_close_matches(data, list(NAMED), n=2)
            hint = f" Did you mean {' or '.join(near)}?" if near else f" Named datasets: {', '.join(NAMED)}."
            raise RecgenError(f"unknown dataset {data!r}: not a named dataset and no such path.{hint}")
        ds = _load_path(path, split, size, channels)
    return ds.convert(size=size, channels=channels)


def has_test_split(data: str) -> bool:
    if data in NAMED:
        return True
    path = Path(data)
    if path.suffix == ".npz":
        return path.with_name(path.stem + "-test.npz").is_file()
    if path.is_dir():
        return ((path / "test").is_dir() or (path / "test_batch").is_file()
                or find_idx_file(path, IDX_FILES["test"][0]) is not None)
    return False


def _load_path(path: Path, split: str, size, channels) -> ImageSet:
    name = path.name
    if path.is_file():
        if path.suffix != ".npz":
            raise RecgenError(f"{path}: a dataset file must be .npz with arrays 'x' and 'y'")
        if split == "test":
            test = path.with_name(path.stem + "-test.npz")
            if not test.is_file():
                raise RecgenError(f"{path}: no test split ({test.name} not found)")
            return load_npz(test, name, "test")
        return load_npz(path, name, "train")
    if (path / "data_batch_1").is_file() or (path / "test_batch").is_file():
        return load_cifar_dir(path, split, name)
    if find_idx_file(path, IDX_FILES["train"][0]) or find_idx_file(path, IDX_FILES["test"][0]):
        return load_idx_dir(path, split, None, name)
    if (path / "train").is_dir():
        sub = path / ("test" if split == "test" else "train")
        if not sub.is_dir():
            raise RecgenError(f"{path}: no {split}/ subfolder")
        ds = load_image_folder(sub, name, size, channels)
        ds.split = split
        return ds
    if split == "test":
        raise RecgenError(f"{path}: no test split (add train/ and test/ subfolders)")
    return load_image_folder(path, name, size, channels)
