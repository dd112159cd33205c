"""The (train, val, test) ImageSets a task's data options ask for: the one place classify, generate and restore
(and everything reading their runs back) draw their images from."""

from __future__ import annotations

from recgen.data.dataset import ImageSet, limit_per_class, train_val_split
from recgen.data.options import DataOptions
from recgen.data.sources import has_test_split, load_dataset


def load_splits(cfg: DataOptions) -> tuple[ImageSet, ImageSet | None, ImageSet | None]:
    """(train, val, test) as a task config's data options (and its seed) ask; val is None when val_fraction is 0, test None without a test split
    (and at most eval_limit images per class when that is set)."""
    size, ch = cfg.size or None, cfg.channels or None
    full = load_dataset(cfg.data, "train", cfg.data_dir or None, size, ch)
    if cfg.limit:
        full = limit_per_class(full, cfg.limit, cfg.seed)
    train, val = (full, None) if cfg.val_fraction == 0 else train_val_split(full, cfg.val_fraction, cfg.seed)
    test = None
    if has_test_split(cfg.data):
        test = load_dataset(cfg.data, "test", cfg.data_dir or None, size or train.x.shape[1], ch or train.x.shape[-1])
        if getattr(cfg, "eval_limit", 0):  # runs written before the option have none
            test = limit_per_class(test, cfg.eval_limit, cfg.seed)
    return train, val, test
