"""Classical image features as scikit-learn transformers: the shared input handling (ImageFeatures), Sobel edges,
histograms, raw pixels and k-means patches; HOG and LBP are in texture.py, the '+'-joined spec in spec.py.

Input convention, the same for every extractor:
  X (N, H, W) or (N, H, W, C)   images, channels last as in `recgen.data.ImageSet.x`
  X (N, D)                      flattened rows, D = H*W*C, reshaped with the `shape` parameter, (H, W) or (H, W, C).
                                With shape=None a row of D = s*s values is an s x s gray image, D = 3*s*s an s x s
                                RGB image, and any other D a single row of D gray pixels (1, D, 1).
  Integer dtypes are intensities in [0, 255]; float and bool dtypes are in [0, 1] (scikit-image's convention).
Output: float32 (N, n_features). `fit` learns only the image geometry (`image_shape_`, `n_features_in_`); rows of
another size are refused, as by any scikit-learn transformer.

Speed: everything is vectorised over the batch, per-cell histograms are one `np.bincount` over (image, cell, bin)
indices, and `n_jobs` threads share chunks of images (numpy releases the GIL). This is many times faster on small
images than `skimage.feature.hog` or `skimage.feature.local_binary_pattern` called per image; `cv2.HOGDescriptor` is gone from OpenCV 5's main modules. HOG(soft=False) and
LBP reproduce scikit-image's output (tests/test_features.py checks both), so published settings carry over.
"""

from __future__ import annotations

import math

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from recgen.progress import Progress

CHUNK = 2048  # images per work unit: a few 10 MB temporaries per thread for 28x28 images


class ImageFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared input handling. A subclass has `shape` and `n_jobs` parameters and implements
    `_n_out(h, w, c) -> int` and `_extract(float32 (n, H, W, C) on 0..255) -> (n, n_out)`."""

    parallel_chunks = True  # threads over chunks of images (numpy releases the GIL)

    def fit(self, X, y=None):
        imgs = self._images(X, reset=True)
        self.image_shape_ = imgs.shape[1:]  # (H, W, C)
        self._n_features_out = self._n_out(*self.image_shape_)
        return self

    def transform(self, X):
        check_is_fitted(self)
        imgs = self._images(X, reset=False)
        if imgs.shape[1:] != self.image_shape_:
            raise ValueError(f"images are {imgs.shape[1:]} (H, W, C) but {type(self).__name__} was fitted on "
                             f"{self.image_shape_}")
        chunks = [imgs[i:i + CHUNK] for i in range(0, len(imgs), CHUNK)]
        if len(chunks) == 1:  # quick: no progress lines
            return self._extract(chunks[0]).astype(np.float32, copy=False)
        if self.parallel_chunks and effective_n_jobs(self.n_jobs) > 1:
            done = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                delayed(self._extract)(c) for c in chunks)
        else:
            done = (self._extract(c) for c in chunks)
        parts = []
        with Progress(f"{type(self).__name__} features", len(imgs), "images") as p:
            for part in done:
                parts.append(part)
                p.advance(len(part))
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _images(self, X, reset: bool) -> np.ndarray:
        """Any accepted X -> float32 (N, H, W, C) on the 0..255 scale."""
        shape = getattr(X, "shape", None)  # arrays, DataFrames, sparse matrices; lists go through numpy
        nd = len(shape) if shape is not None else np.asarray(X).ndim
        geometry = None
        if nd >= 3:  # an image batch is validated flattened, so n_features_in_ = H*W*C
            X = np.asarray(X)
            if nd > 4:
                raise ValueError(f"expected images (N, H, W) or (N, H, W, C), got shape {X.shape}")
            geometry = X.shape[1:] if nd == 4 else X.shape[1:] + (1,)
            X = X.reshape(len(X), -1)
        X = validate_data(self, X, reset=reset, dtype="numeric")
        geometry = geometry or image_geometry(X.shape[1], self.shape)
        scale = 1.0 if np.issubdtype(X.dtype, np.integer) else 255.0
        return (X.astype(np.float32) * np.float32(scale)).reshape(len(X), *geometry)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def image_geometry(d: int, shape) -> tuple[int, int, int]:
    if shape is not None:
        h, w, *c = shape
        c = c[0] if c else 1
        if h * w * c != d:
            raise ValueError(f"shape={tuple(shape)} holds {h * w * c} values but rows have {d}")
        return h, w, c
    for c in (1, 3):
        s = math.isqrt(d // c)
        if s * s * c == d:
            return s, s, c
    return 1, d, 1


# ------------------------------------------------------------------------------------------ cell histograms
def _grid_cells(h: int, w: int, grid) -> tuple[np.ndarray, int]:
    """A (rows, cols) grid of near-equal cells covering an h x w image -> (cell id per pixel (h, w), cells)."""
    gh, gw = min(grid[0], h), min(grid[1], w)
    rows = np.arange(h) * gh // h  # 0..gh-1, cell sizes differ by at most one pixel
    cols = np.arange(w) * gw // w
    return rows[:, None] * gw + cols[None, :], gh * gw


def _pool_cells(h: int, w: int, pool: int) -> tuple[np.ndarray, int]:
    """Cells of about pool x pool px (a grid of ceil(h / pool) x ceil(w / pool) near-equal cells)."""
    return _grid_cells(h, w, (-(-h // pool), -(-w // pool)))


def _cell_histograms(cell_of: np.ndarray, n_cells: int, bins: np.ndarray, n_bins: int, weights=None):
    """Histogram of `bins` (n, H, W) ints per cell: (n, n_cells, n_bins), summing `weights` (n, H, W) if given
    (else counting). Pixels with cell id n_cells (outside every cell) are dropped. One bincount, no one-hot."""
    n = len(bins)
    idx = (np.arange(n)[:, None, None] * (n_cells + 1) + cell_of) * n_bins + bins
    w = None if weights is None else weights.ravel()
    hist = np.bincount(idx.ravel(), weights=w, minlength=n * (n_cells + 1) * n_bins)
    return hist.reshape(n, n_cells + 1, n_bins)[:, :n_cells]


def _per_channel(imgs: np.ndarray) -> np.ndarray:
    """(n, H, W, C) -> (n*C, H, W), so texture and histogram features treat channels alike."""
    n, h, w, c = imgs.shape
    return imgs.transpose(0, 3, 1, 2).reshape(n * c, h, w)


# ----------------------------------------------------------------------------------------------------- Sobel
class Sobel(ImageFeatures):
    """Sobel edge magnitude averaged over `pool` x `pool` px cells, plus a magnitude-weighted orientation
    histogram (unsigned, `orientations` bins, L1-normalised) per cell of a coarser `grid`. The edge map keeps
    where the edges are, the histograms which way they run; there is no block normalisation, so unlike HOG the
    features keep contrast.
    """

    def __init__(self, pool=4, grid=(2, 2), orientations=8, shape=None, n_jobs=None):
        self.pool = pool  # edge-map cell side in pixels
        self.grid = grid  # (rows, cols) of orientation-histogram cells
        self.orientations = orientations  # bins over 0..180 degrees
        self.shape = shape
        self.n_jobs = n_jobs

    def _n_out(self, h, w, c):
        return c * (_pool_cells(h, w, self.pool)[1] + _grid_cells(h, w, self.grid)[1] * self.orientations)

    def _extract(self, imgs):
        n, h, w, c = imgs.shape
        p = np.pad(_per_channel(imgs), ((0, 0), (1, 1), (1, 1)), mode="reflect")  # OpenCV's BORDER_REFLECT_101
        dx = p[:, :, 2:] - p[:, :, :-2]  # (n*C, H+2, W): horizontal differences, then [1, 2, 1] vertically
        gx = (dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]) / 8
        dy = p[:, 2:] - p[:, :-2]
        gy = (dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]) / 8
        mag = np.sqrt(gx * gx + gy * gy)  # (n*C, H, W), intensity units per pixel
        zeros = np.zeros(mag.shape, dtype=np.int64)
        cell_of, cells = _pool_cells(h, w, self.pool)
        area = np.bincount(cell_of.ravel(), minlength=cells)
        edge = _cell_histograms(cell_of, cells, zeros, 1, mag)[..., 0] / area / 255.0  # (n*C, cells)
        ang = np.rad2deg(np.arctan2(gy, gx)) % 180
        b = np.minimum((ang * (self.orientations / 180.0)).astype(np.int64), self.orientations - 1)
        cell_of, cells = _grid_cells(h, w, self.grid)
        hist = _cell_histograms(cell_of, cells, b, self.orientations, mag)
        hist = hist / (hist.sum(-1, keepdims=True) + 1e-6)  # (n*C, cells, O)
        return np.concatenate([edge.reshape(n, -1), hist.reshape(n, -1)], axis=1)


# ------------------------------------------------------------------------------------------------ histograms
class IntensityHistogram(ImageFeatures):
    """Per-channel intensity histogram (`bins` equal bins over 0..255) per cell of a `grid`, as pixel fractions:
    the gray-level histogram of gray images, a colour histogram (Swain & Ballard, IJCV 1991) of RGB ones."""

    def __init__(self, bins=16, grid=(1, 1), shape=None, n_jobs=None):
        self.bins = bins  # equal-width bins over 0..255
        self.grid = grid  # (rows, cols) of cells
        self.shape = shape
        self.n_jobs = n_jobs

    def _n_out(self, h, w, c):
        return _grid_cells(h, w, self.grid)[1] * c * self.bins

    def _extract(self, imgs):
        n, h, w, c = imgs.shape
        b = np.clip((_per_channel(imgs) * (self.bins / 256.0)).astype(np.int64), 0, self.bins - 1)
        cell_of, cells = _grid_cells(h, w, self.grid)
        hist = _cell_histograms(cell_of, cells, b, self.bins) / np.bincount(cell_of.ravel())[:, None]
        return hist.reshape(n, c, cells, -1).transpose(0, 2, 1, 3).reshape(n, -1)


class Pixels(ImageFeatures):
    """Raw pixels in [0, 1], optionally averaged over `pool` x `pool` px cells (28x28 -> 14x14 for pool=2)."""

    def __init__(self, pool=1, shape=None, n_jobs=None):
        self.pool = pool  # pooling cell side in pixels; 1 keeps every pixel
        self.shape = shape
        self.n_jobs = n_jobs

    def _n_out(self, h, w, c):
        return _pool_cells(h, w, self.pool)[1] * c

    def _extract(self, imgs):
        n, h, w, c = imgs.shape
        if self.pool == 1:
            return imgs.reshape(n, -1) / np.float32(255)
        cell_of, cells = _pool_cells(h, w, self.pool)
        x = _per_channel(imgs)
        sums = _cell_histograms(cell_of, cells, np.zeros(x.shape, dtype=np.int64), 1, x)[..., 0]
        pooled = sums / np.bincount(cell_of.ravel()) / 255.0  # (n*C, cells)
        return pooled.reshape(n, c, cells).transpose(0, 2, 1).reshape(n, -1)


# ---------------------------------------------------------------------------------------------- k-means patches
class KMeansPatches(ImageFeatures):
    """Single-layer k-means patch features (Coates, Lee & Ng, AISTATS 2011): a dictionary of `k` centroids of
    brightness/contrast-normalised, ZCA-whitened `patch` x `patch` patches learned by k-means on the training
    images; every patch of an image is encoded by the soft threshold max(0, d.z - alpha) and max(0, -d.z - alpha)
    against each unit-length centroid d (Coates & Ng, ICML 2011), and the codes are average-pooled over a
    `grid` x `grid` layout: 2 k grid^2 features. Unlike the fixed extractors above, `fit` learns the dictionary.

    Normalisation and whitening fold into convolutions (no patch is materialised), run by PyTorch in chunks of
    CHUNK_KM images. Added to hog+lbp+pixels they lift the RBF SVM on Fashion-MNIST (bench/svm_torch.py);
    patches are taken at every position (a stride of 2 lost accuracy).
    """

    parallel_chunks = False  # PyTorch threads each convolution itself

    def __init__(self, k=100, patch=5, grid=3, alpha=0.25, samples=100_000, random_state=0, shape=None,
                 n_jobs=None):
        self.k = k  # centroids
        self.patch = patch  # patch side in pixels
        self.grid = grid  # pooling grid (rows = cols)
        self.alpha = alpha  # soft threshold on the whitened responses
        self.samples = samples  # random training patches k-means sees
        self.random_state = random_state
        self.shape = shape
        self.n_jobs = n_jobs  # unused: kept for the make_features signature

    # Coates et al. add 10 to the variance of 0..255 patches before dividing by its root; here pixels are 0..1.
    EPS_NORM = 10 / 255 ** 2
    EPS_ZCA = 0.01  # added to the eigenvalues of the whitening (normalised patches have unit variance)

    def fit(self, X, y=None):
        imgs = self._images(X, reset=True) / np.float32(255)
        n, h, w, c = imgs.shape
        self.image_shape_ = (h, w, c)
        ph, pw = min(self.patch, h), min(self.patch, w)
        rng = np.random.RandomState(self.random_state)
        m = min(self.samples, n * (h - ph + 1) * (w - pw + 1))
        i, r, s = rng.randint(0, n, m), rng.randint(0, h - ph + 1, m), rng.randint(0, w - pw + 1, m)
        rows, cols = np.arange(ph)[None, :, None], np.arange(pw)[None, None, :]
        p = imgs[i[:, None, None], r[:, None, None] + rows, s[:, None, None] + cols]  # (m, ph, pw, C)
        p = p.transpose(0, 3, 1, 2).reshape(m, -1).astype(np.float64)  # conv2d weight order (C, ph, pw)
        p = p - p.mean(1, keepdims=True)
        p /= np.sqrt(p.var(1, keepdims=True) + self.EPS_NORM)
        mu = p.mean(0)
        e, v = np.linalg.eigh(np.cov(p - mu, rowvar=False, bias=True).reshape(p.shape[1], p.shape[1]))
        zca = (v / np.sqrt(np.clip(e, 0, None) + self.EPS_ZCA)) @ v.T
        from sklearn.cluster import MiniBatchKMeans

        k = min(self.k, m)
        km = MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=self.random_state).fit((p - mu) @ zca)
        d = km.cluster_centers_
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        filters = zca @ d.T  # (C ph pw, k): d . zca (x - mu) = x . (zca d) - mu . (zca d)
        self.filters_ = filters.T.reshape(k, c, ph, pw).astype(np.float32)
        self.offsets_ = (mu @ filters).astype(np.float32)
        self._n_features_out = 2 * k * self.grid ** 2
        return self

    def _n_out(self, h, w, c):
        return self._n_features_out

    def _extract(self, imgs):
        import torch
        import torch.nn.functional as F

        wf = torch.from_numpy(self.filters_)
        k, c, ph, pw = wf.shape
        wsum = wf.sum((1, 2, 3))[None, :, None, None]
        off = torch.from_numpy(self.offsets_)[None, :, None, None]
        box = torch.full((1, c, ph, pw), 1 / (c * ph * pw))
        out = []
        with torch.no_grad():
            for s in range(0, len(imgs), CHUNK_KM):
                b = torch.from_numpy(np.ascontiguousarray(imgs[s:s + CHUNK_KM].transpose(0, 3, 1, 2))) / 255
                mean = F.conv2d(b, box)  # (n, 1, H', W') per-patch mean and variance
                sd = (F.conv2d(b * b, box) - mean * mean).clamp_min_(0).add_(self.EPS_NORM).sqrt_()
                r = (F.conv2d(b, wf) - mean * wsum).div_(sd).sub_(off)  # d . z for every patch and centroid
                pos = F.adaptive_avg_pool2d(F.relu(r - self.alpha), self.grid)
                neg = F.adaptive_avg_pool2d(r.add_(self.alpha).neg_().relu_(), self.grid)
                out.append(torch.cat([pos, neg], 1).flatten(1))
        return torch.cat(out).numpy()


CHUNK_KM = 64  # images per convolution: the (64, k, 24, 24) responses stay in cache (far faster than 2048)
