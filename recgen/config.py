"""Typed configuration: one dataclass per task, whose fields are the CLI flags, the config.yaml keys and the Python
keyword arguments, with the same names."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar, get_type_hints

from recgen.errors import RecgenError

C = TypeVar("C")


@dataclasses.dataclass
class TrainConfig:
    """Options of the one training loop (recgen.train), shared by every PyTorch model."""

    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # images per optimizer step
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 5e-4  # decoupled (AdamW) or L2 (SGD) weight decay
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)
    schedule: str = "onecycle"  # onecycle | cosine | linear | constant (linear warmup over `warmup` of the steps)
    warmup: float = 0.1  # fraction of steps spent warming up (onecycle and cosine)
    ema: float = 0.0  # exponential moving average decay of the weights (0 = off), e.g. 0.999
    grad_clip: float = 0.0  # clip the gradient norm to this value (0 = off)
    seed: int = 0  # seeds the weights, the data order and the augmentation stream
    device: str = "auto"  # auto | cpu | cuda
    # auto = bf16 where the hardware multiplies bfloat16 natively (CPUs with AMX, CUDA GPUs with bf16), else fp32;
    # $RECGEN_PRECISION overrides auto (figures measured before bf16 existed: RECGEN_PRECISION=fp32)
    precision: str = "auto"  # auto | fp32 | bf16 (training forward passes under autocast; weights stay fp32)
    threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    time_budget: float = 0.0  # stop training after this many seconds (0 = no limit); the schedule is not stretched
    max_steps: int = 0  # stop after this many optimizer steps (0 = all epochs); for tests and partial runs
    out: str = "runs"  # root folder of run directories
    name: str = ""  # run name (default: the model name); a number is appended to keep runs apart
    resume: str = ""  # run directory to continue from (exact: optimizer, schedule, RNG and step restored)

    def __post_init__(self):
        check_precision(self.precision)  # before any run directory exists; the loop resolves auto later


PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(name: str) -> None:
    """The one check of a precision name (TrainConfig at construction, recgen.train.resolve_precision for callers)."""
    if name not in PRECISIONS:
        raise RecgenError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")


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
            elif t in (int, float, str) and v is not None and not isinstance(v, t):
                v = t(v)
        except (TypeError, ValueError):
            raise RecgenError(f"option {k!r}: expected {t.__name__}, got {v!r}") from None
        out[k] = v
    return cls(**out)


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
