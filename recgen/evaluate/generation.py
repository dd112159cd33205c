"""Generation metrics in the feature space of a recgen recognizer (the "judge").

Inception weights cannot be downloaded here, so FID / KID (arXiv 1706.08500, 1801.01401) are computed by torchmetrics
with the judge's penultimate features as a custom feature extractor. Beside them: improved precision / recall
(arXiv 1904.06991), recognizability (the judge's accuracy on conditional samples), nearest-neighbour memorization
checks, per-class spread (mode collapse), and FID in HOG space as a hand-crafted second opinion.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from recgen.errors import RecgenError
from recgen.progress import Progress


class Embedder(nn.Module):
    """uint8 images (N, C, H, W) -> judge features (N, D). torchmetrics feeds custom extractors raw inputs, so the
    uint8 -> [0, 1] conversion lives here."""

    def __init__(self, net: nn.Module, input_shape: tuple[int, int, int]):
        super().__init__()
        self.net = net.eval()
        dev = next(net.parameters()).device
        # torchmetrics asks custom extractors for `num_features` instead of probing with a 3x299x299 image
        self.num_features = int(self(torch.zeros(1, *input_shape, dtype=torch.uint8, device=dev)).shape[-1])

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x
        return self.net.features(x).amax(dim=(2, 3))  # (N, D): the global pool the classifier head sees


@dataclass
class Judge:
    """A trained recgen CNN used to look at images: features for FID/KID/PR, predictions for recognizability."""

    run: object  # recgen.classify.ClassifierRun
    embedder: Embedder

    @classmethod
    def from_run(cls, run) -> Judge:
        if run.config.model != "cnn":
            raise RecgenError(f"{run.path}: a judge must be a CNN run (this one is {run.config.model})")
        return cls(run, Embedder(run.model, run.input_shape))

    @property
    def weights_hash(self) -> str:
        h = hashlib.sha256(self.run.run.weights_path("best").read_bytes())
        return h.hexdigest()[:16]

    def to_input(self, x: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W[, C]) at any size -> uint8 (N, C, H, W) at the judge's input size."""
        if x.ndim == 3:
            x = x[..., None]
        return torch.from_numpy(self.run.prepare(x)).permute(0, 3, 1, 2).contiguous()

    def features(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        t = self.to_input(x)
        dev = next(self.embedder.parameters()).device
        if len(t) <= batch_size:  # quick: no progress lines
            return self.embedder(t.to(dev)).cpu().numpy()
        out = []
        with Progress("judge features", len(t), "images") as p:
            for i in range(0, len(t), batch_size):
                out.append(self.embedder(t[i:i + batch_size].to(dev)).cpu())
                p.advance(len(out[-1]))
        return torch.cat(out).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.run.predict_proba(x).argmax(1)


class InceptionJudge:
    """The conventional FID space: Inception-v3 pool features (2048-d) through torchmetrics' NoTrainInceptionV3,
    from a weights file the user already has (torch-fidelity's `pt_inception-2015-12-05-6726825d.pth`); nothing
    is downloaded. torch-fidelity, which torchmetrics uses for this network, needs torchvision: where either is
    missing this says so in one line. The weights are read by torch-fidelity with torch.load, whose default since
    torch 2.6 (weights_only) refuses pickled code."""

    def __init__(self, weights: str | Path):
        self.path = Path(weights)
        if not self.path.is_file():
            raise RecgenError(f"{self.path}: no Inception weights file there (expected torch-fidelity's "
                              "pt_inception-2015-12-05-6726825d.pth; recgen never downloads it)")
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        if not _TORCH_FIDELITY_AVAILABLE:
            raise RecgenError("Inception features need torch-fidelity (pip install torch-fidelity, which needs "
                              "torchvision); the recgen judge's FID works without them")
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.embedder = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                           feature_extractor_weights_path=str(self.path))

    @property
    def weights_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def to_input(self, x: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W[, C]) -> uint8 (N, 3, H, W); the network resizes to 299x299 itself."""
        if x.ndim == 3:
            x = x[..., None]
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        return t.expand(-1, 3, -1, -1).contiguous() if t.shape[1] == 1 else t.contiguous()


def fid_kid(judge: Judge | InceptionJudge, real: np.ndarray, fake: np.ndarray, batch_size: int = 500,
            kid_subset: int = 1000) -> dict[str, float]:
    """FID and KID (mean, std over subsets) between uint8 image sets, in the judge's feature space (a recgen CNN or
    Inception-v3), via torchmetrics."""
    fid = FrechetInceptionDistance(feature=judge.embedder, reset_real_features=True, normalize=False)
    n_min = min(len(real), len(fake))
    kid = KernelInceptionDistance(feature=judge.embedder, subsets=50, subset_size=min(kid_subset, n_min),
                                  normalize=False)
    for is_real, x in ((True, real), (False, fake)):
        t = judge.to_input(x)
        for i in range(0, len(t), batch_size):
            fid.update(t[i:i + batch_size], real=is_real)
            kid.update(t[i:i + batch_size], real=is_real)
    kmean, kstd = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kmean), "kid_std": float(kstd)}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID formula on raw feature arrays (N, D) — used for HOG space and per-class FID."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # Few samples in many dimensions give singular covariances: offset the diagonal as pytorch-fid does.
    offset = np.eye(len(s1)) * 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ta, tb = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    return torch.cdist(ta, tb).numpy()


def precision_recall(real_f: np.ndarray, fake_f: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision/recall (arXiv 1904.06991): a sample is 'covered' by a set when it falls inside the k-NN
    ball of some member of that set. Precision: fakes covered by the real manifold; recall: reals covered by fakes."""

    def radii(f):
        d = _pairwise(f, f)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real_f), radii(fake_f)
    d = _pairwise(fake_f, real_f)  # (n_fake, n_real)
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return {"precision": precision, "recall": recall}


def nearest(query: np.ndarray, ref: np.ndarray, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and index of, each query row's nearest neighbour in ref."""
    dist, idx = [], []
    for i in range(0, len(query), chunk):
        d = _pairwise(query[i:i + chunk], ref)
        j = d.argmin(1)
        idx.append(j)
        dist.append(d[np.arange(len(j)), j])
    return np.concatenate(dist), np.concatenate(idx)


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C) -> float32 rows in [0, 1], the space of pixel-space nearest neighbours."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def memorization(train_f: np.ndarray, test_f: np.ndarray, fake_f: np.ndarray, quantile: float = 0.01) -> dict:
    """How many samples sit closer to a training image than real unseen images ever do.

    The threshold is the `quantile` of real test images' nearest-training-image distances: a sample below it is
    suspiciously close (a near copy). Real held-out data scores about `quantile` by construction."""
    d_test, _ = nearest(test_f, train_f)
    d_fake, idx = nearest(fake_f, train_f)
    thr = float(np.quantile(d_test, quantile))
    return {"threshold": thr, "copy_rate": float((d_fake < thr).mean()),
            "median_nn_distance_ratio": float(np.median(d_fake) / max(np.median(d_test), 1e-12)),
            "nn_distance": d_fake, "nn_index": idx}


def class_spread(feats: np.ndarray, labels: np.ndarray, ref_feats: np.ndarray, ref_labels: np.ndarray,
                 num_classes: int) -> list[float]:
    """Per class: mean distance of samples to their class centroid, relative to the same for real images.
    Near 1: real diversity; well below 1: the class has collapsed to few modes."""
    out = []
    for c in range(num_classes):
        f, r = feats[labels == c], ref_feats[ref_labels == c]
        if len(f) < 2 or len(r) < 2:
            out.append(float("nan"))
            continue
        spread = np.linalg.norm(f - f.mean(0), axis=1).mean()
        ref = np.linalg.norm(r - r.mean(0), axis=1).mean()
        out.append(float(spread / max(ref, 1e-12)))
    return out


def recognizability(judge: Judge, fake: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """The judge's accuracy on class-conditional samples: do they look like the class they were asked to be?"""
    pred = judge.predict(fake)
    per = {}
    for c, name in enumerate(classes):
        m = labels == c
        if m.any():
            per[name] = float((pred[m] == c).mean())
    return {"recognizability": float((pred == labels).mean()), "recognizability_per_class": per}


def hog_features(x: np.ndarray) -> np.ndarray:
    """HOG vectors (9 orientations, 4x4-pixel cells, 2x2 blocks) for uint8 (N, H, W[, C]) images."""
    from skimage.feature import hog

    if x.ndim == 4:
        x = x.mean(-1) if x.shape[-1] == 3 else x[..., 0]
    return np.stack([hog(im, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2)) for im in x])
