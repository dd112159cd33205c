"""`recgen bench`: run registered benchmark scripts of a source checkout, then regenerate docs/BENCHMARKS.md.

The benchmarks live outside the package, in the checkout's top-level bench/ (they import recgen like any user code
and write their records with `recgen.machine.write_record`); an installed wheel has no bench/ and says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recgen.errors import RecgenError
from recgen.machine import machine, machine_info, matmul_gflops  # noqa: F401 - kept importable from here

# name -> the script (and its arguments) under bench/ that measures it and writes its record
SCRIPTS: dict[str, list[str]] = {
    "classical": ["recognition.py", "classical"],
    "cnn": ["recognition.py", "cnn"],
    "demo": ["demo.py"],
    "augment": ["augment.py"],
}
RENDER = "render_benchmarks.py"


def bench_dir(root: str | Path | None = None) -> Path:
    """The checkout's bench/ folder (beside the recgen package unless `root` names another checkout)."""
    root = Path(root) if root else Path(__file__).resolve().parent.parent
    bench = root / "bench"
    if not (bench / RENDER).is_file():
        raise RecgenError(f"{bench}: no benchmark scripts there; `recgen bench` runs the bench/ folder of a "
                          "source checkout (git clone), which an installed package does not include")
    return bench


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, check=False)
    if done.returncode:
        raise RecgenError(f"{' '.join(cmd[1:])} failed with exit code {done.returncode}")


def run_benchmarks(names: list[str], out: str = "runs/bench", root: str | Path | None = None) -> Path:
    """Run the named benchmarks (all when `names` is empty), each as a script writing its record, then regenerate
    docs/BENCHMARKS.md from bench/results/; returns the page's path."""
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        raise RecgenError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(SCRIPTS)}")
    bench = bench_dir(root)
    out = str(Path(out).resolve())  # the scripts run from the checkout's root
    for name in names or list(SCRIPTS):
        script, *args = SCRIPTS[name]
        print(f"== {name}: bench/{script} {' '.join(args)}", flush=True)
        _run([sys.executable, str(bench / script), *args, "--out", out], bench.parent)
    _run([sys.executable, str(bench / RENDER)], bench.parent)
    return bench.parent / "docs" / "BENCHMARKS.md"
