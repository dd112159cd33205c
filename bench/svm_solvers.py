"""Which solver for the classical SVM? The same Nystroem RBF map (HOG + LBP + pixels -> standardise -> PCA 128 ->
unit length -> Nystroem, fitted on the 60k training images and their mirrors), then one linear classifier per
solver, scored on the 10k test images with the decision averaged over each image and its mirror.

    flock /tmp/recgen-bench.lock .venv/bin/python bench/svm_solvers.py --solvers ridge,sgd10,sgd20,lbfgs300

Prints one line per solver: fit seconds and test accuracy. `liblinear` (sklearn's LinearSVC, the exact solver) is
available but ran past 8 minutes on these 120k x 3000 rows (2026-11-22), so it is not in the default list.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import RidgeClassifier, SGDClassifier
from sklearn.svm import LinearSVC

from recgen.classify.classical import kernel_map
from recgen.data import load_dataset
from recgen.features import make_features


class LBFGSSquaredHinge:
    """LinearSVC's primal objective (L2 + squared hinge, one-vs-rest) minimised for all classes at once by L-BFGS,
    so that every iteration is two BLAS matrix products over both cores."""

    def __init__(self, C: float = 1.0, iters: int = 300):
        self.C, self.iters = C, iters

    def fit(self, x, y):
        n, d = x.shape
        self.classes_ = np.unique(y)
        Y = np.where(y[:, None] == self.classes_[None], 1.0, -1.0).astype(np.float32)
        xb = np.hstack([x, np.ones((n, 1), np.float32)])

        def fg(w):
            W = w.reshape(d + 1, -1).astype(np.float32)
            m = np.maximum(0, 1 - Y * (xb @ W))
            G = -2 * self.C * (xb.T @ (Y * m))
            G[:-1] += W[:-1]
            return float(0.5 * (W[:-1] ** 2).sum() + self.C * (m ** 2).sum()), G.ravel().astype(np.float64)

        r = minimize(fg, np.zeros((d + 1) * len(self.classes_)), jac=True, method="L-BFGS-B",
                     options=dict(maxiter=self.iters, maxcor=20))
        self.W_ = r.x.reshape(d + 1, -1).astype(np.float32)
        return self

    def decision_function(self, x):
        return x @ self.W_[:-1] + self.W_[-1]


SOLVERS = {
    "ridge": lambda: RidgeClassifier(alpha=1.0),
    "sgd10": lambda: SGDClassifier(loss="hinge", alpha=1e-6, max_iter=10, tol=None, average=True, n_jobs=2,
                                   random_state=0),
    "sgd20": lambda: SGDClassifier(loss="hinge", alpha=2e-6, max_iter=20, tol=None, average=True, n_jobs=2,
                                   random_state=0),
    "lbfgs300": lambda: LBFGSSquaredHinge(C=1.0, iters=300),
    "liblinear": lambda: LinearSVC(C=1.0, random_state=0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solvers", default="ridge,sgd10,sgd20,lbfgs300")
    ap.add_argument("--landmarks", type=int, default=3000)
    a = ap.parse_args()
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    t0 = time.perf_counter()
    feats = make_features("hog+lbp+pixels", n_jobs=2)
    pre = kernel_map(landmarks=a.landmarks, pca=128)  # the 2026-11-22 default map: PCA 128, gamma 1
    z = pre.fit_transform(feats.fit_transform(np.concatenate([train.x, train.x[:, :, ::-1]]))).astype(np.float32)
    y = np.concatenate([train.y, train.y])
    zt, ztm = (pre.transform(feats.transform(v)).astype(np.float32) for v in (test.x, test.x[:, :, ::-1]))
    print(f"features + map: {time.perf_counter() - t0:.1f} s, {z.shape[0]} x {z.shape[1]}", flush=True)
    for name in a.solvers.split(","):
        clf = SOLVERS[name]()
        t0 = time.perf_counter()
        clf.fit(z, y)
        fit = time.perf_counter() - t0
        acc = float(((clf.decision_function(zt) + clf.decision_function(ztm)).argmax(1) == test.y).mean())
        print(f"{name:10s} fit {fit:7.1f} s  test accuracy {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
