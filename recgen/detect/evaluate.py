"""COCO detection metrics through pycocotools: mAP@[.5:.95], mAP@.5, mAP@.75 and per-class AP."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from recgen.detect.coco import DetectionSet

Detections = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: boxes (n, 4) xyxy, scores (n,), labels (n,)


def to_coco_results(ds: DetectionSet, dets: Detections) -> list[dict[str, Any]]:
    """Detections in the dataset's stored pixels -> COCO result records (image ids are positions 1..N)."""
    out = []
    for i, (boxes, scores, labels) in enumerate(dets):
        for b, s, c in zip(np.asarray(boxes).reshape(-1, 4), scores, labels):
            out.append({"image_id": i + 1, "category_id": ds.category_ids[int(c)], "score": float(s),
                        "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    return out


def coco_map(ds: DetectionSet, dets: Detections, agnostic: bool = False) -> dict[str, Any]:
    """COCO box metrics of `dets` against the ground truth of `ds` (all areas, up to 100 detections per image).
    Per-class AP is mAP@[.5:.95] of that class; a class without ground truth gets None. `agnostic` adds
    map_agnostic / map50_agnostic, computed with the classes ignored (pycocotools' useCats=0): localisation
    alone, which tells box errors from class confusions."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(dets) != len(ds):
        raise ValueError(f"{len(dets)} detection lists for {len(ds)} images")
    results = to_coco_results(ds, dets)
    out: dict[str, Any] = {"map": 0.0, "map50": 0.0, "map75": 0.0, "mar100": 0.0,
                           "per_class": [{"class": c, "ap": 0.0, "ap50": 0.0} for c in ds.classes],
                           "images": len(ds), "objects": ds.num_objects, "detections": len(results)}
    if agnostic:
        out.update(map_agnostic=0.0, map50_agnostic=0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and tables
        gt = COCO()
        gt.dataset = ds.to_coco()
        gt.createIndex()
        if not results:
            return out
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        if agnostic:
            ag = COCOeval(gt, ev.cocoDt, "bbox")
            ag.params.useCats = 0
            ag.evaluate()
            ag.accumulate()
            ag.summarize()
            out.update(map_agnostic=_r(ag.stats[0]), map50_agnostic=_r(ag.stats[1]))
    s = ev.stats
    out.update(map=_r(s[0]), map50=_r(s[1]), map75=_r(s[2]), mar100=_r(s[8]))
    # precision: (T iou thresholds, R recall points, K classes, A areas, M max-dets); -1 where a class has no GT
    p = ev.eval["precision"][:, :, :, 0, -1]
    for k, row in enumerate(out["per_class"]):
        pk = p[:, :, k]
        row["ap"] = _r(pk[pk > -1].mean()) if (pk > -1).any() else None
        row["ap50"] = _r(pk[0][pk[0] > -1].mean()) if (pk[0] > -1).any() else None
    return out


def _r(v: float) -> float:
    return round(float(v), 5)
