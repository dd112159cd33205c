"""`recgen bench demo`: time `recgen demo` (the whole chain on Fashion-MNIST; target about 10 minutes).

    python bench/demo.py [--out runs/bench]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recgen.demo import run_demo
from recgen.machine import write_record

RESULTS = Path(__file__).resolve().parent / "results"


def bench_demo(out: str) -> Path:
    t0 = time.perf_counter()
    report = run_demo(out=out)
    wall = round(time.perf_counter() - t0, 1)
    summary = json.loads((report.parent / "summary.json").read_text())
    figures = {"wall seconds": wall}
    figures.update({k: v for k, v in summary.items() if isinstance(v, (int, float)) and k != "total seconds"})
    return write_record("demo", "`recgen demo`: the whole chain (target: about 10 minutes)", "recgen bench demo",
                        figures, {"report": str(report), **summary}, out_dir=RESULTS)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench", help="root folder of the benchmark runs")
    print(bench_demo(p.parse_args().out))
