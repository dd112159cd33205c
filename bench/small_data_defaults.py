"""Small-data defaults: `recgen classify train` with no tuning flags against a few hand-tuned settings, on three
small datasets, one thread each (issue 38, section 1):

    .venv/bin/python bench/small_data_defaults.py --out runs/bench-small     # about 15 minutes on one core

Datasets: scikit-learn's digits (1,437 training images), Fashion-MNIST with --limit 200 (2,000), and the 3-class
colour folder of bench/make_colour_folder.py (60 training images of 32x32 RGB; made here when missing). Arms:

    default  no tuning flags: batch size, learning rate and epochs resolved from the data (recgen/defaults.py)
    fixed    the full-data defaults forced (batch 256, lr 0.4, 20 epochs): what every small run got before
    tuned    the resolved batch halved / doubled and its rate halved / doubled, for the same epochs as the default
             (so about the same images seen and wall time)

The target: the default reaches at least 0.8x the best tuned accuracy in no more wall time. Writes
the record bench/results/small-data-defaults-<date>.json with every run's command, settings, accuracy and times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from recgen.machine import machine, write_record

HERE = Path(__file__).resolve().parent


def datasets(out: Path) -> dict[str, dict]:
    from make_colour_folder import make

    colour = out / "colour3"
    if not (colour / "test").is_dir():
        make(colour)
    return {"digits": {"data": "digits"}, "fashion-mnist-200": {"data": "fashion-mnist", "limit": 200},
            "colour3": {"data": str(colour)}}


def train(out: Path, **opts) -> dict:
    from recgen import classify

    t0 = time.perf_counter()
    run = classify.train(out=str(out), threads=1, **opts)
    wall = time.perf_counter() - t0
    cfg, ev = run.run.config, run.run.saved_eval()
    o = run.config
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in {**opts, "threads": 1}.items())
    return {"command": f"recgen classify train {flags}", "batch_size": o.batch_size, "lr": o.lr, "epochs": o.epochs,
            "resolved": cfg.get("resolved", ""), "split": ev["split"], "accuracy": ev["accuracy"],
            "train_seconds": cfg.get("train_seconds"), "wall_seconds": round(wall, 1), "run": str(run.path)}


def bench(out: Path, only: list[str] | None = None) -> dict:
    res = {"machine": machine(), "date": date.today().isoformat(), "datasets": {}}
    for name, data in datasets(out).items():
        if only and name not in only:
            continue
        rows = {"default": train(out / name, name="default", **data)}
        d = rows["default"]
        bs, lr, ep = d["batch_size"], d["lr"], d["epochs"]
        rows["fixed"] = train(out / name, name="fixed", batch_size=256, lr=0.4, epochs=20, **data)
        for key, (b, r) in {"tuned-half-batch": (bs // 2, lr), "tuned-double-lr": (bs, 2 * lr),
                            "tuned-double-batch": (2 * bs, 2 * lr), "tuned-half-lr": (bs, lr / 2)}.items():
            rows[key] = train(out / name, name=key, batch_size=max(b, 2), lr=round(r, 5), epochs=ep, **data)
        tuned = [v for k, v in rows.items() if k.startswith("tuned")] + [d]
        best = max(tuned, key=lambda v: v["accuracy"])
        res["datasets"][name] = {
            "runs": rows, "best_tuned": best["command"], "best_accuracy": best["accuracy"],
            "default_over_best": round(d["accuracy"] / best["accuracy"], 4),
            "default_wall_over_best": round(d["wall_seconds"] / best["wall_seconds"], 3),
            "target_met": d["accuracy"] >= 0.8 * best["accuracy"] and d["wall_seconds"] <= 1.15 * best["wall_seconds"]}
        print(json.dumps({name: {k: (v["accuracy"], v["wall_seconds"]) for k, v in rows.items()}}), flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench-small")
    p.add_argument("--results", default=str(HERE / "results"), help="where the record goes")
    p.add_argument("--datasets", default="", help="comma-separated subset of digits, fashion-mnist-200, colour3")
    a = p.parse_args()
    res = bench(Path(a.out), [d for d in a.datasets.split(",") if d])
    print(write_record("small-data-defaults", "First runs on small data: `recgen classify train` with no tuning flags "
                       "(target: 0.8x the best tuned accuracy in the same wall time)",
                       " ".join(["python", "bench/small_data_defaults.py", *sys.argv[1:]]), figures(res), res,
                       out_dir=a.results))


def figures(res: dict) -> dict:
    """Per dataset: the default's accuracy, the old fixed defaults', the best tuned run's and the two ratios."""
    out = {}
    for name, d in res["datasets"].items():
        out |= {f"{name}: default accuracy": d["runs"]["default"]["accuracy"],
                f"{name}: old fixed defaults' accuracy": d["runs"]["fixed"]["accuracy"],
                f"{name}: best tuned accuracy": d["best_accuracy"],
                f"{name}: default / best tuned accuracy": d["default_over_best"],
                f"{name}: default / best tuned wall time": d["default_wall_over_best"]}
    return out


if __name__ == "__main__":
    main()
