"""`--log tensorboard`: each epoch row of metrics.csv also written as TensorBoard scalars in RUN/tensorboard, since
most users watch their curves there. metrics.csv stays the record; this is a view of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def scalar_logger(kind: str, run_path: Path) -> Callable[[dict[str, Any]], None] | None:
    """None for 'csv'; for 'tensorboard' a function writing one metrics row (keyed by its `step`) as scalars.
    The option's check (recgen.config.LOG) has already made sure the package is installed."""
    if kind != "tensorboard":
        return None
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(Path(run_path) / "tensorboard"))

    def log_row(row: dict[str, Any]) -> None:
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                writer.add_scalar(k, v, row["step"])
        writer.flush()  # a run stopped at any point leaves its curves readable

    return log_row
