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

from recgen.config import model_args
from recgen.data import ImageSet, has_test_split
from recgen.data.splits import load_splits
from recgen.defaults import GENERATE_MIN_STEPS, resolve_for_data
from recgen.generate.common import save_grid
from recgen.generate.config import FAMILY_DEFAULTS, GenerateConfig, arch_config, cond_mode, resolve  # noqa: F401 (re-export)
from recgen.generate.family import get_family
from recgen.generate.run import GeneratorRun, save_samples  # noqa: F401 (re-export)
from recgen.runs import Run
from recgen.sanity import training_stats
from recgen.task import TaskSteps
from recgen.train import Trainer, resolve_device


# ---------------------------------------------------------------------------------------------------- train/load
def _prepare(cfg: GenerateConfig, options: dict[str, Any], splits: tuple) -> tuple[GenerateConfig, dict, Any]:
    """The family's architecture for this data, and batch size, learning rate and epochs sized to it."""
    train_set = splits[0]
    arch = arch_config(cfg, train_set.shape, train_set.num_classes)
    cfg, resolved = resolve_for_data(cfg, options, len(train_set), train_set.shape[1:],
                                     reference=FAMILY_DEFAULTS[cfg.model], min_steps=GENERATE_MIN_STEPS)
    return cfg, resolved, arch


def _fit_run(run: Run, cfg: GenerateConfig, splits: tuple, arch, resume: bool) -> GeneratorRun:
    train_set, val, _ = splits
    if resume:
        info = run.read_model_json()
        arch = model_args(get_family(info["family"], f"{run.path / 'model.json'}: family").arch_class, info,
                          run.path / "model.json")
    else:
        run.write_model_json(cfg.model, dataclasses.asdict(arch), classes=train_set.classes,
                             input_shape=list(train_set.shape))
    return _fit(run, cfg, arch, train_set, val, resume=resume)


STEPS = TaskSteps("generate", GenerateConfig, GeneratorRun, load_splits, _fit_run, resolve=resolve, prepare=_prepare,
                  record=lambda cfg, splits: {"input_stats": training_stats(splits[0].x, cfg.seed)})


def train(**options: Any) -> GeneratorRun:
    """Train a generator; every keyword is a GenerateConfig field (the same names as the CLI flags)."""
    if options.get("resume"):
        family = get_family(str(Run.open(options["resume"], "generate").read_model_json().get("family")),
                            f"{options['resume']}/model.json: family")
        if family.run_config is not None:  # a run made by another command (a student: `generate distill`)
            return family.resume(options)
    return STEPS.train(options)


def load(path: str | Path) -> GeneratorRun:
    return STEPS.load(path)


def _fit(run: Run, cfg: GenerateConfig, arch, train_set: ImageSet, val: ImageSet | None, resume: bool):
    family = get_family(cfg.model)
    torch.manual_seed(cfg.seed)
    modules = family.build(arch)
    device = resolve_device(cfg.device)
    val_tensors = val.tensors() if val is not None else None
    task = family.task_class(modules, arch, cfg, val_tensors, train_set.classes, device)
    hist = Trainer(task, cfg, run, device).fit(train_set.tensors(), resume=resume)
    health = family.health((run.read_metrics() or [{}])[-1])
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2),
                      **({"health": health} if health else {}))
    result = GeneratorRun(run)
    if family.has_latent:  # a walk through a latent space costs one decoding: cheap enough to show every run
        x, labels = result.interpolate(n=8, seed=0)
        save_grid(x, run.plots / "interpolation.png", cols=8)
    if val is not None or has_test_split(cfg.data):  # a subset handed over as .npz may have neither
        result.evaluate()  # writes eval-*.json and report.html
    else:
        result.write_report()
    return result
