"""Training defaults that follow the data: the batch size, learning rate and epochs a run uses where the user did
not set them, resolved from what the run sees (training images, image size, optimizer).

The tasks' defaults were tuned on Fashion-MNIST's 60,000 images of 28x28 (classify: batch 256, lr 0.4, 20 epochs).
Kept on 1,800 images they give 7 optimizer steps an epoch and a learning rate sized for far larger batches, and the
network predicts one class. The rule, in order:

    batch   the reference batch, halved until an epoch holds at least STEPS_PER_EPOCH steps and a step sees no more
            pixels than a reference step of 28x28 images, never below MIN_BATCH (nor above the images there are)
    lr      the reference rate scaled with the batch: linearly for SGD (arXiv 1706.02677), by the square root for
            Adam/AdamW (arXiv 2205.10287)
    epochs  the reference epochs, or as many more as give the run at least `min_steps` optimizer steps

At the reference size every rule is a no-op, so full-data runs keep the defaults their benchmarks were measured with.
Options the user set stay as given (a given batch size still rescales a learning rate left to the default).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any, Iterable

REFERENCE_HW = (28, 28)  # the image size most tasks' defaults were tuned at (detect: its 96x96 canvas)
STEPS_PER_EPOCH = 32  # fewer steps an epoch and the per-epoch validation, EMA and schedule become too coarse
MIN_BATCH = 16  # BatchNorm statistics get noisy below this
MIN_STEPS = 500  # optimizer steps a default run takes at least: enough for warmup plus a decay to matter
# Generators learn a whole distribution, not a decision boundary: they need more steps to draw anything recognisable
GENERATE_MIN_STEPS = 1000


def reference_of(cfg) -> dict[str, Any]:
    """A config class's own defaults of batch_size, lr and epochs (what its figures were measured with)."""
    fields = {f.name: f.default for f in dataclasses.fields(cfg)}
    return {k: fields[k] for k in ("batch_size", "lr", "epochs")}


def auto_batch(reference: int, n: int, hw: tuple[int, int], reference_hw: tuple[int, int] = REFERENCE_HW) -> int:
    """The reference batch halved until n images give STEPS_PER_EPOCH steps and a step is no larger, in pixels,
    than a reference step; at least MIN_BATCH, at most n."""
    bs = reference
    pixels, ref_pixels = max(1, hw[0] * hw[1]), reference_hw[0] * reference_hw[1]
    while bs > MIN_BATCH and (n // bs < STEPS_PER_EPOCH or bs * pixels > reference * ref_pixels):
        bs //= 2
    return max(1, min(max(bs, MIN_BATCH), n))


def scaled_lr(lr: float, batch: int, reference_batch: int, optimizer: str) -> float:
    """`lr` (tuned at `reference_batch`) at `batch`: linear rule for SGD, square-root rule for Adam-type."""
    ratio = batch / reference_batch
    out = lr * (ratio if optimizer == "sgd" else math.sqrt(ratio))
    return float(f"{out:.4g}")  # config.yaml records a readable number


def resolve_training(cfg, given: Iterable[str], n: int, hw: tuple[int, int], reference: dict[str, Any] | None = None,
                     min_steps: int = MIN_STEPS, what: str = "training images",
                     reference_hw: tuple[int, int] = REFERENCE_HW):
    """(cfg with batch_size, lr and epochs resolved where not in `given`, a one-line note of what changed and why,
    or '' when nothing did). n: training images (or scenes); hw: their height and width; reference: the batch_size,
    lr and epochs the defaults were tuned with (default: the config class's own), at `reference_hw`."""
    given = set(given)
    ref = reference or reference_of(cfg)
    changes: dict[str, Any] = {}
    why: list[str] = []
    bs = cfg.batch_size
    if "batch_size" not in given:
        bs = auto_batch(ref["batch_size"], n, hw, reference_hw)
        if bs != cfg.batch_size:
            changes["batch_size"] = bs
            by_pixels = bs < auto_batch(ref["batch_size"], n, reference_hw, reference_hw)
            why.append(f"batch_size {bs} (at {ref['batch_size']} an epoch is {n // min(ref['batch_size'], n)} "
                       f"step(s){'; a step of these larger images costs more' if by_pixels else ''})")
    if "lr" not in given and bs != ref["batch_size"]:
        lr = scaled_lr(ref["lr"], bs, ref["batch_size"], cfg.optimizer)
        if lr != cfg.lr:
            changes["lr"] = lr
            rule = "linearly" if cfg.optimizer == "sgd" else "by the square root"
            why.append(f"lr {lr:g} ({ref['lr']:g} scaled {rule} with the batch)")
    if "epochs" not in given:
        per_epoch = max(1, n // max(1, min(bs, n)))
        epochs = max(cfg.epochs, math.ceil(min_steps / per_epoch))
        if epochs != cfg.epochs:
            changes["epochs"] = epochs
            why.append(f"epochs {epochs} (at least {min_steps} optimizer steps, {per_epoch} an epoch)")
    if not changes:
        return cfg, ""
    note = f"defaults for {n} {what} of {hw[0]}x{hw[1]}: " + ", ".join(why)
    return dataclasses.replace(cfg, **changes), note


def announce(note: str) -> None:
    """The resolution's one line, on stderr beside the training progress."""
    if note:
        print(note, file=sys.stderr, flush=True)


def given_options(options: dict[str, Any], cfg) -> set[str]:
    """The options the user set: the keys passed, less any left at a "fill in for me" value (filled_later)."""
    later = getattr(cfg, "filled_later", ())
    return {k for k, v in options.items() if not (k in later and v == (-1 if k == "ema" else 0))}


def resolve_for_data(cfg, options: dict[str, Any], n: int, hw: tuple[int, int],
                     reference: dict[str, Any] | None = None, min_steps: int = MIN_STEPS,
                     what: str = "training images",
                     reference_hw: tuple[int, int] = REFERENCE_HW) -> tuple[Any, dict[str, Any]]:
    """resolve_training for a run about to train on n images of hw; returns the config and what config.yaml
    records of it ({'resolved': note} or {}). The training loop announces the note once the run exists."""
    cfg, note = resolve_training(cfg, given_options(options, cfg), n, hw, reference, min_steps, what, reference_hw)
    return cfg, ({"resolved": note} if note else {})
