"""Where and in what precision a run computes: `--device` and `--precision` resolved on this machine. A module of its
own so that run directories (recgen.runs) and the training loop (recgen.train) both use it without importing each
other."""

from __future__ import annotations

import os

import torch

from recgen.config import PRECISIONS, check_option, device_name
from recgen.errors import RecgenError


def resolve_device(name: str) -> torch.device:
    device_name("device", name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RecgenError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 products in hardware: a bf16 GPU, or a CPU with AMX tiles or AVX-512 BF16
    instructions (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids on). Other CPUs emulate bf16 and
    run it slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_amx_tile_supported",
                                                                         "_is_avx512_bf16_supported"))


def resolve_precision(name: str, device: torch.device) -> str:
    """fp32 or bf16 for a TrainConfig.precision on `device`. Autocast to bfloat16 keeps fp32 master weights and
    optimizer state; where the hardware multiplies bf16 natively (native_bf16) it trains markedly faster per
    step, elsewhere it is emulated and slower, hence auto (each benchmark record names what auto resolved to)."""
    if name == "auto":
        name = os.environ.get("RECGEN_PRECISION", "") or "auto"
        if name not in PRECISIONS:
            raise RecgenError(f"$RECGEN_PRECISION must be one of fp32, bf16, got {name!r}")
    check_option("precision", name)
    native = native_bf16(device)
    if name == "bf16" and device.type == "cuda" and not native:
        raise RecgenError("precision bf16 requested but this GPU does not support bfloat16; use --precision fp32")
    return name if name != "auto" else ("bf16" if native else "fp32")
