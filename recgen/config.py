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


@dataclasses.dataclass(frozen=True)
class Rule:
    """The values an option allows: `test(value)` is true for them; `expected` says which, in the error line
    '<name> must be <expected>, got <value>'."""

    test: Callable[[Any], bool]
    expected: str

    def __call__(self, name: str, value: Any) -> Any:
        if not self.test(value):
            raise RecgenError(f"{name} must be {self.expected}, got {value!r}")
        return value


def one_of(*choices: Any, expected: str = "") -> Rule:
    return Rule(lambda v: v in choices, expected or f"one of {', '.join(map(str, choices))}")


AT_LEAST_ONE = Rule(lambda v: v >= 1, "at least 1")
ABOVE_ZERO = Rule(lambda v: v > 0, "above 0")
NOT_NEGATIVE = Rule(lambda v: v >= 0, "0 or more")
FRACTION = Rule(lambda v: 0 <= v < 1, "in [0, 1)")
SCORE = Rule(lambda v: 0 <= v <= 1, "a score in [0, 1]")
PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "linear", "constant")
CHANNELS = one_of(0, 1, 3, expected="0 (the data's own), 1 or 3")
# run directories are named <name>-<number> inside <out>/<task>
FOLDER_NAME = Rule(lambda v: not set(v) & set("/\\") and v not in (".", ".."),
                   "a folder name without / or \\")
LOG = Rule(lambda v: v == "csv" or v == "tensorboard" and importlib.util.find_spec("tensorboard") is not None,
           "csv, or tensorboard with the tensorboard package installed (pip install tensorboard)")


def device_name(name: str, value: str) -> str:
    """A device name torch can parse (auto, cpu, cuda, cuda:1, ...); whether it is present is checked on use, so
    a run trained on a GPU still loads on a CPU-only machine."""
    if value == "auto":
        return value
    import torch  # only for a device other than auto: the CLI builds its options without torch

    try:
        torch.device(value)
    except RuntimeError:
        raise RecgenError(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}") from None
    return value


def opt(default: Any, help: str, check: Callable[[str, Any], Any] | None = None) -> Any:
    """A config field with its help text and its check: the one description of an option. The help is shown by
    --help (the CLI flags are generated from the fields, recgen.cli_kit.config_command); `check(name, value)`
    (a Rule, or a function that raises RecgenError and returns the value, normalised) runs when the config is
    built (check_fields). A field redeclared in a subclass to change its default keeps its base's check."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check})


class Options:
    """Base of every options dataclass: built means checked (check_fields), before any run directory exists, so
    a bad value leaves nothing behind. Constraints between fields go in `check_together`."""

    # options a subclass fills in from its own defaults when left at 0 (ema: -1); checked once filled
    filled_later: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        check_fields(self)

    def check_together(self) -> None:
        """Constraints between fields, after each field passed its own check."""


def field_rule(cls, name: str) -> Callable[[str, Any], Any] | None:
    """The check declared for field `name` of `cls`, by the nearest class that declares one."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("check") is not None:
            return f.metadata["check"]
    return None


def check_fields(cfg) -> None:
    """The one check of an options dataclass: each field's annotated type and declared check (a normalised value
    is written back), then the constraints between fields (`cfg.check_together()`). Raises a RecgenError naming
    the first bad option."""
    hints = get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in getattr(cfg, "filled_later", ()) and v == (-1 if f.name == "ema" else 0):
            continue
        checked = _checked(f.name, v, hints.get(f.name), field_rule(type(cfg), f.name))
        if checked is not v:
            setattr(cfg, f.name, checked)
    if hasattr(cfg, "check_together"):
        cfg.check_together()


check_ranges = check_fields  # its name before field-declared checks (branches written against that name)


# The checks of values that functions take as parameters rather than as config fields (sample's n, steps and
# seed, predict's min_score, ...), by parameter name.
PARAMETERS: dict[str, Callable[[str, Any], Any]] = {
    "seed": NOT_NEGATIVE, "n": AT_LEAST_ONE, "steps": AT_LEAST_ONE, "guidance": NOT_NEGATIVE,
    "temperature": ABOVE_ZERO, "min_score": SCORE, "max_pixels": AT_LEAST_ONE,
    "precision": one_of(*PRECISIONS),
}


def check_option(name: str, value: Any, kind: type | None = None,
                 rule: Callable[[str, Any], Any] | None = None) -> Any:
    """A function parameter's value: of `kind` (int or float: a number of that kind; floats finite), then `rule`
    (by default the PARAMETERS entry of its name). Returns the value, normalised where the rule does that."""
    return _checked(name, value, kind, rule or PARAMETERS.get(name))


def _checked(name: str, value: Any, kind: type | None, rule: Callable[[str, Any], Any] | None) -> Any:
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                 or kind is int and not isinstance(value, numbers.Integral)):
        raise RecgenError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecgenError(f"{name} must be a finite number, got {value}")
    return rule(name, value) if rule is not None else value


@dataclasses.dataclass
class TrainConfig(Options):
    """Options of the one training loop (recgen.train), shared by every PyTorch model."""

    epochs: int = opt(10, "passes over the training set", check=AT_LEAST_ONE)
    batch_size: int = opt(128, "images per optimizer step", check=AT_LEAST_ONE)
    lr: float = opt(2e-3, "peak learning rate", check=ABOVE_ZERO)
    weight_decay: float = opt(5e-4, "decoupled (AdamW) or L2 (SGD) weight decay", check=NOT_NEGATIVE)
    optimizer: str = opt("adamw", "adamw | sgd (Nesterov momentum 0.9)", check=one_of(*OPTIMIZERS))
    schedule: str = opt("onecycle", "onecycle | cosine | linear | constant (linear warmup over `warmup` of "
                        "the steps)", check=one_of(*SCHEDULES))
    warmup: float = opt(0.1, "fraction of steps spent warming up (onecycle and cosine)", check=FRACTION)
    ema: float = opt(0.0, "exponential moving average decay of the weights (0 = off), e.g. 0.999",
                     check=Rule(lambda v: 0 <= v < 1, "a decay in [0, 1) (0 = off)"))
    grad_clip: float = opt(0.0, "clip the gradient norm to this value (0 = off)", check=NOT_NEGATIVE)
    clip_spikes: float = opt(0.0, "clip a gradient whose norm exceeds this many times the running mean of recent "
                             "norms (0 = off): one outlier step cannot throw Adam's weights far off",
                             check=Rule(lambda v: v == 0 or v > 1, "0 (off) or a factor above 1"))
    seed: int = opt(0, "seeds the weights, the data order and the augmentation stream", check=NOT_NEGATIVE)
    device: str = opt("auto", "auto | cpu | cuda", check=device_name)
    # auto = bf16 where the hardware multiplies bfloat16 natively (CPUs with AMX or AVX-512 BF16, CUDA GPUs
    # with bf16), else fp32; $RECGEN_PRECISION overrides auto (figures measured before bf16 existed:
    # RECGEN_PRECISION=fp32)
    precision: str = opt("auto", "auto | fp32 | bf16 (training forward passes under autocast; weights stay "
                         "fp32)", check=one_of(*PRECISIONS))
    threads: int = opt(0, "torch intra-op threads (0 = leave torch's default)", check=NOT_NEGATIVE)
    time_budget: float = opt(
        0.0,
        "stop training after this many seconds (0 = no limit); the schedule is not stretched",
        check=NOT_NEGATIVE)
    train_steps: int = opt(0, "optimizer steps to train, the learning-rate schedule spanning them (0 = epochs x "
                           "steps per epoch)", check=NOT_NEGATIVE)
    max_steps: int = opt(0, "stop after this many optimizer steps (0 = all epochs); for tests and partial "
                         "runs", check=NOT_NEGATIVE)
    out: str = opt("runs", "root folder of run directories")
    name: str = opt("", "run name (default: the model name); a number is appended to keep runs apart",
                    check=FOLDER_NAME)
    resume: str = opt("", "run directory to continue from (exact: optimizer, schedule, RNG and step "
                      "restored)")
    log: str = opt("csv", "csv (metrics.csv) | tensorboard (metrics.csv and event files in RUN/tensorboard)",
                   check=LOG)


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


# Architecture configs read back from model.json (CNNConfig, the generator families', RestorerConfig, ...) whose
# fields declare no check: numbers are 0 or more, and these names have the narrower ranges of their options.
ARCHITECTURE_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "stem_width": AT_LEAST_ONE, "dropout": FRACTION, "cond_dropout": FRACTION, "channels": CHANNELS,
}


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
            rule = field_rule(type(cfg), f.name) or ARCHITECTURE_CHECKS.get(f.name, NOT_NEGATIVE)
            _checked(f.name, v, t, rule)
        elif t in (bool, str) and not isinstance(v, t):
            raise RecgenError(f"{f.name} must be a {t.__name__}, got {v!r:.60}")


def to_dict(cfg) -> dict[str, Any]:
    """Every option, except deprecated names left at their default (metadata "deprecated"; still read)."""
    out = dataclasses.asdict(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata.get("deprecated") and out[f.name] == f.default:
            del out[f.name]
    return out
