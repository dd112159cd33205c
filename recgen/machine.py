"""What a measurement ran on, and the record a benchmark leaves behind.

Machines differ (Intel cores with AMX bf16, AMD cores without, some much slower), so every benchmark record carries
the machine's own measured fp32 and bf16 matmul rates, and figures from two machines are compared through them
rather than in absolute seconds. `write_record` is the one format of bench/results/*.json, from which
docs/BENCHMARKS.md is generated."""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any


@functools.cache
def matmul_gflops(dtype, n: int = 1024, seconds: float = 0.5) -> float:
    """The CPU's (or GPU's) measured square-matmul rate in `dtype` (all threads), best of repeated n x n products
    for about `seconds`."""
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = torch.randn(n, n, device=dev).to(dtype), torch.randn(n, n, device=dev).to(dtype)
    a @ b  # warm-up: thread pool, kernel choice
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def machine_info() -> dict[str, Any]:
    """CPU, cores, GPU, measured matmul GFLOP/s in fp32 and bf16, what `--precision auto` picks, versions."""
    import torch

    from recgen.device import resolve_device, resolve_precision

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "fp32_gflops": round(matmul_gflops(torch.float32)), "bf16_gflops": round(matmul_gflops(torch.bfloat16)),
            # `--precision auto` trains in bf16 only with native bf16 (AMX, AVX-512 BF16, bf16 GPUs): the record
            # says which it had
            "precision_auto": resolve_precision("auto", resolve_device("auto")),
            "torch": torch.__version__, "python": platform.python_version()}


def machine() -> str:
    """machine_info() in one line."""
    m = machine_info()
    dev = f"CUDA {m['gpu']}" if m["gpu"] else "no GPU"
    return (f"{m['cores']} cores ({m['cpu']}), {dev}, fp32 matmul {m['fp32_gflops']} GFLOP/s, bf16 matmul "
            f"{m['bf16_gflops']} GFLOP/s, precision auto = {m['precision_auto']}, torch {m['torch']}, "
            f"Python {m['python']}")


def write_record(name: str, title: str, command: str, figures: dict[str, Any], details: Any = None,
                 out_dir: str | Path = "bench/results") -> Path:
    """One benchmark result as bench/results/NAME-YYYYMMDD.json: the title, the command that reproduces it, the date,
    the machine (with its measured matmul peaks), the headline `figures` (flat name -> value) and free `details`.
    docs/BENCHMARKS.md is generated from these files."""
    from recgen.files import atomic_write

    out = Path(out_dir) / f"{name}-{date.today().strftime('%Y%m%d')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rec = {"name": name, "title": title, "command": command, "date": date.today().isoformat(),
           "machine": machine_info(), "figures": figures, "details": details}
    atomic_write(out, json.dumps(rec, indent=2, default=str) + "\n")
    return out
