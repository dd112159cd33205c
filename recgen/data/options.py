"""Where a task's images come from: the data options classify, generate and restore share, declared once (the same
CLI flags, config.yaml keys and Python keywords in each). Free of torch, like the task configs built on it."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import CHANNELS, FRACTION, NOT_NEGATIVE, Options, opt
from recgen.errors import RecgenError


@dataclass
class DataOptions(Options):
    data: str = opt("fashion-mnist", "named dataset or path (IDX folder, CIFAR folder, .npz, image folder)")
    data_dir: str = opt("", "where named datasets are looked for first (then $RECGEN_DATA, then system "
                        "paths)")
    size: int = opt(0, "resize images to size x size (0 = the dataset's own size)", check=NOT_NEGATIVE)
    channels: int = opt(0, "convert to 1 (gray) or 3 (RGB) channels (0 = the dataset's own)", check=CHANNELS)
    limit: int = opt(0, "use at most this many training images per class (0 = all)", check=NOT_NEGATIVE)
    eval_limit: int = opt(0, "evaluate on at most this many test images per class (0 = all; --limit leaves "
                          "the test set whole)", check=NOT_NEGATIVE)
    val_fraction: float = opt(0.1, "share of the training set held out for per-epoch validation (0 = none)",
                              check=FRACTION)


def augment_spec(name: str, value: str) -> str:
    """'+'-joined augmentation names that recgen.data.build_augment knows."""
    from recgen.data import build_augment  # torch and kornia: loaded only once options are built

    try:
        build_augment(value)
    except RecgenError as e:
        raise RecgenError(f"{name}{str(e).removeprefix('augment')}") from None
    return value
