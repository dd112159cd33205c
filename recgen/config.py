"""Typed configuration: one dataclass per task, whose fields are the CLI flags, the config.yaml keys and the Python
keyword arguments, with the same names."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import numbers
import typing
from typing import Any, Callable, ClassVar, TypeVar, get_type_hints

from recgen.errors import RecgenError

C = TypeVar("C")


def opt(default: Any, help: str) -> Any:
    """A config field with its help text: the one description of an option, shown by --help (the CLI flags are
    generated from the fields, recgen.cli_kit.config_command)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """Options of the one training loop (recgen.train), shared by every PyTorch model."""

    epochs: int = opt(10, "passes over the training set")
    batch_size: int = opt(128, "images per optimizer step")
    lr: float = opt(2e-3, "peak learning rate")
    weight_decay: float = opt(5e-4, "decoupled (AdamW) or L2 (SGD) weight decay")
    optimizer: str = opt("adamw", "adamw | sgd (Nesterov momentum 0.9)")
    schedule: str = opt("onecycle", "onecycle | cosine | linear | constant (linear warmup over `warmup` of "
                        "the steps)")
    warmup: float = opt(0.1, "fraction of steps spent warming up (onecycle and cosine)")
    ema: float = opt(0.0, "exponential moving average decay of the weights (0 = off), e.g. 0.999")
    grad_clip: float = opt(0.0, "clip the gradient norm to this value (0 = off)")
    seed: int = opt(0, "seeds the weights, the data order and the augmentation stream")
    device: str = opt("auto", "auto | cpu | cuda")
    # auto = bf16 where the hardware multiplies bfloat16 natively (CPUs with AMX, CUDA GPUs with bf16), else fp32;
    # $RECGEN_PRECISION overrides auto (figures measured before bf16 existed: RECGEN_PRECISION=fp32)
    precision: str = opt("auto", "auto | fp32 | bf16 (training forward passes under autocast; weights stay "
                         "fp32)")
    threads: int = opt(0, "torch intra-op threads (0 = leave torch's default)")
    time_budget: float = opt(
        0.0,
        "stop training after this many seconds (0 = no limit); the schedule is not stretched")
    max_steps: int = opt(0, "stop after this many optimizer steps (0 = all epochs); for tests and partial "
                         "runs")
    out: str = opt("runs", "root folder of run directories")
    name: str = opt("", "run name (default: the model name); a number is appended to keep runs apart")
    resume: str = opt("", "run directory to continue from (exact: optimizer, schedule, RNG and step "
                      "restored)")
    log: str = opt("csv", "csv (metrics.csv) | tensorboard (metrics.csv and event files in RUN/tensorboard)")

    # options a subclass fills in from its own defaults when left at 0 (ema: -1); range-checked once filled
    filled_later: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        check_ranges(self)  # before any run directory exists, so a bad number leaves nothing behind


PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "linear", "constant")

_positive = (lambda v: v >= 1, "at least 1")
_above_zero = (lambda v: v > 0, "above 0")
_not_negative = (lambda v: v >= 0, "0 or more")
_fraction = (lambda v: 0 <= v < 1, "in [0, 1)")
# The allowed values of options, by name: a name means the same option in every config that has it (CLI flag,
# config.yaml key and keyword), so one table serves them all.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # the training loop
    "epochs": _positive, "batch_size": _positive, "lr": _above_zero, "weight_decay": _not_negative,
    "warmup": _fraction, "ema": (lambda v: 0 <= v < 1, "a decay in [0, 1) (0 = off)"), "grad_clip": _not_negative,
    "threads": _not_negative, "time_budget": _not_negative, "max_steps": _not_negative,
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    "schedule": (lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    "log": (lambda v: v == "csv" or v == "tensorboard" and importlib.util.find_spec("tensorboard") is not None,
            "csv, or tensorboard with the tensorboard package installed (pip install tensorboard)"),
    # data options of the classify, generate, restore and detect configs
    "size": _not_negative, "limit": _not_negative, "eval_limit": _not_negative, "val_fraction": _fraction,
    "channels": (lambda v: v in (0, 1, 3), "0 (the data's own), 1 or 3"),
    # classify
    "label_smoothing": _fraction, "dropout": _fraction, "stem_width": _positive, "landmarks": _positive,
    "trees": _positive,
    # generate
    "base": _not_negative, "latent_dim": _not_negative, "layers": _not_negative, "cond_dropout": _fraction,
    "mode_seeking": _not_negative, "guidance": _not_negative,
    "steps": _positive,  # generate: sampling steps; augment: recognizer optimizer steps
    # augment
    "real_per_class": _positive, "val_per_class": _not_negative, "imbalance": _fraction, "seeds": _positive,
    "generator_steps": _positive,
    # sampling and evaluation (the same names as options of `generate sample`, `restore`, `detect predict`, ...)
    "seed": _not_negative, "scene_seed": _not_negative, "n": _positive, "temperature": _above_zero,
    "min_score": (lambda v: 0 <= v <= 1, "a score in [0, 1]"), "max_pixels": _positive,
    # run directories are named <name>-<number> inside <out>/<task>
    "name": (lambda v: not set(v) & set("/\\") and v not in (".", ".."), "a folder name without / or \\"),
}


def check_ranges(cfg) -> None:
    """Raise a RecgenError naming the first option of `cfg` of the wrong type or outside its RANGES entry."""
    hints = get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in getattr(cfg, "filled_later", ()) and v == (-1 if f.name == "ema" else 0):
            continue
        check_option(f.name, v, hints.get(f.name))
    if hasattr(cfg, "device"):
        check_device(cfg.device)


def check_option(name: str, value: Any, kind: type | None = None) -> None:
    """One value against the RANGES entry of its option name; also for functions whose parameters share those
    names (sample's n, steps and seed). `kind` int or float: the value must be a number of that kind."""
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                 or kind is int and not isinstance(value, numbers.Integral)):
        raise RecgenError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecgenError(f"{name} must be a finite number, got {value}")
    if name in RANGES and not RANGES[name][0](value):
        raise RecgenError(f"{name} must be {RANGES[name][1]}, got {value!r}")


def check_device(name: str) -> None:
    """A device name torch can parse (auto, cpu, cuda, cuda:1, ...); whether it is present is checked on use, so
    a run trained on a GPU still loads on a CPU-only machine."""
    if name == "auto":
        return
    import torch

    try:
        torch.device(name)
    except RuntimeError:
        raise RecgenError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from None


def ints(s: str, what: str) -> tuple[int, ...]:
    """'32,64,128' -> (32, 64, 128), for options that list a number per stage."""
    try:
        return tuple(int(v) for v in str(s).split(",") if v.strip())
    except ValueError:
        raise RecgenError(f"{what}: expected comma-separated integers, got {s!r}") from None


def field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_keys(cls, keys, what: str) -> None:
    valid = field_names(cls)
    for k in keys:
        if k not in valid:
            near = difflib.get_close_matches(k, valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; valid: {', '.join(valid)}"
            raise RecgenError(f"unknown option {k!r} for {what}{hint}")


def from_dict(cls: type[C], values: dict[str, Any], what: str | None = None) -> C:
    """Build `cls` from a dict, rejecting unknown keys with the nearest valid names, and coercing simple types
    (YAML or CLI strings) to the annotated ones."""
    check_keys(cls, values, what or cls.__name__)
    hints = get_type_hints(cls)
    out = {}
    for k, v in values.items():
        t = hints[k]
        try:
            if t is bool and isinstance(v, str):
                v = v.lower() in ("1", "true", "yes", "on")
            elif t in (int, float) and isinstance(v, str):  # YAML or CLI text; 1.5 for an int stays a mistake
                v = t(v)
            elif t is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            elif t is str and not isinstance(v, str):
                if v is None or isinstance(v, (dict, list)):
                    raise TypeError
                v = str(v)
        except (TypeError, ValueError):
            raise RecgenError(f"option {k!r}: expected {t.__name__}, got {v!r}") from None
        out[k] = v
    return cls(**out)


def model_args(build: Callable[..., C], info: dict[str, Any], path) -> C:
    """build(**args of a run's model.json): an unknown key, a wrong type or a value `build` refuses (model.json
    edited by hand, or from another version) is a RecgenError naming the file, not a traceback."""
    args = info.get("args")
    if not isinstance(args, dict):
        raise RecgenError(f"{path}: 'args' must be a mapping of architecture arguments, got {args!r:.60}")
    try:
        if dataclasses.is_dataclass(build):
            cfg = from_dict(build, args, "model.json 'args'")
            _check_arch(cfg)
            return cfg
        return build(**args)
    except RecgenError as e:
        raise RecgenError(f"{path}: {e}") from None
    except (TypeError, ValueError) as e:
        raise RecgenError(f"{path}: 'args' do not describe this model ({e})") from None


def _check_arch(cfg) -> None:
    """Every field of an architecture config has its annotated type (numbers finite, sizes not negative): the
    networks are built from these values, so a bad one must stop here, not deep inside torch."""
    hints = get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v, t = getattr(cfg, f.name), hints[f.name]
        if typing.get_origin(t) is tuple:
            if not isinstance(v, (list, tuple)) or not all(type(i) is int and i >= 0 for i in v):
                raise RecgenError(f"{f.name} must be a list of whole numbers >= 0, got {v!r:.60}")
        elif t in (int, float):
            check_option(f.name, v, t)
            if v < 0 and f.name not in RANGES:
                raise RecgenError(f"{f.name} must be 0 or more, got {v!r}")
        elif t in (bool, str) and not isinstance(v, t):
            raise RecgenError(f"{f.name} must be a {t.__name__}, got {v!r:.60}")


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
