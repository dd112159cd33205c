"""Figures written into run directories (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recgen.files import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())
    return Path(path)


def curves(rows: list[dict], path: Path, keys: list[str] | None = None) -> Path | None:
    """One panel per metric over epochs."""
    if not rows:
        return None
    keys = keys or [k for k in rows[-1] if k not in ("epoch", "step", "lr", "seconds", "images_per_s")
                    and isinstance(rows[-1][k], (int, float))]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    x = [r["epoch"] for r in rows]
    for ax, k in zip(axes[0], keys):
        ax.plot(x, [r.get(k, np.nan) for r in rows], marker="o", ms=3)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion(cm: list[list[int]], classes: list[str], path: Path) -> Path:
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(0.55 * n + 2, 0.55 * n + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    return _save(fig, path)


def image_grid(images: np.ndarray, path: Path, titles: list[str] | None = None, cols: int = 8,
               scale: float = 1.1) -> Path:
    """images: uint8 (N, H, W[, C]). Titles are wrapped to the cell's width, never cut: class names such as
    "t-shirt/top" or a folder's long names must stay readable."""
    import textwrap

    n = len(images)
    cols = min(cols, max(n, 1))
    rows = max(1, -(-n // cols))
    width = max(8, int(13 * scale))  # characters of a 6-point title across one cell
    titles = [textwrap.fill(str(t), width) for t in titles] if titles else None
    lines = max((t.count("\n") + 1 for t in titles), default=0) if titles else 0
    title_h = 0.12 * (lines + 1) if lines else 0  # inches of title above each row
    fig, axes = plt.subplots(rows, cols, figsize=(scale * cols, (scale + title_h) * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            im = images[i]
            if im.ndim == 3 and im.shape[-1] == 1:
                im = im[..., 0]
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255)
            if titles:
                ax.set_title(titles[i], fontsize=6)
    return _save(fig, path)


def bars(values: dict[str, float], path: Path, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(max(3, 0.5 * len(values) + 1), 2.6))
    ax.bar(range(len(values)), list(values.values()))
    ax.set_xticks(range(len(values)), list(values), rotation=60, ha="right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
