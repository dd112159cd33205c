"""Synthetic detection scenes: objects from a classification dataset placed at random scales and positions on
larger canvases, with an overlap limit and an optional noisy or cluttered background.

Scene i of a split is drawn from its own generator seeded with (scene_seed, split, i), so it is the same whatever
the number of scenes asked for. Test scenes are built only from the objects' test split (or, for a dataset without
one, from a seeded 20 % of its images that training scenes never use). Boxes are tight around each object's
non-zero pixels after scaling.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from recgen.data import ImageSet, has_test_split, load_dataset, resize_batch, train_val_split
from recgen.detect.boxes import iou_matrix, tight_box
from recgen.detect.coco import DetectionSet, write_coco
from recgen.detect.config import SceneConfig, SceneOptions

SPLIT_STREAM = {"train": 0, "test": 1}


def object_splits(o: SceneOptions) -> tuple[ImageSet, ImageSet]:
    """(train objects, test objects): the dataset's own test split, or a seeded 20 % held out of its images."""
    full = load_dataset(o.data, "train", o.data_dir or None)
    if has_test_split(o.data):
        return full, load_dataset(o.data, "test", o.data_dir or None, channels=full.x.shape[-1])
    return train_val_split(full, 0.2, seed=0)


def background(rng: np.random.Generator, size: int, channels: int, kind: str) -> np.ndarray:
    if kind == "plain":
        return np.zeros((size, size, channels), np.uint8)
    canvas = rng.integers(0, 41, (size, size, channels), dtype=np.uint8)
    if kind == "clutter":  # strokes and blobs that are not objects, fainter than most object pixels
        for _ in range(rng.integers(2, 6)):
            color = tuple(int(v) for v in rng.integers(40, 121, channels))
            p = rng.integers(0, size, 4)
            if rng.random() < 0.6:
                cv2.line(canvas, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), color, int(rng.integers(1, 3)))
            else:
                cv2.circle(canvas, (int(p[0]), int(p[1])), int(rng.integers(2, 7)), color, -1)
    return canvas


def build_scene(objects: ImageSet, o: SceneOptions, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: image (S, S, C), boxes (n, 4) xyxy, labels (n,)."""
    s, c = o.canvas, objects.x.shape[-1]
    canvas = background(rng, s, c, o.background)
    boxes, labels = [], []
    for _ in range(rng.integers(o.min_objects, o.max_objects + 1)):
        for _attempt in range(20):  # a new object, size and place until one fits the overlap limit
            j = int(rng.integers(len(objects)))
            side = int(rng.integers(o.min_size, o.max_size + 1))
            obj = resize_batch(objects.x[j][None], side)[0]  # (side, side, C)
            tb = tight_box(obj.max(-1) > 0)
            if tb is None:
                continue
            patch = obj[tb[1]:tb[3], tb[0]:tb[2]]
            h, w = patch.shape[:2]
            x, y = int(rng.integers(0, s - w + 1)), int(rng.integers(0, s - h + 1))
            box = [x, y, x + w, y + h]
            if boxes and iou_matrix([box], boxes).max() > o.max_overlap:
                continue
            region = canvas[y:y + h, x:x + w]
            opaque = patch.max(-1) > 0  # the object covers what lies under it, background shows through its gaps
            region[opaque] = patch[opaque]
            boxes.append(box)
            labels.append(int(objects.y[j]))
            break
    return canvas, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64)


def build_scenes(objects: ImageSet, n: int, o: SceneOptions, split: str) -> DetectionSet:
    images, boxes, labels = [], [], []
    for i in range(n):
        img, b, lab = build_scene(objects, o, np.random.default_rng([o.scene_seed, SPLIT_STREAM[split], i]))
        images.append(img)
        boxes.append(b)
        labels.append(lab)
    return DetectionSet(np.stack(images), boxes, labels, list(objects.classes), f"{objects.name}-scenes", split)


def make_scenes(o: SceneOptions, splits: tuple[str, ...] = ("train", "test")) -> dict[str, DetectionSet]:
    """The train and/or test scenes the options describe."""
    train_objects, test_objects = object_splits(o)
    pools = {"train": (train_objects, o.train_scenes), "test": (test_objects, o.test_scenes)}
    return {s: build_scenes(pools[s][0], pools[s][1], o, s) for s in splits if pools[s][1] > 0}


def write_scenes(cfg: SceneConfig) -> dict[str, Path]:
    """Build the scenes and write them as COCO JSON + PNG images under cfg.out; returns {split: json path}."""
    from recgen import plots
    from recgen.detect.boxes import draw_boxes

    sets = make_scenes(cfg)
    out = Path(cfg.out)
    paths = {split: write_coco(ds, out, split) for split, ds in sets.items()}
    ds = sets["train"]
    k = min(16, len(ds))
    previews = [draw_boxes(ds.images[i], ds.boxes[i], [ds.classes[c] for c in ds.labels[i]], min_side=192)
                for i in range(k)]
    plots.image_grid(np.stack(previews), out / "preview.png", cols=4, scale=2.5)
    return paths
