"""`recgen demo`: the main job on Fashion-MNIST with a small CPU budget.

Today it trains and evaluates the recognizer and writes its report; the generation and loop stages plug in here as
they land (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

from recgen import classify


def run_demo(out: str = "runs", quick: bool = False) -> Path:
    """quick: a smoke-sized run (a few hundred images, one epoch) for tests."""
    opts = dict(model="cnn", data="fashion-mnist", out=out, name="demo-cnn")
    if quick:
        opts.update(limit=30, epochs=1, batch_size=64)
    else:
        opts.update(epochs=4, batch_size=256)
    run = classify.train(**opts)
    return run.path / "report.html"
