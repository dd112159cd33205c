"""What judging generated images needs besides the figures themselves (recgen.evaluate.generation): which parts of
an evaluation to run, the real-vs-real floor's and the noise ceiling's images, the table that sets every score
beside them, and where the reference judge of a dataset lives. Free of any task: the orchestration that trains CAS
classifiers sits in recgen.loop.judge."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen.data import ImageSet
from recgen.errors import RecgenError
from recgen.evaluate.generation import Judge, fid_kid, nearest, precision_recall
from recgen.report import CHANCE_FIGURES, arrow, chance_note


# The parts of `generate eval` (--metrics), each with the figures it gives. fid: one pass of the judge over the
# n samples, n real images and n noise images; memorization: the judge over the whole training set, whatever n is;
# cas: two classifiers trained for a fixed number of steps (the slow part when n is small); likelihood: the run's
# own held-out figures (a pass over the test split).
METRICS = {"fid": ("fid", "kid", "precision", "recall"), "hog": ("fid_hog",),
           "recognizability": ("recognizability", "fid_per_class", "spread_per_class", "min_class_spread"),
           "memorization": ("copy_rate", "copy_rate_pixels", "nn_distance_ratio"), "cas": ("cas", "reverse_cas"),
           "likelihood": ()}


def parse_metrics(spec: str) -> tuple[str, ...]:
    """'fid,kid,cas' -> the parts that give those figures, in METRICS order; 'all' or '' -> every part."""
    names = [m.strip().lower() for m in spec.split(",") if m.strip()]
    if not names or names == ["all"]:
        return tuple(METRICS)
    parts = set()
    for m in names:
        part = next((k for k, figures in METRICS.items() if m == k or m in figures), None)
        if part is None:
            raise RecgenError(f"metrics: unknown name {m!r}; choose from all, {', '.join(METRICS)} (or a figure: "
                              "kid, precision, recall, fid_hog, reverse_cas, copy_rate)")
        parts.add(part)
    return tuple(k for k in METRICS if k in parts)


def feature_scores(judge: Judge, ref: np.ndarray, x: np.ndarray, ref_f: np.ndarray, x_f: np.ndarray
                   ) -> dict[str, float]:
    """FID / KID in the judge's space and precision / recall of its features, of samples x against ref."""
    out = fid_kid(judge, ref, x)
    out.update(precision_recall(ref_f, x_f))
    return out


def noise_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The ceiling: smooth random blobs (uniform noise upsampled), as unlike the data as a generator can be."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, c = shape
    small = rng.integers(0, 256, (n, max(h // 4, 1), max(w // 4, 1), c), dtype=np.uint8)
    return np.stack([cv2.resize(s, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c) for s in small])


def real_references(train: ImageSet, test: ImageSet, n: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """The n real training images (the floor's samples, and the real CAS classifier's data) and the n test images
    that every score of a seed is measured against."""
    rng = np.random.default_rng(seed)
    return train.subset(rng.permutation(len(train))[:n]), test.subset(rng.permutation(len(test))[:n])


def nearest_ok(judge: Judge, f_train: np.ndarray, x: np.ndarray, thr: float) -> np.ndarray:
    """Which of images x lie within distance thr of a training image in the judge's feature space."""
    d, _ = nearest(judge.features(x), f_train)
    return d < thr


def format_table(res: dict) -> list[dict[str, Any]]:
    """Rows metric | better | model | floor (real vs real) | ceiling (noise) | note for printing and reports; the
    note flags a class-accuracy figure at chance level."""
    card = res.get("card", {})
    rows = []
    for k in ("fid", "kid", "precision", "recall", "fid_hog", "fid_inception", "kid_inception", "recognizability",
              "cas", "reverse_cas", "copy_rate"):
        if k in res["model"]:
            note = chance_note(res["model"][k], card.get("classes", 0), card.get("n", 0)) \
                if k in CHANCE_FIGURES else ""
            rows.append({"metric": k, "better": arrow(k),
                         "model": res["model"][k], "floor (real vs real)": res["floor"].get(k, ""),
                         "ceiling (noise)": res["ceiling"].get(k, ""), "note": note})
    return rows


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items() if not isinstance(v, np.ndarray)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


JUDGE_ROOT = "runs/judges"


def default_judge_path(data: str) -> Path:
    root = Path(os.environ.get("RECGEN_JUDGES", JUDGE_ROOT))
    return root / Path(data).name
