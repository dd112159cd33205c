"""Restoration: train a restorer through the shared loop, or restore with a trained diffusion generator.

    run = recgen.restore.train(task="denoise", data="fashion-mnist")     # a restorer run in runs/restore/
    model = recgen.restore.load("runs/restore/denoise-1")                # or a diffusion run in runs/generate/
    x = model.restore(recgen.restore.corrupt(clean, "denoise", seed=0, sigma=0.2))
    recgen.restore.evaluate("runs/restore/denoise-1", task="denoise", judge="runs/classify/cnn-1")
    recgen.restore.restore_files("runs/restore/inpaint-1", "inpaint", ["shirt.png"], out="restored")

Both kinds of model answer the same three calls: `check(task, method, scale, steps, ensemble, adapt)`,
`restore(obs, ...)` and `describe(...)`; the classical baselines (recgen.restore.baselines) run beside them everywhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from recgen.config import ints, model_args
from recgen.data.photos import is_photo_data
from recgen.data.splits import load_splits
from recgen.defaults import resolve_for_data
from recgen.errors import RecgenError
from recgen.restore import guided, photos
from recgen.restore.config import METHODS, MIN_SIDE, RestoreConfig
from recgen.restore.degrade import SCALES, TASKS, Observation, check_scale
from recgen.restore.evaluate import evaluate as evaluate_model
from recgen.restore.restorer import (
    Corruptions,
    RestorerConfig,
    RestoreTask,
    adapt_net,
    build,
    check_adapt,
    check_ensemble,
    restore,
)
from recgen.runs import Run, TrainedRun, load_module, module_state
from recgen.sanity import check_restorer_gain, training_stats
from recgen.task import TaskSteps
from recgen.train import Trainer, resolve_device, resolve_precision, seeded


def _check(cfg: RestoreConfig) -> RestorerConfig:
    """The restorer's architecture from checked options (each option's range is checked when the config is
    built, recgen.config.opt)."""
    check_scale(cfg.scale)
    widths = ints(cfg.widths, "widths")
    return RestorerConfig(task=cfg.task, scale=cfg.scale, widths=widths, blocks=cfg.blocks,
                          prefill=cfg.prefill if cfg.task == "inpaint" else "", unshuffle=cfg.unshuffle)


def check_method(task: str, method: str, steps: int = 0) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 1000:
        raise RecgenError(f"steps must be 0 (the method's default) to 1000, got {steps!r}")
    if task not in TASKS:
        raise RecgenError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if method not in METHODS:
        raise RecgenError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def corruptions(cfg: RestoreConfig) -> Corruptions:
    return Corruptions(mask_kind=cfg.mask_kind, ratio=(cfg.ratio_min, cfg.ratio_max), sigma=(0.0, cfg.sigma_max),
                       scale=cfg.scale, quality=(cfg.quality_min, cfg.quality_max))


# --------------------------------------------------------------------------------------------------- run objects
class RestorerRun(TrainedRun):
    """A trained restorer in its run directory (runs/restore/<name>)."""

    kind = "restorer"

    config_class = RestoreConfig

    def __init__(self, run: Run):
        super().__init__(run)
        self.arch = model_args(RestorerConfig, self.info, run.path / "model.json")
        self._net = None

    @property
    def channels(self) -> int:
        return self.arch.channels

    @property
    def data(self) -> tuple[str, str]:
        return self.config.data, self.config.data_dir

    def _describe(self) -> str:
        return f"task={self.arch.task!r}"

    @property
    def net(self) -> torch.nn.Module:
        """The U-Net with its best weights (the EMA copy where one was kept), in eval mode."""
        if self._net is None:
            net = build(self.arch)["model"]
            w = self.run.load_weights("best")
            load_module(net, module_state(w), self.run.weights_path("best"))
            self._net = net.to(self.device).eval()
        return self._net

    def check(self, task: str, method: str = "auto", scale: int = 2, steps: int = 0, ensemble: int = 1,
              adapt: int = 0) -> None:
        check_method(task, method, steps)
        check_ensemble(ensemble)
        check_adapt(task, adapt, scale)
        if task != self.arch.task:
            diffusion = " or pass a diffusion generator run" if task in guided.METHODS else ""
            raise RecgenError(f"{self.path}: this restorer was trained to {self.arch.task}, not to {task}; train one "
                              f"with `recgen restore train --task {task}`{diffusion}")
        if method not in ("auto", "restorer"):
            raise RecgenError(f"method {method!r} needs a diffusion generator run; {self.path} is a restorer run")
        if task == "superres" and scale != self.arch.scale:
            raise RecgenError(f"scale {scale} not supported by {self.path}: it was trained for x{self.arch.scale}")

    def describe(self, task: str, method: str = "auto", steps: int = 0) -> str:
        return f"restorer U-Net ({self.arch.task})"

    def fixed_size(self) -> tuple[int, int] | None:
        return None  # fully convolutional: any size (padded to a multiple of 4 inside)

    def restore(self, obs: Observation, method: str = "auto", steps: int = 0, seed: int = 0,
                ensemble: int = 1, adapt: int = 0) -> torch.Tensor:
        """ensemble: average the restorations of 1, 2, 4 or 8 flipped and rotated copies (restorer.DIHEDRAL);
        about that many times slower, a little better (denoising, super-resolution, JPEG).
        adapt: super-resolution and denoising first fine-tune a copy of the network for this many steps on obs's
        own images (restorer.adapt_net, seeded by `seed`); the run's weights are left as they are."""
        self.check(obs.task, method, obs.scale, steps, ensemble, adapt)
        net = self.net
        if adapt:
            net = adapt_net(net, self.arch, obs, adapt, seed, resolve_precision("auto", self.device),
                            self.config.loss)
        return restore(net, self.arch, obs, ensemble=ensemble)


class DiffusionRestorer:
    """A diffusion generator run (recgen.generate) used for restoration by DDNM / RePaint / entering the reverse
    process at the noise level of the input."""

    kind = "diffusion"
    DEFAULT_STEPS = {"ddnm": 20, "repaint": 50, "reverse": 1}

    def __init__(self, gen):
        self.gen = gen
        self.run = gen.run
        self.input_shape = gen.input_shape

    @property
    def path(self) -> Path:
        return self.gen.path

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def data(self) -> tuple[str, str]:
        return self.gen.config.data, self.gen.config.data_dir

    def __repr__(self) -> str:
        return f"DiffusionRestorer({str(self.path)!r})"

    def _method(self, task: str, method: str) -> str:
        if task not in guided.METHODS:
            raise RecgenError(f"{self.path} is a generator run: those restore only "
                              f"{', '.join(guided.METHODS)}, not {task}; train a restorer with "
                              f"`recgen restore train --task {task}`")
        return guided.METHODS[task][0] if method == "auto" else method

    def check(self, task: str, method: str = "auto", scale: int = 2, steps: int = 0, ensemble: int = 1,
              adapt: int = 0) -> None:
        check_method(task, method, steps)
        check_ensemble(ensemble)
        check_adapt(task, adapt, scale)
        if ensemble != 1 or adapt:
            what = f"ensemble {ensemble}: averaging flipped copies" if ensemble != 1 else f"adapt {adapt}: fine-tuning"
            raise RecgenError(f"{what} is for restorer runs; {self.path} is a generator run (leave it out)")
        m = self._method(task, method)
        if m == "restorer":
            raise RecgenError(f"method 'restorer' needs a restorer run; {self.path} is a {self.gen.family} run")
        guided.check_generator(self.gen, task, m)
        if task == "superres":
            check_scale(scale, self.input_shape[1:])

    def describe(self, task: str, method: str = "auto", steps: int = 0) -> str:
        m = self._method(task, method)
        return f"diffusion {m}, {steps or self.DEFAULT_STEPS[m]} steps"

    def fixed_size(self) -> tuple[int, int] | None:
        return self.input_shape[1], self.input_shape[2]

    def restore(self, obs: Observation, method: str = "auto", steps: int = 0, seed: int = 0,
                ensemble: int = 1, adapt: int = 0) -> torch.Tensor:
        m = self._method(obs.task, method)
        self.check(obs.task, m, obs.scale, steps, ensemble, adapt)
        fn = {"ddnm": guided.ddnm, "repaint": guided.repaint, "reverse": guided.denoise}[m]
        return fn(self.gen, obs, seeded(seed, 7), steps or self.DEFAULT_STEPS[m])


def load(path: str | Path) -> RestorerRun | DiffusionRestorer:
    """A restorer run, or a generator run wrapped for restoration (checked per task when used)."""
    run = Run.open(path)
    task = run.config.get("task")
    if task == "restore":
        return RestorerRun(run)
    if task == "generate":
        from recgen import generate

        return DiffusionRestorer(generate.load(path))
    raise RecgenError(f"{path}: a {task!r} run cannot restore images; pass a restorer run "
                      f"(recgen restore train) or a diffusion generator run (recgen generate train --model diffusion)")


# ------------------------------------------------------------------------------------------------------- train
def _prepare(cfg: RestoreConfig, options: dict[str, Any], splits: tuple) -> tuple[RestoreConfig, dict, Any]:
    """The restorer's architecture for this data, checks of the image size, and the training sizes."""
    train_set = splits[0]
    arch = dataclasses.replace(_check(cfg), channels=train_set.shape[0])
    if min(train_set.shape[1:]) < MIN_SIDE:
        raise RecgenError(f"{cfg.data}: images must be at least {MIN_SIDE}x{MIN_SIDE} pixels to train a restorer "
                          f"(SSIM's window), got {train_set.shape[1]}x{train_set.shape[2]}; pass --size 28")
    if cfg.task == "superres":
        check_scale(cfg.scale, train_set.shape[1:])
    cfg, resolved = resolve_for_data(cfg, options, len(train_set), train_set.shape[1:])
    return cfg, resolved, arch


def _fit_run(run: Run, cfg: RestoreConfig, splits: tuple, arch: RestorerConfig | None, resume: bool) -> RestorerRun:
    train_set, val, _ = splits
    if resume:
        arch = model_args(RestorerConfig, run.read_model_json(), run.path / "model.json")
    else:
        run.write_model_json("restorer", dataclasses.asdict(arch), classes=train_set.classes,
                             input_shape=list(train_set.shape))
    return _fit(run, cfg, arch, train_set, val, resume=resume)


def _checked(cfg: RestoreConfig) -> RestoreConfig:
    _check(cfg)  # before the data is read
    return cfg


STEPS = TaskSteps("restore", RestoreConfig, RestorerRun, load_splits, _fit_run, resolve=_checked, prepare=_prepare,
                  run_name=lambda cfg: cfg.task,
                  record=lambda cfg, splits: {"input_stats": training_stats(splits[0].x, cfg.seed)})


def train(**options: Any) -> RestorerRun:
    """Train a restorer; every keyword is a RestoreConfig field (the same names as the CLI flags)."""
    if not options.get("resume") and is_photo_data(str(options.get("data", RestoreConfig.data))):
        cfg = photos.photo_config(options)[0]  # photos: patches at their own size
        arch = _check(cfg)
        resolve_device(cfg.device)  # a missing GPU is reported before a run directory exists
        return RestorerRun(photos.train_photos(options, arch, corruptions(cfg)))
    return STEPS.train(options)


def _fit(run: Run, cfg: RestoreConfig, arch: RestorerConfig, train_set, val, resume: bool) -> RestorerRun:
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    task = RestoreTask(build(arch), arch, corruptions(cfg), val.tensors()[0] if val is not None else None, device,
                       cfg.loss)
    hist = Trainer(task, cfg, run, device).fit((train_set.tensors()[0],), resume=resume)
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2))
    check_restorer_gain(hist.rows, task.input_psnr(), str(run.path))
    result = RestorerRun(run)
    from recgen.data import has_test_split

    if has_test_split(cfg.data):  # a quick look at the standard setting, written to the run's report
        evaluate_model(result, cfg.task, n=500, seeds=(0,), judge="none", scale=cfg.scale)
    return result


def evaluate(model: str | Path | RestorerRun | DiffusionRestorer, task: str, **options: Any) -> dict[str, Any]:
    """recgen.restore.evaluate.evaluate of a run directory or a loaded model (restore.evaluate, the API's name)."""
    return evaluate_model(load(model) if isinstance(model, (str, Path)) else model, task, **options)


__all__ = ["METHODS", "SCALES", "DiffusionRestorer", "RestoreConfig", "RestorerRun", "evaluate", "load", "train"]
