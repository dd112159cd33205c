"""One-line warnings for runs and inputs that are technically fine but will not mean what the user hopes: too few
optimizer steps, accuracy at chance, a prompt unlike every training description, an input unlike the training
images. Each is a `RecgenWarning` (the CLI prints it as one `warning: ...` line)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

WARN_STEPS = 200  # below this many optimizer steps the warmup and decay of the schedule have nothing to work with
# The far-prompt check's bounds, as quantiles of the training descriptions' leave-one-out best cosines: below the
# floor's similarity a prompt is far whatever it resembles; above the ceiling's it is a wording of a known item.
PROMPT_FLOOR = 0.005
PROMPT_CEILING = 0.05
SIZE_RATIO = 10  # an input side this many times larger or smaller than the training images' is resampled away
COLOUR = 0.08  # mean channel spread (max - min of R, G, B, in [0, 1]) above which an image is in colour
STAT_MARGIN = 0.05  # slack around the training images' range of each intensity statistic
STAT_QUANTILES = (0.005, 0.995)  # the "range" of a statistic over the training images, ignoring rare outliers


class RecgenWarning(UserWarning):
    """A result or input that will likely disappoint; the command still does what it was asked."""


def warn(message: str) -> None:
    warnings.warn(message, RecgenWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------- training
NO_GAIN_DB = 0.05  # a restorer whose validation PSNR is within this of its input's restores nothing


def check_restorer_gain(rows: list[dict[str, Any]], input_psnr: float | None, where: str) -> None:
    """Warn when a restorer's training ended no better than its input on the validation images: it either learned
    nothing, or collapsed (after a loss spike its correction went flat and stayed there) and only an early epoch's
    weights, the best kept, do anything."""
    seen = [(i, r["val_psnr"]) for i, r in enumerate(rows) if r.get("val_psnr") is not None]
    if input_psnr is None or not seen:
        return
    best_i, best = max(seen, key=lambda p: p[1])
    last = seen[-1][1]
    if best <= input_psnr + NO_GAIN_DB:
        warn(f"{where}: the restorer learned nothing usable (validation PSNR {best:.2f} dB, the input's "
             f"{input_psnr:.2f} dB); train longer, or with a lower --lr")
    elif last <= input_psnr + NO_GAIN_DB:
        epoch = rows[best_i].get("epoch", best_i + 1)
        warn(f"{where}: training collapsed: the last epoch's validation PSNR ({last:.2f} dB) is the input's "
             f"({input_psnr:.2f} dB); the best weights kept are epoch {epoch:g}'s ({best:.2f} dB). "
             f"Train again with a lower --lr or another --seed")


def check_steps(epochs: int, batch_size: int, n: int, what: str = "training", steps: int = 0) -> int:
    """Warn when the planned run takes fewer than WARN_STEPS optimizer steps; returns the planned steps (`steps`
    where --train-steps gave them, else epochs of n // batch_size)."""
    bs = max(1, min(batch_size, n))
    planned = steps or max(1, n // bs) * epochs
    if planned < WARN_STEPS:
        how = "--train-steps" if steps else f"{epochs} epoch(s) of {n // bs} at batch {bs}"
        fix = "" if steps else ": give more --epochs or a smaller --batch-size"
        warn(f"{what} takes only {planned} optimizer steps ({how}); the learning-rate schedule needs a few "
             f"hundred{fix}")
    return planned


def chance_margin(p: float, n: int) -> float:
    """Two binomial standard errors of a guessing rate p measured on n images: how far above p luck still reaches."""
    return 2 * math.sqrt(p * (1 - p) / max(1, n))


def chance_level(y: np.ndarray) -> tuple[float, float]:
    """(accuracy of always answering the most common class, two binomial standard errors of it on len(y) images)."""
    y = np.asarray(y)
    p = float(np.bincount(y).max() / len(y)) if len(y) else 1.0
    return p, chance_margin(p, len(y))


def at_chance(accuracy: float, y: np.ndarray) -> bool:
    p, margin = chance_level(y)
    return accuracy <= p + margin


def check_accuracy(accuracy: float, y: np.ndarray, what: str, hint: str) -> bool:
    """Warn when `accuracy` on labels `y` is no better than chance; True when it warned."""
    if not at_chance(accuracy, y):
        return False
    p, margin = chance_level(y)
    warn(f"{what} {accuracy:.4f} on {len(y)} images is at chance (the most common class alone gives {p:.4f}, "
         f"+/- {margin:.4f}): {hint}")
    return True


def check_samples(recognizability: float, labels: np.ndarray, judge_on_real: float, real_labels: np.ndarray,
                  generator: str) -> bool:
    """Warn when a judge that tells real images apart recognises a generator's class-conditional samples (asked
    for `labels`) only at chance; True when it warned. A judge blind to real classes says nothing of samples."""
    if at_chance(judge_on_real, real_labels):
        return False
    return check_accuracy(recognizability, labels, f"{generator}: recognizability of its samples",
                          "the judge sees no class in them; train the generator longer or check its conditioning")


# ----------------------------------------------------------------------------------------------- prompts
def prompt_distance(emb, table, classes: list[str], k: int = 3) -> tuple[float, list[tuple[str, float]]]:
    """(best cosine of unit embedding `emb` (384,) to any training description in `table` (K, P, 384), the `k`
    nearest classes with their best cosine)."""
    sims = (table @ emb).amax(-1)  # (K,)
    order = sims.argsort(descending=True)[:k].tolist()
    return float(sims.max()), [(classes[i], round(float(sims[i]), 3)) for i in order]


def far_bounds(table) -> tuple[float, float]:
    """(floor, ceiling) of the far-prompt check from the training descriptions themselves: each one's best cosine
    to the others (itself and duplicates left out) is what a new wording of a known item scores; the floor is the
    PROMPT_FLOOR quantile of those, the ceiling the PROMPT_CEILING quantile."""
    import torch

    flat = table.reshape(-1, table.shape[-1])
    s = flat @ flat.T
    loo = s.masked_fill(s > 0.9999, -1.0).amax(1)
    return float(torch.quantile(loo, PROMPT_FLOOR)), float(torch.quantile(loo, PROMPT_CEILING))


def check_prompt(prompt: str, emb, table, classes: list[str], unrelated=None) -> bool:
    """Warn when a prompt is far from every description the model trained on; True when it warned. Far: below
    the floor of far_bounds, or below its ceiling and nearer to one of the `unrelated` descriptions (M, 384;
    default: the prompt file's) than to any training one, a nearest-neighbour vote between "a garment as the
    model learned it" and "something else"."""
    best, near = prompt_distance(emb, table, classes)
    floor, ceiling = far_bounds(table)
    if unrelated is None:
        from recgen.text import embed_texts, unrelated_prompts

        names = unrelated_prompts()
        unrelated = embed_texts(names) if names else table.new_zeros(0, table.shape[-1])
    # an "unrelated" description as close to the training ones as they are to each other names a class here
    unrelated = unrelated[(unrelated @ table.reshape(-1, table.shape[-1]).T).amax(1) < ceiling] \
        if len(unrelated) else unrelated
    other = float((unrelated @ emb).max()) if len(unrelated) else -1.0
    if best >= ceiling or (best >= floor and other <= best):
        return False
    why = f"below {floor:.2f}" if best < floor else f"nearer to a description of something else, {other:.2f}"
    names = ", ".join(f"{c} {s:.2f}" for c, s in near)
    warn(f"prompt {prompt!r} is far from every training description (best cosine {best:.2f}, {why}; nearest "
         f"classes: {names}); the samples will follow none of them closely")
    return True


# ------------------------------------------------------------------------------------------------ inputs
def image_stats(x: np.ndarray) -> np.ndarray:
    """Per-image intensity statistics (N, 3) of uint8 (N, H, W, C): mean, standard deviation and the mean of the
    one-pixel border (object-on-background data such as Fashion-MNIST has a dark border, photographs do not)."""
    g = x.astype(np.float32).mean(-1) / 255.0  # (N, H, W) gray
    border = np.concatenate([g[:, 0], g[:, -1], g[:, :, 0], g[:, :, -1]], axis=1)
    return np.stack([g.mean((1, 2)), g.std((1, 2)), border.mean(1)], axis=1)


STAT_NAMES = ("mean intensity", "contrast", "border intensity")


def training_stats(x: np.ndarray, seed: int = 0, n: int = 2000) -> dict[str, Any]:
    """What check_inputs compares new images with, kept in config.yaml: the range of each image statistic over (a
    sample of) the training images at the size and channels the model sees."""
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    s = image_stats(x[idx])
    lo, hi = np.quantile(s, STAT_QUANTILES, axis=0)
    return {name: [round(float(a), 4), round(float(b), 4)] for name, a, b in zip(STAT_NAMES, lo, hi)}


def colourful(im: np.ndarray) -> bool:
    return im.ndim == 3 and im.shape[-1] == 3 and \
        float((im.max(-1).astype(np.float32) - im.min(-1)).mean() / 255.0) > COLOUR


def unlike(im: np.ndarray, shape: tuple[int, int, int], stats: dict[str, Any] | None,
           fitted: np.ndarray | None = None) -> list[str]:
    """Why uint8 image `im` (H, W[, C]) at its own size is unlike training images of (C, H, W) `shape` with
    `stats` (training_stats; None for runs made before they were recorded). `fitted`: the image as the model sees
    it (its size and channels), for the intensity statistics."""
    c, h, w = shape
    why = []
    if c == 1 and colourful(im):
        why.append("a colour image on a grayscale model")
    ih, iw = im.shape[:2]
    if max(ih / h, h / ih, iw / w, w / iw) > SIZE_RATIO:
        why.append(f"{iw}x{ih} pixels against the training images' {w}x{h}")
    if stats and fitted is not None:
        s = image_stats(fitted[None])[0]
        for name, v in zip(STAT_NAMES, s):
            lo, hi = stats.get(name, (-math.inf, math.inf))
            if not lo - STAT_MARGIN <= v <= hi + STAT_MARGIN:
                why.append(f"{name} {v:.2f} outside the training images' {lo:.2f}-{hi:.2f}")
    return why


def check_inputs(names: list[str], images: list[np.ndarray], fitted: np.ndarray | None,
                 shape: tuple[int, int, int], stats: dict[str, Any] | None, model: str) -> list[str]:
    """One warning per input unlike the training data of `model`; returns the names warned about."""
    return warn_unlike(names, [unlike(im, shape, stats, None if fitted is None else fitted[i])
                               for i, im in enumerate(images)], model)


def warn_unlike(names: list[str], reasons: list[list[str]], model: str) -> list[str]:
    """One warning per input with reasons (from `unlike`); returns the names warned about."""
    flagged = []
    for name, why in zip(names, reasons):
        if why:
            flagged.append(name)
            warn(f"{name} is unlike the images {model} was trained on ({'; '.join(why)}): its output may mean "
                 "little")
    return flagged
