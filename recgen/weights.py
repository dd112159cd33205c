"""Tensors on disk: safetensors files written atomically, weights refused when they hold NaN or do not fit their
network, and nested optimizer / scheduler state stored as tensors + JSON (no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from recgen.errors import RecgenError
from recgen.files import atomic_write


def tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    # safetensors refuses shared or non-contiguous storage; clone makes each tensor its own.
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return save(flat, metadata=metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    atomic_write(path, tensor_bytes(tensors, metadata))


def load_tensors(path: Path, finite: bool = False) -> dict[str, torch.Tensor]:
    """A safetensors file; `finite`: refuse NaN or infinite values (weights, which would predict "nan")."""
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise RecgenError(f"{path}: weights file not found") from None
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise RecgenError(f"{path}: not a valid safetensors file ({e})") from None
    if finite:
        check_finite(tensors, path)
    return tensors


def check_finite(tensors: dict[str, torch.Tensor], source: Path) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise RecgenError(f"{source}: {len(bad)} weight tensor(s) hold NaN or infinite values ({bad[0]}, ...); "
                          "the training diverged or the file is damaged")


# --------------------------------------------------------------- nested state (optimizer, scheduler) without pickle
def module_state(weights: dict[str, torch.Tensor], name: str = "model") -> dict[str, torch.Tensor]:
    """Module `name`'s state dict out of a run's weights file: its EMA copy when training kept one."""
    prefix = f"ema.{name}." if any(k.startswith(f"ema.{name}.") for k in weights) else f"{name}."
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> torch.nn.Module:
    """module.load_state_dict(state), where a state that does not fit (weights swapped in from another run, or
    model.json edited) is a user error naming the file, not a traceback; so are NaN or infinite weights."""
    check_finite(state, source)
    try:
        module.load_state_dict(state)
    except RecgenError as e:  # a module that names why these weights are not its own
        raise RecgenError(f"{source}: {e}") from None
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        why = (lines[0] if lines else str(e))[:200]
        raise RecgenError(f"{source}: these weights do not fit the network model.json describes ({why})") from None
    return module


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "s") -> Any:
    """Replace every tensor in a nested dict/list/tuple by a reference into `tensors`; keep the rest JSON-able.
    Dicts become key/value pair lists so integer keys (optimizer state indices) survive JSON."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj
