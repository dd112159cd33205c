"""Texture features on per-cell histograms: HOG (gradient orientations) and LBP (local binary patterns), with the
input convention of recgen/features/extractors.py. Both reproduce scikit-image's output (tests/test_features.py)."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from recgen.features.extractors import ImageFeatures, _cell_histograms, _grid_cells, _per_channel


# ------------------------------------------------------------------------------------------------------- HOG
class HOG(ImageFeatures):
    """Histograms of oriented gradients (Dalal & Triggs, CVPR 2005), one descriptor per cell size, concatenated.

    Same definition as `skimage.feature.hog(..., block_norm="L2-Hys")`: [-1, 0, 1] gradients on the channel with
    the largest magnitude, unsigned orientations, magnitude votes averaged over each cell, overlapping blocks of
    `block` x `block` cells (step one cell) L2-Hys normalised. Several cell sizes give a coarse-to-fine
    descriptor: on 28x28 Fashion-MNIST, 4 px cells see seams and straps, 7 px cells the garment's outline.
    soft=True splits each vote linearly between the two nearest orientation bins, as Dalal & Triggs do, so a
    small rotation moves weight smoothly instead of jumping bins; soft=False matches scikit-image exactly.
    """

    def __init__(self, cells=(4, 7), block=2, orientations=9, soft=True, shape=None, n_jobs=None):
        self.cells = cells  # cell side lengths in pixels, one descriptor each
        self.block = block  # block side in cells
        self.orientations = orientations  # bins over 0..180 degrees
        self.soft = soft  # linear vote interpolation between neighbouring orientation bins
        self.shape = shape  # (H, W[, C]) of flattened rows
        self.n_jobs = n_jobs  # threads over chunks of images

    def _layout(self, h, w, cell):
        # Cells and blocks larger than the image shrink to fit, so any image (even 1 x 1) has a descriptor.
        ch, cw = min(cell, h), min(cell, w)
        nh, nw = h // ch, w // cw  # scikit-image drops the remainder rows / columns
        return ch, cw, nh, nw, min(self.block, nh), min(self.block, nw)

    def _n_out(self, h, w, c):
        n = 0
        for cell in self.cells:
            _, _, nh, nw, bh, bw = self._layout(h, w, cell)
            n += (nh - bh + 1) * (nw - bw + 1) * bh * bw * self.orientations
        return n

    def _extract(self, imgs):
        gr, gc = np.zeros_like(imgs), np.zeros_like(imgs)  # float32 holds the integer differences exactly
        gr[:, 1:-1] = imgs[:, 2:] - imgs[:, :-2]  # (n, H, W, C); border rows / columns stay 0
        gc[:, :, 1:-1] = imgs[:, :, 2:] - imgs[:, :, :-2]
        mag2 = gr * gr + gc * gc
        if imgs.shape[3] == 1:
            gr, gc, mag2 = gr[..., 0], gc[..., 0], mag2[..., 0]
        else:
            pick = mag2.argmax(axis=3)[..., None]  # strongest channel per pixel
            gr, gc, mag2 = (np.take_along_axis(a, pick, 3)[..., 0] for a in (gr, gc, mag2))
        mag = np.sqrt(mag2)  # (n, H, W)
        o = self.orientations
        if self.soft:
            pos = np.arctan2(gr, gc) * np.float32(o / np.pi) - np.float32(0.5)  # in bins from bin 0's centre
            lo = np.floor(pos)
            frac = pos - lo
            wrap = np.arange(-o - 1, o + 1) % o  # pos lies in [-o - 0.5, o - 0.5]: fold both turns onto 0..o-1
            lo = lo.astype(np.int64) + (o + 1)
            votes = [(wrap[lo], mag * (1 - frac)), (wrap[lo + 1], mag * frac)]
        else:  # bin i holds [i*180/o, (i+1)*180/o) in float64, the comparisons of scikit-image's Cython loop
            ang = np.rad2deg(np.arctan2(gr.astype(np.float64), gc.astype(np.float64))) % 180
            votes = [(np.searchsorted((180.0 / o) * np.arange(1, o), ang, side="right"), mag)]
        return np.concatenate([self._describe(votes, cell) for cell in self.cells], axis=1)

    def _describe(self, votes, cell):
        n, h, w = votes[0][0].shape
        ch, cw, nh, nw, bh, bw = self._layout(h, w, cell)
        rows, cols = np.arange(h) // ch, np.arange(w) // cw
        inside = (rows[:, None] < nh) & (cols[None, :] < nw)
        cell_of = np.where(inside, rows[:, None] * nw + cols[None, :], nh * nw)
        hist = sum(_cell_histograms(cell_of, nh * nw, b, self.orientations, m) for b, m in votes)
        hist = hist.reshape(n, nh, nw, self.orientations) / (ch * cw)
        blocks = sliding_window_view(hist, (bh, bw), axis=(1, 2))  # (n, Bh, Bw, O, bh, bw)
        blocks = blocks.transpose(0, 1, 2, 4, 5, 3).reshape(n, blocks.shape[1] * blocks.shape[2], -1)
        eps2 = 1e-10  # scikit-image's eps = 1e-5, squared
        blocks = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + eps2)
        blocks = np.minimum(blocks, 0.2)  # L2-Hys: clip, then renormalise (Lowe, IJCV 2004)
        blocks = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + eps2)
        return blocks.reshape(n, -1)


# ------------------------------------------------------------------------------------------------------- LBP
class LBP(ImageFeatures):
    """Uniform local binary pattern histograms per cell (Ojala et al., TPAMI 2002; per-cell histograms as in
    Ahonen et al., ECCV 2004), per channel.

    Codes equal `skimage.feature.local_binary_pattern(img, points, radius, "uniform")` on uint8 images:
    `points` neighbours on a circle of `radius` px, bilinearly interpolated, zero outside the image; a pattern
    with at most two 0/1 transitions gets its number of ones (0..points), any other points + 1. Each cell of a
    `grid` (rows, cols) of near-equal cells gives the fraction of its pixels holding each of the points + 2 codes.
    """

    def __init__(self, points=8, radius=1, grid=(4, 4), shape=None, n_jobs=None):
        self.points = points  # neighbours sampled on the circle
        self.radius = radius  # circle radius in pixels
        self.grid = grid  # (rows, cols) of cells, one histogram each
        self.shape = shape
        self.n_jobs = n_jobs

    def _n_out(self, h, w, c):
        return _grid_cells(h, w, self.grid)[1] * c * (self.points + 2)

    def _extract(self, imgs):
        n, h, w, c = imgs.shape
        codes = self.codes(_per_channel(imgs).astype(np.float64))  # (n*C, H, W)
        cell_of, cells = _grid_cells(h, w, self.grid)
        counts = np.bincount(cell_of.ravel(), minlength=cells)[:, None]
        hist = _cell_histograms(cell_of, cells, codes, self.points + 2) / counts  # (n*C, cells, P+2)
        return hist.reshape(n, c, cells, -1).transpose(0, 2, 1, 3).reshape(n, -1)

    def codes(self, img: np.ndarray) -> np.ndarray:
        """float64 (n, H, W) on 0..255 -> uniform LBP codes (n, H, W) in 0..points + 1."""
        n, h, w = img.shape
        p, r = self.points, self.radius
        pad = int(math.ceil(r)) + 1
        padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))  # zeros: scikit-image's constant mode
        rows, cols = np.arange(h, dtype=np.float64)[:, None], np.arange(w, dtype=np.float64)[None, :]

        def shifted(dr: int, dc: int) -> np.ndarray:  # img[y + dr, x + dc] for every pixel, zero outside
            return padded[:, pad + dr:pad + dr + h, pad + dc:pad + dc + w]

        ones = np.zeros((n, h, w), dtype=np.uint8)
        changes = np.zeros((n, h, w), dtype=np.uint8)
        prev = None
        for i in range(p):
            # scikit-image's sample positions (rounded to 5 decimals) and interpolation order, per pixel, so that
            # ties (neighbour == centre counts as 1, common in flat regions) fall exactly as there
            rr = rows + np.round(-r * np.sin(2 * np.pi * i / p), 5)
            cc = cols + np.round(r * np.cos(2 * np.pi * i / p), 5)
            dr, dc = rr - np.floor(rr), cc - np.floor(cc)  # (H, 1), (1, W)
            r0, c0 = int(np.floor(rr[0, 0])), int(np.floor(cc[0, 0]))  # same integer offset for every pixel
            r1, c1 = r0 + bool(dr.any()), c0 + bool(dc.any())
            top = shifted(r0, c0) if c1 == c0 else (1 - dc) * shifted(r0, c0) + dc * shifted(r0, c1)
            if r1 == r0:
                sample = top
            else:
                bottom = shifted(r1, c0) if c1 == c0 else (1 - dc) * shifted(r1, c0) + dc * shifted(r1, c1)
                sample = (1 - dr) * top + dr * bottom
            bit = sample - img >= 0
            ones += bit
            if prev is not None:  # transitions along the circle, as scikit-image counts them (not wrapping)
                changes += bit != prev
            prev = bit
        return np.where(changes <= 2, ones, p + 1)
