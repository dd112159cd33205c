"""The classical baseline: contour proposals scored by a crop classifier, then non-maximum suppression.

1. Proposals (`ContourProposals`): foreground masks from intensity (above the background level plus three robust
   noise deviations) and from Sobel edges, each taken as-is and after a morphological closing that joins an
   object's parts; every 8-connected component's bounding box is a proposal (Suzuki & Abe's border following, as
   `cv2.connectedComponentsWithStats` computes it, gives the same boxes).
2. Scoring: each proposal is cropped, padded to a square and resized to 28x28 (Fashion-MNIST's framing), then
   classified by either a recgen classify run (`classifier=`: its `predict_proba` on uint8 crops) or, by default,
   `CropClassifier`: HOG (Dalal & Triggs 2005) -> standardisation -> multinomial logistic regression with an extra
   background class, fitted on crops of the training scenes (ground truth, and proposals labelled by their overlap).
3. Each proposal yields its two most likely object classes as detections; class-wise greedy NMS keeps the best.

The fitted state is a few arrays, saved as safetensors (no pickle): the HOG settings are in model.json.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from recgen.config import model_args
from recgen.detect.boxes import iou_matrix, nms
from recgen.detect.coco import DetectionSet
from recgen.detect.evaluate import Detections
from recgen.errors import RecgenError
from recgen.features import HOG
from recgen.runs import Run, load_tensors, save_tensors

CROP = 28  # side of the square crops the classifiers see


class ContourProposals:
    """Boxes of connected foreground components at a few thresholds and closings (see the module docstring)."""

    def __init__(self, noise_k: float = 3.0, edge_k: float = 4.0, close: int = 5, min_side: int = 4):
        self.noise_k = noise_k  # foreground: above the median by this many robust deviations (MAD * 1.4826)
        self.edge_k = edge_k  # edges: Sobel magnitude above its median by this many robust deviations
        self.close = close  # closing kernel side joining an object's separate parts (sandal straps, trouser legs)
        self.min_side = min_side  # smaller components are noise

    def __call__(self, image: np.ndarray) -> np.ndarray:
        gray = image.max(-1).astype(np.float32)
        med = float(np.median(gray))
        spread = 1.4826 * float(np.median(np.abs(gray - med)))
        masks = [gray > med + self.noise_k * spread]
        blur = cv2.GaussianBlur(gray, (3, 3), 0)
        mag = np.hypot(cv2.Sobel(blur, cv2.CV_32F, 1, 0), cv2.Sobel(blur, cv2.CV_32F, 0, 1))
        m_med = float(np.median(mag))
        masks.append(mag > m_med + self.edge_k * max(1.4826 * float(np.median(np.abs(mag - m_med))), 1.0))
        kernel = np.ones((self.close, self.close), np.uint8)
        boxes = set()
        for m in masks:
            m = m.astype(np.uint8)
            for mm in (m, cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)):
                n, _, stats, _ = cv2.connectedComponentsWithStats(mm, connectivity=8)
                for x, y, w, h, _area in stats[1:]:
                    if w >= self.min_side and h >= self.min_side:
                        boxes.add((int(x), int(y), int(x + w), int(y + h)))
        return np.array(sorted(boxes), np.float32).reshape(-1, 4)


def crops(image: np.ndarray, boxes: np.ndarray, side: int = CROP) -> np.ndarray:
    """Square crops (n, side, side, C) uint8: each box padded with zeros to a centred square, then resized."""
    out = np.zeros((len(boxes), side, side, image.shape[-1]), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
        patch = image[max(y1, 0):y2, max(x1, 0):x2]
        h, w = patch.shape[:2]
        if h == 0 or w == 0:
            continue
        m = max(h, w)
        sq = np.zeros((m, m, image.shape[-1]), np.uint8)
        sq[(m - h) // 2:(m - h) // 2 + h, (m - w) // 2:(m - w) // 2 + w] = patch
        interp = cv2.INTER_AREA if m > side else cv2.INTER_LINEAR
        out[i] = cv2.resize(sq, (side, side), interpolation=interp).reshape(side, side, -1)
    return out


class CropClassifier:
    """HOG -> standardisation -> multinomial logistic regression; probabilities over the classes seen in fit.
    scikit-learn's estimator contract: parameters stored untouched, fit returns self, learned state ends in _."""

    def __init__(self, cells: tuple[int, ...] = (4, 7), C: float = 0.1, max_iter: int = 300, seed: int = 0):
        self.cells = cells  # HOG cell sides in pixels, one descriptor each
        self.C = C  # inverse L2 regularisation strength
        self.max_iter = max_iter  # L-BFGS iterations
        self.seed = seed

    def _features(self, x: np.ndarray) -> np.ndarray:
        return HOG(cells=tuple(self.cells)).fit(x[:1]).transform(x)

    def fit(self, x: np.ndarray, y: np.ndarray) -> CropClassifier:
        from sklearn.linear_model import LogisticRegression

        f = self._features(x)
        self.mean_, self.scale_ = f.mean(0), f.std(0) + 1e-6
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        lr.fit((f - self.mean_) / self.scale_, y)
        self.classes_ = lr.classes_.astype(np.int64)
        self.coef_, self.intercept_ = lr.coef_.astype(np.float32), lr.intercept_.astype(np.float32)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = (self._features(x) - self.mean_) / self.scale_ @ self.coef_.T + self.intercept_
        if z.shape[1] == 1:  # scikit-learn's binary case: one logit for classes_[1]
            z = np.concatenate([np.zeros_like(z), z], 1)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_, "intercept": self.intercept_,
                "classes": self.classes_}

    def set_arrays(self, a: dict[str, np.ndarray]) -> CropClassifier:
        self.mean_, self.scale_, self.coef_ = a["mean"], a["scale"], a["coef"]
        self.intercept_, self.classes_ = a["intercept"], a["classes"]
        return self


class ClassicalDetector:
    """Contour proposals + crop classifier + NMS. `fit` learns the classifier from a DetectionSet (unless a
    classify run is given), `detect` returns per-image (boxes, scores, labels) like the network does."""

    def __init__(self, classifier: str = "", nms_iou: float = 0.5, per_box: int = 2, C: float = 0.1, seed: int = 0):
        self.classifier = classifier  # path of a recgen classify run; "" = fit a CropClassifier
        self.nms_iou = nms_iou  # class-wise NMS IoU
        self.per_box = per_box  # detections per proposal: its most likely object classes
        self.C = C  # CropClassifier regularisation
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"classifier": self.classifier, "nms_iou": self.nms_iou, "per_box": self.per_box, "C": self.C,
                "seed": self.seed}

    def fit(self, ds: DetectionSet) -> ClassicalDetector:
        self.proposals_ = ContourProposals()
        self.num_classes_ = len(ds.classes)
        if self.classifier:
            self._external(ds.classes)
            return self
        xs, ys = [], []
        bg = self.num_classes_  # the extra background class
        for img, gt, lab in zip(ds.images, ds.boxes, ds.labels):
            props = self.proposals_(img)
            y = np.full(len(props), -1)
            if len(props):
                iou = iou_matrix(props, gt) if len(gt) else np.zeros((len(props), 1))
                best = iou.max(1)
                y[best < 0.4] = bg
                if len(gt):
                    y[best >= 0.7] = lab[iou.argmax(1)][best >= 0.7]
            keep = y >= 0
            xs += [crops(img, gt), crops(img, props[keep])]
            ys += [lab, y[keep]]
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(np.unique(y)) < 2:
            raise RecgenError("classical: the training scenes give fewer than two kinds of crops to learn from")
        self.clf_ = CropClassifier(C=self.C, seed=self.seed).fit(x, y)
        return self

    def _external(self, classes: list[str]) -> None:
        from recgen import classify

        self.clf_ = classify.load(self.classifier)
        if list(self.clf_.classes) != list(classes):
            raise RecgenError(f"{self.classifier}: its classes {self.clf_.classes[:4]}... are not the detection "
                              f"classes {classes[:4]}...")

    def _probs(self, x: np.ndarray) -> np.ndarray:
        """(n, K) probabilities of the object classes (the background's share is left out, so they sum to <= 1)."""
        p = self.clf_.predict_proba(x)
        if isinstance(self.clf_, CropClassifier):
            full = np.zeros((len(x), self.num_classes_ + 1), np.float32)
            full[:, self.clf_.classes_] = p
            return full[:, :self.num_classes_]
        return p

    def detect(self, images: np.ndarray, threshold: float = 0.01, max_det: int = 100) -> Detections:
        props = [self.proposals_(im) for im in images]
        x = np.concatenate([crops(im, p) for im, p in zip(images, props)] or [np.zeros((0, CROP, CROP, 1))])
        probs = self._probs(x) if len(x) else np.zeros((0, self.num_classes_))
        out, at = [], 0
        k = min(self.per_box, self.num_classes_)
        for p in props:
            pr, at = probs[at:at + len(p)], at + len(p)
            top = np.argsort(-pr, 1)[:, :k]  # (n, k)
            boxes, labels = np.repeat(p, k, 0), top.reshape(-1)
            scores = np.take_along_axis(pr, top, 1).reshape(-1)
            ok = scores >= threshold
            boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
            keep = nms(boxes, scores, labels, self.nms_iou, max_det)
            out.append((boxes[keep], scores[keep], labels[keep]))
        return out

    # ---------------------------------------------------------------------------------------------- persistence
    def save(self, run: Run) -> None:
        if isinstance(self.clf_, CropClassifier):
            save_tensors({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.clf_.arrays().items()},
                         run.path / "weights" / "classical.safetensors")

    @classmethod
    def load(cls, run: Run) -> ClassicalDetector:
        info = run.read_model_json()
        det = model_args(cls, info, run.path / "model.json")
        det.proposals_, det.num_classes_ = ContourProposals(), len(info["classes"])
        if det.classifier:
            det._external(info["classes"])
        else:
            arrays = load_tensors(run.path / "weights" / "classical.safetensors", finite=True)
            det.clf_ = CropClassifier(C=det.C, seed=det.seed).set_arrays({k: v.numpy() for k, v in arrays.items()})
        return det
