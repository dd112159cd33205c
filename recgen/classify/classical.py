"""Classical classifiers: image features -> standardise -> PCA -> unit length -> RBF-kernel SVM, or a random
forest on the features; a small hyperparameter search; and safe persistence with skops.

The SVM is a kernel SVM made affordable: an exact RBF SVC on 60k images costs O(n^2) kernel evaluations on one
core, so the kernel is approximated by a Nystroem map onto `landmarks` training vectors and the SVM is solved in
the primal by Newton's method (recgen/classify/kernel_svm.py, NystroemSVM): scikit-learn's averaged SGD
stopped far from the optimum, and more landmarks, k-means patch features (recgen.features.KMeansPatches) and
192 principal components each added accuracy (bench/svm_torch.py; figures in docs/BENCHMARKS.md). Training
also on mirrored images and averaging the decision over an image and its mirror (FlipPipeline) adds accuracy
at twice the cost.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, fields, replace
from difflib import get_close_matches
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from recgen.classify.kernel_svm import NystroemSVM
from recgen.errors import RecgenError
from recgen.files import atomic_write
from recgen.features import HOG, LBP, IntensityHistogram, KMeansPatches, Pixels, Sobel, make_features
from recgen.features.extractors import image_geometry

# Per model: the SVM gains from k-means patch features (bench/svm_torch.py); the forest was tuned on
# hog+lbp+pixels and its fit time grows with every feature.
DEFAULT_FEATURES = {"svm": "kmeans+hog+lbp+pixels", "rf": "hog+lbp+pixels"}


@dataclass
class SVMConfig:
    pca: int = 192  # principal components kept of the standardised features
    gamma: float = 1.0  # RBF exp(-gamma |a - b|^2) between unit-length PCA vectors (|a - b|^2 in [0, 4])
    landmarks: int = 12000  # Nystroem landmarks: kernel columns the RBF is approximated with
    lam: float = 0.25  # L2 penalty of the squared-hinge SVM, 1 / C
    newton: int = 3  # Newton steps of the solver (the first one is kernel ridge regression)
    cg: int = 10  # conjugate-gradient iterations per Newton step, at most
    gram_rows: int = 20000  # rows the solver's preconditioner is estimated from
    precision: str = "auto"  # the map's matrix product: auto (bf16 with native bf16, else fp32), bf16, fp32
    flip: bool = True  # also train on mirrored images, and average predictions over image and mirror
    n_jobs: int = 2  # threads for feature extraction


@dataclass
class RFConfig:
    n_estimators: int = 100  # trees (as accurate as 300 at a third of the time and size; bench/rf_trees.py)
    max_features: float | str = "sqrt"  # features tried per split
    min_samples_leaf: int = 1  # smallest leaf
    flip: bool = True
    n_jobs: int = 2  # processes for trees and threads for features


CONFIGS = {"svm": SVMConfig, "rf": RFConfig}


# -------------------------------------------------------------------------------------------------- building
class FlipPipeline(Pipeline):
    """A Pipeline over images that trains on each image and its horizontal mirror (`flip`) and averages the
    decision function (or class probabilities) over both at predict time. Clothes, shoes and bags keep their class
    under mirroring, so this doubles the training set for free; a scikit-learn Pipeline cannot add samples in a
    step, hence the subclass. `shape` reads flattened rows as in recgen.features."""

    def __init__(self, steps, *, flip=True, shape=None, transform_input=None, memory=None, verbose=False):
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.flip = flip  # train on mirrors and average over them at predict time
        self.shape = shape  # (H, W[, C]) of flattened rows

    def _mirror(self, X):
        X = np.asarray(X)
        if X.ndim >= 3:
            return X[:, :, ::-1]
        h, w, c = image_geometry(X.shape[1], self.shape)
        return X.reshape(len(X), h, w, c)[:, :, ::-1].reshape(len(X), -1)

    def fit(self, X, y=None, **params):
        if self.flip:
            X, y = np.concatenate([np.asarray(X), self._mirror(X)]), np.concatenate([y, y])
        return super().fit(X, y, **params)

    def _averaged(self, method, X):
        out = getattr(super(), method)(X)
        return (out + getattr(super(), method)(self._mirror(X))) / 2 if self.flip else out

    def decision_function(self, X, **params):
        return self._averaged("decision_function", X)

    def predict_proba(self, X, **params):
        if hasattr(self.steps[-1][1], "predict_proba"):
            return self._averaged("predict_proba", X)
        # An SVM has margins, not probabilities: a softmax over them ranks the classes the same way.
        d = self._margins(X)
        e = np.exp(d - d.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, X, **params):
        if not self.flip:
            return super().predict(X)
        final = self.steps[-1][1]
        score = self.predict_proba(X) if hasattr(final, "predict_proba") else self._margins(X)
        return self.classes_[np.asarray(score).argmax(axis=1)]

    def _margins(self, X) -> np.ndarray:
        """(n, classes) margins; a binary classifier's single margin m (for classes_[1]) becomes (-m/2, m/2)."""
        d = np.asarray(self.decision_function(X), dtype=np.float64)
        return np.stack([-d / 2, d / 2], axis=1) if d.ndim == 1 else d


def resolve_config(model: str, **hyperparams):
    """Model name and keyword overrides -> its config dataclass; unknown names fail with the nearest ones."""
    if model not in CONFIGS:
        raise RecgenError(f"unknown classical model {model!r}; valid: {', '.join(CONFIGS)}")
    cls = CONFIGS[model]
    valid = [f.name for f in fields(cls)]
    for key in hyperparams:
        if key not in valid:
            near = get_close_matches(key, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise RecgenError(f"unknown {model} hyperparameter {key!r}{hint}; valid: {', '.join(valid)}")
    return replace(cls(), **hyperparams)


def build_classical(model: str = "svm", features: str | None = None, seed: int = 0, shape=None,
                    **hyperparams) -> FlipPipeline:
    """An unfitted Pipeline: features -> scaling -> PCA -> unit length -> NystroemSVM ("svm") or features ->
    RandomForest ("rf"). `features` defaults to DEFAULT_FEATURES[model]; keyword arguments override the fields of
    SVMConfig / RFConfig."""
    cfg = resolve_config(model, **hyperparams)
    steps = [("features", make_features(features or DEFAULT_FEATURES[model], shape=shape, n_jobs=cfg.n_jobs))]
    if model == "svm":
        steps += kernel_map(seed, **hyperparams).steps[:3] + [
            ("svm", NystroemSVM(cfg.landmarks, cfg.gamma, cfg.lam, cfg.newton, cfg.cg, cfg.gram_rows,
                                cfg.precision, random_state=seed)),
        ]
    else:
        steps += [("rf", RandomForestClassifier(cfg.n_estimators, max_features=cfg.max_features,
                                                min_samples_leaf=cfg.min_samples_leaf, n_jobs=cfg.n_jobs,
                                                random_state=seed))]
    return FlipPipeline(steps, flip=cfg.flip, shape=shape)


def kernel_map(seed: int = 0, **hyperparams) -> Pipeline:
    """Standardise -> PCA -> unit length -> scikit-learn's Nystroem RBF map, on feature vectors: the SVM's input
    (its first three steps) and, whole, the map the bench/svm_*.py ablations share. Keyword arguments override
    SVMConfig fields (the ones that are not the map's are ignored here)."""
    cfg = resolve_config("svm", **hyperparams)
    return Pipeline([
        ("scale", StandardScaler()),  # HOG, LBP and pixel values live on different scales
        ("pca", PCA(cfg.pca, svd_solver="randomized", random_state=seed)),
        # unit length makes gamma independent of the feature spec and the number of components
        ("unit", Normalizer()),
        ("rbf", Nystroem(gamma=cfg.gamma, n_components=cfg.landmarks, random_state=seed)),
    ])


# ---------------------------------------------------------------------------------------------------- search
SEARCH_GRIDS = {  # small on purpose: each candidate refits features -> ... -> classifier
    "svm": {"svm__lam": [0.1, 0.25, 1.0], "svm__gamma": [0.5, 1.0, 2.0]},
    "rf": {"rf__max_features": ["sqrt", 0.1], "rf__min_samples_leaf": [1, 2]},
}


def search_classical(pipe: FlipPipeline, x: np.ndarray, y: np.ndarray, seed: int = 0, subset: int = 5000,
                     grid: dict | None = None) -> FlipPipeline:
    """Successive-halving grid search (Jamieson & Talwalkar, AISTATS 2016) with 3-fold CV on a stratified subset
    of `subset` images; returns an unfitted copy of `pipe` with the best parameters, to fit on all the data.
    The grid defaults to SEARCH_GRIDS for the pipeline's model. Features are computed once per fold (cached)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, train_test_split

    model = "svm" if "svm" in pipe.named_steps else "rf"
    if subset < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=subset, stratify=y, random_state=seed)
    with tempfile.TemporaryDirectory(prefix="recgen-search-") as cache:
        # Pipeline memory caches each fitted step by its input and parameters: the features are extracted once
        # per fold, not once per candidate.
        search = HalvingGridSearchCV(clone(pipe).set_params(memory=cache), grid or SEARCH_GRIDS[model], cv=3,
                                     factor=3, random_state=seed, n_jobs=1)
        search.fit(x, y)
    return clone(pipe).set_params(**search.best_params_)


# ----------------------------------------------------------------------------------------------- persistence
# Types a saved classical model may contain beyond those skops trusts by default (numpy, scikit-learn
# estimators): our own estimator classes, plus the scikit-learn decision tree structure, which skops rebuilds
# from plain arrays with its own loader (no code from the file runs) but lists as untrusted.
TRUSTED_TYPES = sorted({f"{c.__module__}.{c.__qualname__}" for c in (HOG, LBP, Sobel, IntensityHistogram, Pixels,
                                                                       KMeansPatches, NystroemSVM, FlipPipeline)}
                       | {"sklearn.tree._tree.Tree"})


def save_classical(pipe, path) -> Path:
    """skops file, written through recgen.files.atomic_write (temporary file, fsync, rename): a crash never leaves
    half a model."""
    import skops.io as sio

    path = Path(path)
    atomic_write(path, sio.dumps(pipe))
    return path


def load_classical(path):
    """Load a model saved by save_classical. Every type in the file must be one skops trusts by default or in
    TRUSTED_TYPES; anything else (a function, an unknown class) is refused before any object is built."""
    import skops.io as sio

    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # missing file, not a zip, bad schema: all "this is not a model we can read"
        raise RecgenError(f"{path}: not a readable skops model ({type(e).__name__}: {e})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise RecgenError(f"{path}: refusing to load untrusted types {', '.join(refused)} "
                          f"(allowed: scikit-learn/numpy types and recgen's feature extractors)")
    return sio.load(path, trusted=untrusted)


def config_dict(pipe) -> dict:
    """Plain JSON-able description of a built pipeline, for run records."""
    return {name: type(step).__name__ for name, step in pipe.steps} | {"flip": pipe.flip}


__all__ = ["CONFIGS", "DEFAULT_FEATURES", "FlipPipeline", "RFConfig", "SVMConfig", "TRUSTED_TYPES",
           "build_classical", "kernel_map", "load_classical", "resolve_config", "save_classical",
           "search_classical", "asdict"]
