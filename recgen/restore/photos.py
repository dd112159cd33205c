"""Training a restorer on photographs of any size (`recgen restore train --data photos` or a folder of photos).

The network and its composition are the restorer's (recgen.restore.restorer); what differs is the data: each
optimizer step cuts fresh random patches from the photos (recgen.data.photos.PatchSampler, seeded by the step),
so an "epoch" is `epoch_patches` patches and nothing is resized. Photos train one RGB network (grey photos and
a share of greyed colour patches included), which restores grey photos as well.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from recgen.config import from_dict, to_dict
from recgen.data.photos import PatchSampler, fingerprint, load_photos
from recgen.restore.config import PHOTO_DEFAULTS, PHOTO_TASK_DEFAULTS, RestoreConfig
from recgen.restore.restorer import RestorerConfig, RestoreTask, build
from recgen.runs import Run
from recgen.sanity import check_restorer_gain, training_stats
from recgen.train import BUDGET_SHARE, Trainer, resolve_device, steps_in_budget

VAL_PATCHES = 32  # fixed validation patches (twice the training side) drawn from the training photos


class PhotoRestoreTask(RestoreTask):
    """RestoreTask whose batches are patch indices: each step draws its own patches from the photos."""

    def __init__(self, sampler: PatchSampler, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sampler = sampler

    def training_step(self, batch, g):
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=g)))
        x = torch.from_numpy(self.sampler.draw(len(batch[0]), rng)).permute(0, 3, 1, 2).float().div_(255)
        return super().training_step((x.to(self.device),), g)


def photo_config(options: dict[str, Any]) -> tuple[RestoreConfig, dict[str, Any]]:
    """The run's options: PHOTO_DEFAULTS (and the task's PHOTO_TASK_DEFAULTS) where the user left one out, and the
    note config.yaml records of it."""
    task = options.get("task", RestoreConfig.task)
    defaults = {**PHOTO_DEFAULTS, **PHOTO_TASK_DEFAULTS.get(task, {})}
    filled = {k: v for k, v in defaults.items() if k not in options}
    cfg = from_dict(RestoreConfig, {**filled, **options}, "restore train")
    note = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in filled.items())
    return cfg, ({"resolved": f"photo defaults: {note}"} if note else {})


def train_photos(options: dict[str, Any], arch: RestorerConfig, corrupt) -> Run:
    """A restorer trained on patches of photos under the corruption `corrupt` (restore.api.corruptions); returns
    its run. Epochs left out are as many as the time budget allows on this machine (steps_in_budget)."""
    cfg, resolved = photo_config(options)
    photos = load_photos(cfg.data, "train")
    channels = cfg.channels or 3
    arch = dataclasses.replace(arch, channels=channels)
    sampler = PatchSampler(photos, cfg.patch, channels, zoom=cfg.zoom)
    val_side = 2 * cfg.patch if any(min(im.shape[:2]) >= 2 * cfg.patch for _, im in photos) else cfg.patch
    val = PatchSampler(photos, val_side, channels).draw(VAL_PATCHES, np.random.default_rng(23))
    val = torch.from_numpy(val).permute(0, 3, 1, 2).float().div(255)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    task = PhotoRestoreTask(sampler, build(arch), arch, corrupt, val, device, cfg.loss)
    if "epochs" not in options and cfg.time_budget:
        steps = steps_in_budget(task, cfg, device, cfg.time_budget, (torch.arange(cfg.batch_size),))
        per_epoch = max(1, cfg.epoch_patches // cfg.batch_size)
        cfg = dataclasses.replace(cfg, epochs=max(1, steps // per_epoch))
        note = f"epochs={cfg.epochs} ({cfg.epochs * per_epoch} steps fit {BUDGET_SHARE:.0%} of time_budget here)"
        resolved = {"resolved": "; ".join([*resolved.values(), note])}
    run = Run.create("restore", cfg.name or cfg.task, cfg.out)
    stats = training_stats(sampler.draw(256, np.random.default_rng(cfg.seed)), cfg.seed)
    run.write_config("restore", to_dict(cfg), data_fingerprint=fingerprint(photos), classes=["photo"],
                     n_train=len(photos), n_val=VAL_PATCHES, photos=[n for n, _ in photos], input_stats=stats,
                     **resolved)
    run.write_model_json("restorer", dataclasses.asdict(arch), classes=["photo"],
                         input_shape=[channels, cfg.patch, cfg.patch])
    hist = Trainer(task, cfg, run, device).fit((torch.arange(cfg.epoch_patches),))
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2))
    check_restorer_gain(hist.rows, task.input_psnr(), str(run.path))
    return run


__all__ = ["PhotoRestoreTask", "photo_config", "train_photos"]
