"""Progress of a long phase, one call for a terminal and a log. On a terminal: a rich bar with the elapsed time and
an ETA (a spinner when the length is unknown). On a pipe or in a log: a heading line saying what runs, a line every
few seconds while it runs (from a timer, so a phase that cannot count, an SVM fit, still shows it is alive), and one
line when it ends.

    with Progress("sampling", total=n, unit="images") as p:
        for batch in ...:
            p.advance(len(batch))

The training loop has its own bar (EpochProgress, below); a phase that runs training inside passes bar=False, as
rich allows one live display at a time. A phase that starts while another display is live adds a row to it (or, when
that display is not ours, stays silent rather than break it).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Self, TextIO

# seconds between two lines on a pipe; $RECGEN_PROGRESS_EVERY overrides (tests, chatty CI logs)
EVERY = float(os.environ.get("RECGEN_PROGRESS_EVERY", "5"))


def _fmt_s(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


class Progress:
    """A phase named `what`, of `total` units (None: unknown). bar: None = a rich bar when the stream is a terminal,
    False = lines only."""

    _ours = None  # the rich display this module started, shared by nested phases

    def __init__(self, what: str, total: int | None = None, unit: str = "", bar: bool | None = None,
                 stream: TextIO | None = None, every: float | None = None):
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stderr
        self.bar = (self.stream.isatty() if bar is None else bar) and os.environ.get("TERM") != "dumb"
        self.every = EVERY if every is None else every
        self.done, self.info = 0, ""
        self._rich = self._task = self._timer = None
        self._owner = self._silent = self._closed = False
        self._heading: str | None = None  # the heading line, until it is printed
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------------------- context
    def __enter__(self) -> Self:
        self.t0 = self._last = time.perf_counter()
        if self.bar:
            self._start_bar()
        if self._rich is None and not self._silent:
            size = f": {self.total} {self.unit}".rstrip() if self.total else ""
            # printed with the first sign of work (an update, a timer line, the end): a phase refused before it
            # starts (a user mistake found by the first call) leaves the error as the command's only line
            self._heading = f"{self.what}{size} ..."
            self._tick()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        took = time.perf_counter() - self.t0
        if self._rich is not None:
            if self.total:
                self._rich.update(self._task, completed=self.done)
            if self._owner:
                self._rich.stop()
                Progress._ours = None
            else:
                self._rich.remove_task(self._task)
        elif not self._silent and (kind is None or self._heading is None):
            self._line(f"{self.what}: {'done' if kind is None else 'stopped'} in {_fmt_s(took)}")

    # -------------------------------------------------------------------------------------------- updates
    def advance(self, k: float = 1, info: str = "") -> None:
        self.update(self.done + k, info)

    def update(self, done: float, info: str = "") -> None:
        self.done, self.info = done, info or self.info
        if self._rich is not None:
            self._rich.update(self._task, completed=done, info=self.info)
        elif not self._silent and (self._heading is not None or time.perf_counter() - self._last >= self.every):
            self._status()

    def log(self, line: str) -> None:
        """A line of its own (a result on the way), above the bar on a terminal."""
        if self._rich is not None:
            self._rich.console.print(line)
        elif not self._silent:
            self._line(line)

    # ------------------------------------------------------------------------------------------- internals
    def _start_bar(self) -> None:
        import rich
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        from rich.progress import Progress as Bar

        if Progress._ours is not None:
            self._rich = Progress._ours
        elif getattr(rich.get_console(), "_live_stack", None) or getattr(rich.get_console(), "_live", None):
            self._silent = True  # someone else's bar (the training loop's) is on screen
            return
        else:
            counted = [BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn()]
            self._rich = Bar(SpinnerColumn(), TextColumn("{task.description}"), *(counted if self.total else []),
                             TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                             console=Console(file=self.stream), transient=False)
            self._rich.start()
            Progress._ours, self._owner = self._rich, True
        self._task = self._rich.add_task(self.what, total=self.total, info="")

    def _status(self) -> None:
        took = time.perf_counter() - self.t0
        if self.total:
            left = took / self.done * (self.total - self.done) if self.done else None
            eta = f", about {_fmt_s(left)} left" if left is not None else ""
            text = (f"{int(self.done)}/{self.total} {self.unit} ({100 * self.done / self.total:.0f} %), "
                    f"{_fmt_s(took)}{eta}")
        else:
            text = f"running for {_fmt_s(took)}"
        self._line(f"  {self.what}: {text.replace('  ', ' ')}" + (f"  {self.info}" if self.info else ""))

    def _tick(self) -> None:
        """Also a line every `every` seconds when no update comes (a phase that cannot count its work)."""
        if self.every <= 0 or self._closed:
            return

        def fire():
            if self._closed:
                return
            if time.perf_counter() - self._last >= self.every * 0.99:
                self._status()
            self._tick()

        self._timer = threading.Timer(self.every, fire)
        self._timer.daemon = True
        self._timer.start()

    def _line(self, text: str) -> None:
        with self._lock:
            self._last = time.perf_counter()
            if self._heading is not None:
                print(self._heading, file=self.stream, flush=True)
                self._heading = None
            print(text, file=self.stream, flush=True)


def track(items: Any, what: str, total: int | None = None, unit: str = "", **kw: Any):
    """Iterate over `items` inside a Progress that advances by one per item."""
    total = len(items) if total is None and hasattr(items, "__len__") else total
    with Progress(what, total=total, unit=unit, **kw) as p:
        for item in items:
            yield item
            p.advance()


# ----------------------------------------------------------------------------------------------- training
def format_row(row: dict[str, Any]) -> str:
    parts = []
    for k, v in row.items():
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return "  ".join(parts)


class EpochProgress:
    """The training loop's progress: a rich bar on a terminal; one line per epoch otherwise (CI logs, pipes). Its
    lines are the epoch rows, where Progress (every other long phase) prints a status line every few seconds."""

    def __init__(self, total: int, done: int, bar: bool, quiet: bool = False):
        self.bar, self.quiet = None, quiet
        if bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[info]}"), transient=False)
            self.bar.start()
            self.id = self.bar.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.id, completed=step, info=info)

    def log(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line)
        elif not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
