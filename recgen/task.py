"""The one path from options to a trained run that every task takes (classify, generate, restore, detect):

    train(**options)   options -> checked config -> data splits -> data-dependent checks and defaults
                       -> a new run directory (config.yaml) -> the task's fit (network through recgen.train.Trainer,
                       or a classical fit) -> the task's run object
    train(resume=RUN)  the run's own config and data, checked unchanged -> the same fit, continued
    load(path)         the task's run object over an existing run directory

A task states only what differs (a TaskSteps); the order, the checks before any directory exists and the run
records are here, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from recgen.config import from_dict, to_dict
from recgen.device import resolve_device
from recgen.errors import RecgenError
from recgen.runs import Run, reopen_for_resume


def _no_change(cfg: Any, options: dict[str, Any], splits: tuple) -> tuple[Any, dict[str, Any], Any]:
    return cfg, {}, None


@dataclass(frozen=True)
class TaskSteps:
    """What a task contributes to the one train / resume / load path.

    name: the task word (run folder, config.yaml's task). config: its options dataclass. wrap: Run -> the task's
    run object. load_splits: config -> (train, val, test). fit(run, cfg, splits, prepared, resume) trains into
    `run` and returns the run object; `prepared` is what `prepare` returned (None on resume).
    resolve: config -> config, filling defaults that need no data. uses_device: whether this config trains on
    --device (a missing GPU is then reported before a run directory exists). prepare(cfg, options, splits):
    checks that need the data and defaults sized to it -> (cfg, the `resolved` note of config.yaml, prepared).
    run_name: the default run name. record: task-specific config.yaml entries. resumable: None, or why this
    config cannot be resumed."""

    name: str
    config: type
    wrap: Callable[[Run], Any]
    load_splits: Callable[[Any], tuple]
    fit: Callable[[Run, Any, tuple, Any, bool], Any]
    resolve: Callable[[Any], Any] = lambda cfg: cfg
    uses_device: Callable[[Any], bool] = lambda cfg: True
    prepare: Callable[[Any, dict[str, Any], tuple], tuple[Any, dict[str, Any], Any]] = _no_change
    run_name: Callable[[Any], str] = lambda cfg: cfg.model
    record: Callable[[Any, tuple], dict[str, Any]] = field(default=lambda cfg, splits: {})
    resumable: Callable[[Any], str | None] = lambda cfg: None

    def train(self, options: dict[str, Any]) -> Any:
        """Train a new run from keyword options (the config's fields), or continue one (options["resume"])."""
        if options.get("resume"):
            return self.resume(options)
        cfg = self.resolve(from_dict(self.config, options, f"{self.name} train"))
        if self.uses_device(cfg):
            resolve_device(cfg.device)  # a missing GPU is reported before a run directory exists
        splits = self.load_splits(cfg)
        cfg, resolved, prepared = self.prepare(cfg, options, splits)
        train_set, val = splits[0], splits[1]
        run = Run.create(self.name, cfg.name or self.run_name(cfg), cfg.out)
        run.write_config(self.name, to_dict(cfg), data_fingerprint=train_set.fingerprint(),
                         classes=train_set.classes, n_train=len(train_set), n_val=len(val) if val else 0,
                         **self.record(cfg, splits), **resolved)
        return self.fit(run, cfg, splits, prepared, False)

    def resume(self, options: dict[str, Any]) -> Any:
        run, cfg, splits = reopen_for_resume(options, self.name, self.config, self.load_splits)
        why = self.resumable(cfg)
        if why:
            raise RecgenError(f"{run.path}: {why}")
        run.update_config(options=to_dict(cfg))
        return self.fit(run, cfg, splits, None, True)

    def load(self, path: str | Path) -> Any:
        return self.wrap(Run.open(path, self.name))
