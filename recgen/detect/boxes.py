"""Box geometry shared by the detectors, the scene builder and the COCO reader.

Boxes are (x1, y1, x2, y2) in pixels, corners on the pixel grid: a box holding pixel columns 3..7 is x1=3, x2=8.
COCO files store (x, y, w, h) with the same convention.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The smallest box around the True pixels of a (H, W) mask, or None when there are none."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (len(a), len(b)) of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalized IoU (arXiv 1902.09630) of matching rows of xyxy boxes (n, 4) -> (n,), in [-1, 1]."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).clamp_min(0).prod(1), (b[:, 2:] - b[:, :2]).clamp_min(0).prod(1)
    union = area_a + area_b - inter
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp_min(0).prod(1)
    return inter / union.clamp_min(1e-9) - (hull - union) / hull.clamp_min(1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float = 0.5,
        max_det: int = 100) -> np.ndarray:
    """Class-wise greedy non-maximum suppression; indices of the kept boxes, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes, labels = np.asarray(boxes, np.float64), np.asarray(labels)
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    ious = iou_matrix(boxes[order], boxes[order])
    same = labels[order][:, None] == labels[order][None, :]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if len(keep) == max_det:
            break
        suppressed |= (ious[i] > iou) & same[i]
    return np.array(keep, dtype=np.int64)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Scale a (H, W, C) image so its longer side is `size`, pad right/bottom with zeros to size x size.
    Returns the square image and the scale; a box in the output is the original box times the scale."""
    h, w, c = image.shape
    scale = size / max(h, w)
    if scale != 1.0:
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (nw, nh), interpolation=interp).reshape(nh, nw, c)
    out = np.zeros((size, size, c), np.uint8)
    out[:image.shape[0], :image.shape[1]] = image
    return out, scale


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: list[str], scores: np.ndarray | None = None,
               min_side: int = 384) -> np.ndarray:
    """RGB uint8 picture of `image` (H, W, C) with labelled boxes, enlarged so the shorter side is >= min_side."""
    img = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    k = max(1, int(np.ceil(min_side / min(img.shape[:2]))))
    img = np.ascontiguousarray(cv2.resize(img, (img.shape[1] * k, img.shape[0] * k), interpolation=cv2.INTER_NEAREST))
    for i, (box, name) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), labels)):
        color = tuple(int(v) for v in PALETTE[i % len(PALETTE)])
        x1, y1, x2, y2 = (int(round(v * k)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), color, 2)
        text = name if scores is None else f"{name} {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else y1 + th + 3
        cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + base - 1), color, -1)
        cv2.putText(img, text, (x1 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


PALETTE = np.array([(255, 99, 71), (60, 179, 113), (65, 105, 225), (255, 215, 0), (238, 130, 238),
                    (0, 206, 209), (255, 140, 0), (154, 205, 50), (219, 112, 147), (176, 196, 222)])
