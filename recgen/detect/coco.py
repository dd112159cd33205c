"""Detection datasets in memory (DetectionSet) and on disk (COCO JSON + image files).

A DetectionSet holds images letterboxed to one square size, so the training loop can batch them as one tensor, and
per-image boxes in those pixels; `scales` maps them back to the original files. Reading a user's COCO file checks
every image and annotation: problems are collected into one report and either refused (the default: a RecgenError
naming them) or skipped with a warning, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from recgen.data import read_image, to_channels
from recgen.detect.boxes import letterbox
from recgen.errors import RecgenError
from recgen.runs import atomic_write

BAD_ANNOTATIONS = ("refuse", "skip")
EDGE_TOLERANCE = 1.0  # pixels a box may overhang its image (rounding in other tools' exports) before it is bad


@dataclass
class DetectionSet:
    images: np.ndarray  # uint8 (N, S, S, C), letterboxed to one size
    boxes: list[np.ndarray]  # per image float32 (n_i, 4) xyxy in the letterboxed pixels
    labels: list[np.ndarray]  # per image int64 (n_i,), indices into `classes`
    classes: list[str]  # category names, in the order of the detector's outputs
    name: str = "scenes"  # what it was built or read from
    split: str = "train"  # train | val | test
    scales: np.ndarray | None = None  # (N,) letterbox scale per image (stored box = original box * scale)
    files: list[str] = field(default_factory=list)  # source file of each image ("" for in-memory scenes)
    category_ids: list[int] = field(default_factory=list)  # COCO category id of each class (default 1..K)

    def __post_init__(self):
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[1] != self.images.shape[2]:
            raise RecgenError(f"{self.name}: images must be (N, S, S, C), got {self.images.shape}")
        if len(self.boxes) != n or len(self.labels) != n:
            raise RecgenError(f"{self.name}: {n} images but {len(self.boxes)} box lists")
        self.boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in self.boxes]
        self.labels = [np.asarray(lab, np.int64).reshape(-1) for lab in self.labels]
        self.scales = np.ones(n, np.float32) if self.scales is None else np.asarray(self.scales, np.float32)
        self.files = list(self.files) or [""] * n
        self.category_ids = list(self.category_ids) or list(range(1, len(self.classes) + 1))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[1]

    @property
    def channels(self) -> int:
        return self.images.shape[-1]

    @property
    def num_objects(self) -> int:
        return sum(len(b) for b in self.boxes)

    def subset(self, idx, split: str | None = None) -> DetectionSet:
        idx = np.asarray(idx)
        return DetectionSet(self.images[idx], [self.boxes[i] for i in idx], [self.labels[i] for i in idx],
                            list(self.classes), self.name, split or self.split, self.scales[idx],
                            [self.files[i] for i in idx], list(self.category_ids))

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(str(self.images.shape).encode())
        h.update(self.images.tobytes())
        for b, lab in zip(self.boxes, self.labels):
            h.update(b.tobytes())
            h.update(lab.tobytes())
        return h.hexdigest()[:16]

    def tensors(self, max_boxes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, S, S) and float targets (N, M, 5) = (x1, y1, x2, y2, class), padded with -1: fixed
        shapes, so the training loop indexes them per batch like any other data."""
        m = max(1, max_boxes or max((len(b) for b in self.boxes), default=1))
        t = torch.full((len(self), m, 5), -1.0)
        for i, (b, lab) in enumerate(zip(self.boxes, self.labels)):
            k = min(len(b), m)
            t[i, :k, :4] = torch.from_numpy(b[:k])
            t[i, :k, 4] = torch.from_numpy(lab[:k]).float()
        return torch.from_numpy(self.images).permute(0, 3, 1, 2).contiguous(), t

    def to_coco(self) -> dict:
        """Ground truth as a COCO dict, in the stored (letterboxed) pixels; image ids are positions 1..N."""
        images, anns = [], []
        for i, (b, lab) in enumerate(zip(self.boxes, self.labels)):
            images.append({"id": i + 1, "file_name": self.files[i] or f"{i:06d}.png", "width": self.size,
                           "height": self.size})
            for box, c in zip(b, lab):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": self.category_ids[c],
                             "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": 0})
        cats = [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.classes)]
        return {"images": images, "annotations": anns, "categories": cats}


def write_coco(ds: DetectionSet, root: str | Path, split: str | None = None) -> Path:
    """Write the images as PNG under root/<split>/ and the annotations as root/<split>.json; returns the JSON path.
    Boxes are written in the stored pixels (scenes are not letterboxed, so these are the true ones)."""
    root, split = Path(root), split or ds.split
    doc = ds.to_coco()
    for i, img in enumerate(doc["images"]):
        rel = f"{split}/{i:06d}.png"
        ok, buf = cv2.imencode(".png", ds.images[i] if ds.channels == 1 else ds.images[i][..., ::-1])
        atomic_write(root / rel, buf.tobytes())
        img["file_name"] = rel
    doc["info"] = {"description": f"recgen {ds.name} ({split})"}
    atomic_write(root / f"{split}.json", json.dumps(doc))
    return root / f"{split}.json"


# ---------------------------------------------------------------------------------------------------- reading
@dataclass
class CocoReport:
    """What reading a COCO file found wrong; `problems` counts each kind, `examples` shows the first of each."""

    source: str
    images: int = 0
    annotations: int = 0
    kept_images: int = 0
    kept_annotations: int = 0
    problems: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        self.problems[kind] += 1
        self.examples.setdefault(kind, example)

    def summary(self) -> str:
        parts = [f"{n} {kind} (e.g. {self.examples[kind]})" for kind, n in self.problems.items()]
        return f"{self.source}: {sum(self.problems.values())} bad entries: " + "; ".join(parts)

    def as_dict(self) -> dict:
        return {"source": self.source, "images": self.images, "annotations": self.annotations,
                "kept_images": self.kept_images, "kept_annotations": self.kept_annotations,
                "problems": dict(self.problems), "examples": self.examples}


def _number_list(v, n: int) -> list[float] | None:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v):
        return None
    return [float(x) for x in v]


def read_coco(path: str | Path, size: int, channels: int | None = None, image_root: str | Path | None = None,
              bad: str = "refuse", split: str = "train") -> tuple[DetectionSet, CocoReport]:
    """Read a COCO detection file. Images are looked up relative to `image_root` (default: the JSON's folder) and
    letterboxed to size x size. Bad entries (unreadable or missing images, boxes outside their image or empty,
    unknown image or category ids, malformed fields) are collected into the report; bad="refuse" raises one
    RecgenError naming them, bad="skip" warns and keeps the rest. A file that is not COCO at all is refused."""
    path = Path(path)
    if bad not in BAD_ANNOTATIONS:
        raise RecgenError(f"bad_annotations must be refuse or skip, got {bad!r}")
    doc = _read_document(path)
    rep = CocoReport(str(path), len(doc["images"]), len(doc["annotations"]))
    cats = _categories(doc, path)
    cat_ids = sorted(cats)
    entries = _read_images(doc, Path(image_root) if image_root else path.parent, rep)
    _add_boxes(doc, entries, {cid: i for i, cid in enumerate(cat_ids)}, rep)
    rep.kept_images = len(entries)
    if rep.problems and bad == "refuse":
        raise RecgenError(rep.summary() + ". Fix them, or pass --bad-annotations skip to use the rest")
    if rep.problems:
        warnings.warn(rep.summary() + f"; skipped, kept {rep.kept_images} images and {rep.kept_annotations} boxes",
                      stacklevel=2)
    if not entries:
        raise RecgenError(f"{path}: no usable images")
    ch = channels or max(e["image"].shape[-1] for e in entries.values())
    images, boxes, labels, scales, files = [], [], [], [], []
    for e in entries.values():
        img, s = letterbox(to_channels(e["image"][None], ch)[0], size)
        images.append(img)
        boxes.append(np.array(e["boxes"], np.float32).reshape(-1, 4) * s)
        labels.append(np.array(e["labels"], np.int64))
        scales.append(s)
        files.append(e["file"])
    ds = DetectionSet(np.stack(images), boxes, labels, [cats[c] for c in cat_ids], path.stem, split,
                      np.array(scales), files, cat_ids)
    return ds, rep


def _read_document(path: Path) -> dict:
    """The JSON document, refused in one line unless it has COCO's three lists."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecgenError(f"{path}: no such annotation file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecgenError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                     "categories")):
        raise RecgenError(f"{path}: not a COCO detection file (needs lists 'images', 'annotations', 'categories')")
    return doc


def _categories(doc: dict, path: Path) -> dict[int, str]:
    """Category id -> name; a bad category is refused whatever --bad-annotations says (no class list without it)."""
    cats: dict[int, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "name" not in c:
            raise RecgenError(f"{path}: every category needs an integer 'id' and a 'name' (got {str(c)[:80]})")
        if c["id"] in cats:
            raise RecgenError(f"{path}: category id {c['id']} appears twice")
        cats[c["id"]] = str(c["name"])
    if not cats:
        raise RecgenError(f"{path}: no categories")
    return cats


def _read_images(doc: dict, root: Path, rep: CocoReport) -> dict[int, dict]:
    """Image id -> {"image": array, "file": str, "boxes": [], "labels": []} for every readable image entry."""
    entries: dict[int, dict] = {}
    for im in doc["images"]:
        iid = im.get("id") if isinstance(im, dict) else None
        name = im.get("file_name") if isinstance(im, dict) else None
        if not isinstance(iid, int) or not isinstance(name, str):
            rep.add("malformed image entries", str(im)[:60])
            continue
        if iid in entries:
            rep.add("duplicate image ids", f"id {iid}")
            continue
        file = root / name
        if not file.is_file():
            rep.add("missing image files", f"{name} (image {iid})")
            continue
        try:
            arr = read_image(file)
        except RecgenError as e:
            rep.add("unreadable image files", f"{name}: {str(e).split(': ', 1)[-1][:60]}")
            continue
        entries[iid] = {"image": arr, "file": name, "boxes": [], "labels": []}
    return entries


def _add_boxes(doc: dict, entries: dict[int, dict], cat_index: dict[int, int], rep: CocoReport) -> None:
    """Each good annotation's box (x1, y1, x2, y2 in its image's pixels) and class index onto its image entry."""
    # ids are looked up in dicts and sets: anything but an integer (a list in a hand-edited file) is malformed
    listed = {im.get("id") for im in doc["images"] if isinstance(im, dict) and isinstance(im.get("id"), int)}
    for a in doc["annotations"]:
        if not isinstance(a, dict):
            rep.add("malformed annotations", str(a)[:60])
            continue
        aid = a.get("id", "?")
        bbox = _number_list(a.get("bbox"), 4)
        if bbox is None:
            rep.add("malformed annotations", f"annotation {aid}: bbox {str(a.get('bbox'))[:40]}")
            continue
        if not isinstance(a.get("category_id"), int) or a["category_id"] not in cat_index:
            rep.add("unknown category ids", f"annotation {aid}: category {a.get('category_id')}")
            continue
        iid = a.get("image_id")
        if not isinstance(iid, int) or iid not in entries:
            rep.add("annotations of skipped images" if iid in listed else "unknown image ids",
                    f"annotation {aid}: image {iid}")
            continue
        if a.get("iscrowd"):
            continue  # crowd regions mark "don't care" areas; the detectors here do not use them
        h, w = entries[iid]["image"].shape[:2]
        x, y, bw, bh = bbox
        if bw <= 0 or bh <= 0:
            rep.add("empty boxes", f"annotation {aid}: bbox {bbox}")
            continue
        t = EDGE_TOLERANCE
        if x < -t or y < -t or x + bw > w + t or y + bh > h + t:
            rep.add("boxes outside their image", f"annotation {aid}: bbox {bbox} in a {w}x{h} image")
            continue
        entries[iid]["boxes"].append([max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)])
        entries[iid]["labels"].append(cat_index[a["category_id"]])
        rep.kept_annotations += 1


def coco_files(data: str | Path) -> dict[str, Path] | None:
    """The COCO files of a dataset path, {"train": ..., "test": ...}, or None when `data` is not a COCO dataset.
    Accepted: a .json file (train only), or a folder holding train.json (and optionally test.json), as written by
    `recgen detect scenes`."""
    p = Path(data).expanduser()
    if p.suffix == ".json":
        return {"train": p}
    if p.is_dir() and (p / "train.json").is_file():
        return {s: p / f"{s}.json" for s in ("train", "test") if (p / f"{s}.json").is_file()}
    return None
