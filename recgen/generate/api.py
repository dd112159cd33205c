"""Generation: train a GAN, VAE, PixelCNN or diffusion model through the shared loop; sample, interpolate, vary.

    run = recgen.generate.train(model="diffusion", data="fashion-mnist")          # class-conditional by default
    x, y = run.sample(16, class_="ankle boot", sampler="ddim", steps=20, guidance=2.0, seed=0)   # uint8 (16,28,28,1)
    x, y = run.sample(8, like="boot.png", strength=0.6)                          # SDEdit variations
    run = recgen.generate.load("runs/generate/diffusion-1")

Defaults (FAMILY_DEFAULTS) are sized for about 20 minutes on 2 CPU cores on Fashion-MNIST; bench/generate.py
measures them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from recgen.classify.api import load_splits
from recgen.config import from_dict, model_args, to_dict
from recgen.data import ImageSet, has_test_split
from recgen.defaults import GENERATE_MIN_STEPS, resolve_for_data
from recgen.generate import gan
from recgen.generate.common import save_grid
from recgen.generate.config import (FAMILIES, FAMILY_DEFAULTS, GenerateConfig, arch_config,  # noqa: F401 (re-export)
                                    cond_mode, resolve)
from recgen.generate.run import GeneratorRun, save_samples  # noqa: F401 (re-export)
from recgen.runs import Run, reopen_for_resume
from recgen.sanity import training_stats
from recgen.train import Trainer, resolve_device


# ---------------------------------------------------------------------------------------------------- train/load
def train(**options: Any) -> GeneratorRun:
    """Train a generator; every keyword is a GenerateConfig field (the same names as the CLI flags)."""
    if options.get("resume"):
        return _resume(options)
    cfg = resolve(from_dict(GenerateConfig, options, "generate train"))
    resolve_device(cfg.device)  # a missing GPU is reported before a run directory exists
    train_set, val, _ = load_splits(cfg)
    arch = arch_config(cfg, train_set.shape, train_set.num_classes)
    cfg, resolved = resolve_for_data(cfg, options, len(train_set), train_set.shape[1:],
                                     reference=FAMILY_DEFAULTS[cfg.model], min_steps=GENERATE_MIN_STEPS)
    run = Run.create("generate", cfg.name or cfg.model, cfg.out)
    run.write_config("generate", to_dict(cfg), data_fingerprint=train_set.fingerprint(), classes=train_set.classes,
                     n_train=len(train_set), n_val=len(val) if val else 0,
                     input_stats=training_stats(train_set.x, cfg.seed), **resolved)
    run.write_model_json(cfg.model, dataclasses.asdict(arch), classes=train_set.classes,
                         input_shape=list(train_set.shape))
    return _fit(run, cfg, arch, train_set, val, resume=False)


def _fit(run: Run, cfg: GenerateConfig, arch, train_set: ImageSet, val: ImageSet | None, resume: bool):
    mod, _, task_cls = FAMILIES[cfg.model]
    torch.manual_seed(cfg.seed)
    modules = mod.build(arch)
    device = resolve_device(cfg.device)
    task = task_cls(modules, arch, cfg, val.tensors() if val is not None else None, train_set.classes, device)
    hist = Trainer(task, cfg, run, device).fit(train_set.tensors(), resume=resume)
    extra = {}
    if cfg.model == "gan":
        last = (run.read_metrics() or [{}])[-1]
        extra["health"] = gan.health(last.get("d_loss", 1.0), last.get("g_loss", 0.0),
                                     last.get("gan_spread_ratio", 1.0),
                                     {"the least varied class": last.get("gan_min_class_spread", 1.0)})
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2), **extra)
    result = GeneratorRun(run)
    if cfg.model in ("gan", "vae"):
        x, labels = result.interpolate(n=8, seed=0)
        save_grid(x, run.plots / "interpolation.png", cols=8)
    if val is not None or has_test_split(cfg.data):  # a subset handed over as .npz may have neither
        result.evaluate()  # writes eval-*.json and report.html
    else:
        result.write_report()
    return result


def _resume(options: dict[str, Any]) -> GeneratorRun:
    if Run.open(options["resume"], "generate").read_model_json().get("family") == "student":  # issue 34
        from recgen.generate.student import distill

        return distill(**options)
    run, cfg, (train_set, val, _) = reopen_for_resume(options, "generate", GenerateConfig, load_splits)
    run.update_config(options=to_dict(cfg))
    info = run.read_model_json()
    arch = model_args(FAMILIES[info["family"]][1], info, run.path / "model.json")
    return _fit(run, cfg, arch, train_set, val, resume=True)


def load(path: str | Path) -> GeneratorRun:
    return GeneratorRun(Run.open(path, "generate"))
