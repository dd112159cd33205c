"""Run directories: the one on-disk format every task writes and reads back.

    runs/<task>/<name>/
      config.yaml              resolved config + recgen version, git commit, data fingerprint
      model.json               architecture arguments (the family's config), enough to rebuild the network
      weights/{last,best}.safetensors
      state/last.safetensors + state/last.json    optimizer / scheduler / RNG / step, for exact resume (no pickle)
      state/checkpoint.json    the committed checkpoint's manifest: step, and the sha256 of each of its files
      metrics.csv              one row per epoch
      plots/*.png, report.html

Every file is written to a temp file in the same folder and renamed into place. A training checkpoint is several
files and is committed as one (`Run.commit_checkpoint`): a crash at any point leaves the previous checkpoint or the
new one, never a mix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

import recgen
from recgen.config import from_dict
from recgen.device import resolve_device
from recgen.errors import RecgenError
from recgen.files import FILE_MODE, _fsync_dir, atomic_write, mkstemp_readable, output_file  # noqa: F401 (re-exported)
from recgen.weights import (check_finite, flatten_state, load_module, load_tensors, module_state,  # noqa: F401 (re-exported)
                            save_tensors, tensor_bytes, unflatten_state)


PENDING = "state/pending"  # a checkpoint being written (see Run.commit_checkpoint)
MANIFEST = "manifest.json"
CHECKPOINT = "state/checkpoint.json"  # the committed checkpoint's manifest


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Run:
    """A run directory. Create with `Run.create(task, name)`, open an existing one with `Run.open(path)`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, task: str, name: str, root: str | os.PathLike = "runs") -> Run:
        base = Path(root) / task
        base.mkdir(parents=True, exist_ok=True)
        i = 1
        while True:  # mkdir without exist_ok is the atomic claim: two concurrent runs never share a folder
            try:
                (base / f"{name}-{i}").mkdir()
                return cls(base / f"{name}-{i}")
            except FileExistsError:
                i += 1

    @classmethod
    def open(cls, path: str | os.PathLike, task: str | None = None) -> Run:
        if not isinstance(path, (str, os.PathLike)):
            raise RecgenError(f"a run is opened by its directory path (str or Path), got {path!r}")
        run = cls(path)
        if not (run.path / "config.yaml").is_file():
            raise RecgenError(f"{path}: not a recgen run directory (no config.yaml)")
        if task is not None and run.config.get("task") != task:
            raise RecgenError(f"{path}: a {run.config.get('task')!r} run, expected a {task!r} run")
        return run

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # ----------------------------------------------------------------------------------------------- config
    @property
    def config(self) -> dict[str, Any]:
        try:
            cfg = yaml.safe_load((self.path / "config.yaml").read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            why = " ".join(str(e).split())  # YAML's errors span lines (the text and a caret): one line here
            raise RecgenError(f"{self.path / 'config.yaml'}: unreadable ({why})") from None
        if not isinstance(cfg, dict):
            raise RecgenError(f"{self.path / 'config.yaml'}: expected a mapping")
        return cfg

    def write_config(self, task: str, options: dict[str, Any], **extra: Any) -> None:
        doc = {"task": task, "options": options, "recgen_version": recgen.__version__, "git_commit": git_commit(),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
        atomic_write(self.path / "config.yaml", yaml.safe_dump(doc, sort_keys=False))

    def update_config(self, **extra: Any) -> None:
        doc = self.config
        doc.update(extra)
        atomic_write(self.path / "config.yaml", yaml.safe_dump(doc, sort_keys=False))

    @property
    def options(self) -> dict[str, Any]:
        options = self.config.get("options", {})
        if not isinstance(options, dict):
            raise RecgenError(f"{self.path / 'config.yaml'}: 'options' must be a mapping of option names to values")
        return options

    # ---------------------------------------------------------------------------------------------- weights
    def write_model_json(self, family: str, args: dict[str, Any], **extra: Any) -> None:
        """Architecture arguments (the family's config dataclass) plus what inference needs (classes, input shape)."""
        atomic_write(self.path / "model.json", json.dumps({"family": family, "args": args, **extra}, indent=2))

    def read_model_json(self) -> dict[str, Any]:
        p = self.path / "model.json"
        try:
            info = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecgenError(f"{p}: unreadable model description ({e})") from None
        if not isinstance(info, dict) or not isinstance(info.get("family"), str):
            raise RecgenError(f"{p}: expected an object with 'family' and 'args', got {str(info)[:60]}")
        return info

    def weights_path(self, which: str = "best") -> Path:
        p = self._committed(f"weights/{which}.safetensors")
        if which == "best" and not p.is_file():
            p = self._committed("weights/last.safetensors")
        return p

    def save_weights(self, tensors: dict[str, torch.Tensor], which: str) -> None:
        save_tensors(tensors, self.path / "weights" / f"{which}.safetensors")

    def load_weights(self, which: str = "best") -> dict[str, torch.Tensor]:
        return load_tensors(self.weights_path(which))

    # ------------------------------------------------------------------------------------------------ state
    @staticmethod
    def state_files(state: dict[str, Any]) -> dict[str, bytes]:
        """The two files that hold a training state: its tensors and the JSON skeleton that refers to them."""
        tensors: dict[str, torch.Tensor] = {}
        skeleton = flatten_state(state, tensors)
        return {"state/last.safetensors": tensor_bytes(tensors), "state/last.json": json.dumps(skeleton).encode()}

    def load_state(self) -> dict[str, Any]:
        js = self._committed("state/last.json")
        if not js.is_file():
            raise RecgenError(f"{self.path}: nothing to resume (no state/last.json)")
        tensors = load_tensors(self._committed("state/last.safetensors"))
        try:
            return unflatten_state(json.loads(js.read_text()), tensors)
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSONDecodeError is a ValueError
            raise RecgenError(f"{js}: unreadable training state ({type(e).__name__}: {e}); resume needs the pair "
                              "state/last.json + last.safetensors that training wrote") from None

    # ------------------------------------------------------------------------------------- checkpoint commit
    # One checkpoint is one commit (a redo log): every file of step N is first written under state/pending/, then
    # state/pending/manifest.json (the step and each file's sha256) is written last; that rename is the commit.
    # The staged files are then renamed over the public ones, the manifest becomes state/checkpoint.json and
    # state/pending/ goes. A crash before the commit leaves the previous checkpoint untouched (the staged files are
    # discarded on resume); a crash after it is finished by the next `recover_checkpoint` (roll forward). Readers
    # in between see the committed view through `_committed`.

    def _committed(self, rel: str) -> Path:
        """Where file `rel` of the committed checkpoint is: its staged copy while a commit is being rolled forward."""
        staged = self.path / PENDING / rel
        if staged.is_file() and (self.path / PENDING / MANIFEST).is_file():
            return staged
        return self.path / rel

    def checkpoint_manifest(self) -> dict[str, Any] | None:
        p = self.path / CHECKPOINT
        if not p.is_file():
            return None  # a run written before manifests existed
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise RecgenError(f"{p}: unreadable checkpoint manifest ({e})") from None

    def commit_checkpoint(self, files: dict[str, bytes | str], **info: Any) -> None:
        """Write `files` (paths relative to the run) as one checkpoint; `info` (step, best) goes into the manifest.
        Files of the previous checkpoint not named here (best weights that did not change) stay part of it."""
        self._finish_pending(quiet=True)  # a commit cut short in this process (a second Ctrl-C)
        pending = self.path / PENDING
        hashes = dict((self.checkpoint_manifest() or {}).get("files", {}))
        for rel, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            atomic_write(pending / rel, data)
            hashes[rel] = hashlib.sha256(data).hexdigest()
        for folder in {(pending / rel).parent for rel in files}:
            _fsync_dir(folder)
        atomic_write(pending / MANIFEST, json.dumps({**info, "files": hashes, "staged": sorted(files)}, indent=1))
        self._roll_forward()

    def _roll_forward(self) -> None:
        pending = self.path / PENDING
        manifest = json.loads((pending / MANIFEST).read_text())
        for rel in manifest["staged"]:
            if (pending / rel).is_file():  # already moved by an earlier, interrupted roll-forward otherwise
                (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(pending / rel, self.path / rel)
        for folder in {(self.path / rel).parent for rel in manifest["staged"]}:
            _fsync_dir(folder)  # in place for good before the staged copies and the pending manifest go
        os.replace(pending / MANIFEST, self.path / CHECKPOINT)
        shutil.rmtree(pending)

    def _finish_pending(self, quiet: bool) -> None:
        pending = self.path / PENDING
        if (pending / MANIFEST).is_file():
            self._roll_forward()
        elif pending.is_dir():
            if not quiet and any(p.is_file() and not p.name.endswith(".tmp") for p in pending.rglob("*")):
                step = (self.checkpoint_manifest() or {}).get("step")
                where = f"step {step}" if step is not None else "the previous complete checkpoint"
                print(f"note: {self.path}: the newest checkpoint was cut short (the process stopped while writing "
                      f"it); resuming from {where}", file=sys.stderr)
            shutil.rmtree(pending)

    def recover_checkpoint(self, quiet: bool = False) -> None:
        """Before resuming: finish a committed checkpoint, discard a partial one (one line on stderr unless quiet),
        remove temp files a killed process left, and check the files against the manifest."""
        self._finish_pending(quiet)
        for p in self.path.rglob(".*.tmp"):  # atomic_write's temp files, left only by a killed process
            if p.is_file():
                p.unlink()
        for rel, digest in ((self.checkpoint_manifest() or {}).get("files") or {}).items():
            f = self.path / rel
            if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                raise RecgenError(f"{f}: missing or changed since checkpoint {self.path / CHECKPOINT} was written "
                                  "(its sha256 differs); this run cannot be resumed exactly")

    # ---------------------------------------------------------------------------------------------- metrics
    @staticmethod
    def metrics_text(rows: list[dict[str, Any]]) -> str:
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write(self.path / "metrics.csv", self.metrics_text(rows))

    def read_metrics(self) -> list[dict[str, Any]]:
        p = self._committed("metrics.csv")
        if not p.is_file():
            return []
        with open(p, newline="") as f:
            return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]

    @property
    def plots(self) -> Path:
        p = self.path / "plots"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        atomic_write(self.path / name, json.dumps(obj, indent=2))
        return self.path / name

    def saved_eval(self) -> dict[str, Any] | None:
        """The evaluation written at the end of training: on the test split, else on the validation split; None
        when the data had neither (no test split and val_fraction 0)."""
        for split in ("test", "val"):
            f = self.path / f"eval-{split}.json"
            if f.is_file():
                return json.loads(f.read_text())
        return None


def _num(v: str) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def reopen_for_resume(options: dict[str, Any], task: str, config_cls: type, load_splits: Callable) -> tuple:
    """Open the run named by options["resume"] and rebuild its config for an exact resume.

    Exact resume continues the same schedule, so only how far to go and where to run it may change. Returns
    (run, config, (train, val, test)); refuses a completed run and one whose training data changed."""
    run = Run.open(options["resume"], task)
    saved = run.options
    allowed = {"max_steps", "time_budget", "device", "threads", "resume"}
    changed = {k: v for k, v in options.items() if k not in allowed and v != saved.get(k)}
    if changed:
        raise RecgenError(f"--resume continues a run with its own options; cannot change {', '.join(changed)}")
    limits = {"max_steps": 0, "time_budget": 0.0}  # the old run's stopping point is not the new one's
    cfg = from_dict(config_cls, {**saved, **limits, **{k: v for k, v in options.items() if k != "resume"},
                                 "resume": ""})
    if run.config.get("stopped") == "completed":
        raise RecgenError(f"{run.path}: this run already completed its {cfg.epochs} epochs; nothing to resume")
    splits = load_splits(cfg)
    if splits[0].fingerprint() != run.config.get("data_fingerprint"):
        raise RecgenError(f"{run.path}: the data changed since this run started (fingerprint differs)")
    return run, cfg, splits


class TrainedRun:
    """What every trained-model object (ClassifierRun, GeneratorRun, DetectorRun, RestorerRun) opens the same way:
    its run directory, the resolved config (`config_class`), model.json, and the device to run on."""

    config_class: type

    def __init__(self, run: Run):
        self.run = run
        try:
            self.config = from_dict(self.config_class, run.options)
        except RecgenError as e:
            raise RecgenError(f"{run.path / 'config.yaml'}: {e}") from None
        self.info = run.read_model_json()
        self.classes: list[str] = self.info.get("classes", [])
        try:
            self.input_shape: tuple[int, int, int] = tuple(self.info["input_shape"])  # (C, H, W) it trained on
        except (KeyError, TypeError):
            raise RecgenError(f"{run.path / 'model.json'}: no input_shape [C, H, W]") from None
        try:
            self.device = resolve_device(self.config.device)
        except RecgenError:  # trained on a GPU this machine lacks: use what is here
            self.device = resolve_device("auto")

    @property
    def path(self) -> Path:
        return self.run.path

    def _describe(self) -> str:
        """What __repr__ shows after the path."""
        return f"model={self.config.model!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self._describe()})"
