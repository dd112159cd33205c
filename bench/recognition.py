"""`recgen bench cnn` / `recgen bench classical`: the default recognizers on full Fashion-MNIST, one record each.

    python bench/recognition.py cnn [--out runs/bench]        # the CNN recipe (its 10-minute budget)
    python bench/recognition.py classical                     # SVM and random forest at their defaults
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recgen import classify
from recgen.machine import write_record

RESULTS = Path(__file__).resolve().parent / "results"


def train_and_time(out: str, **opts) -> tuple[dict, list[dict]]:
    """Train with `opts`; the test evaluation's headline figures and the per-epoch metric rows."""
    t0 = time.perf_counter()
    run = classify.train(out=out, **opts)
    wall = time.perf_counter() - t0
    ev = json.loads((run.path / "eval-test.json").read_text())
    rows = run.run.read_metrics()
    res = {"run": str(run.path), "test accuracy": ev["accuracy"], "macro F1": ev["macro_f1"],
           "training seconds": run.run.config.get("train_seconds"), "wall seconds": round(wall, 1),
           "inference images/s": ev["inference_images_per_s"]}
    if rows:  # a network's per-epoch test evaluations: when it first passed 93 %, and its training speed
        hit = next((row for row in rows if row.get("test_accuracy", 0) >= 0.93), None)
        res["seconds to 93 % test accuracy"] = hit["seconds"] if hit else None
        res["training images/s"] = rows[-1].get("images_per_s")
    return res, rows


def flags(opts: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items())


def bench_cnn(out: str) -> Path:
    opts = {"model": "cnn", "data": "fashion-mnist", "val_fraction": 0.0}
    res, rows = train_and_time(out, **opts)
    details = {"run": res.pop("run"), "command": f"recgen classify train {flags(opts)}", "epochs": rows}
    return write_record("cnn", "CNN on Fashion-MNIST, default recipe (target: 95 % in 10 minutes)",
                        "recgen bench cnn", res, details, out_dir=RESULTS)


def bench_classical(out: str) -> Path:
    figures, details = {}, {}
    for model, label in (("svm", "SVM"), ("rf", "random forest")):
        opts = {"model": model, "data": "fashion-mnist", "val_fraction": 0}
        res, _ = train_and_time(out, **opts)
        details[model] = {**res, "command": f"recgen classify train {flags(opts)}"}
        figures[f"{label} test accuracy"] = res["test accuracy"]
        figures[f"{label} training seconds"] = res["training seconds"]
    return write_record("classical", "Classical features + SVM / random forest (defaults)",
                        "recgen bench classical", figures, details, out_dir=RESULTS)


BENCHES = {"cnn": bench_cnn, "classical": bench_classical}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("which", choices=sorted(BENCHES))
    p.add_argument("--out", default="runs/bench", help="root folder of the benchmark runs")
    a = p.parse_args()
    print(BENCHES[a.which](a.out))
