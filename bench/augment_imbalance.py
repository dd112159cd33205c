"""Do synthetic minority images add anything over repeating the real ones? Mixes of both, on an imbalanced run.

`recgen augment --imbalance ...` compares real only, real with the minority images oversampled (repeated up to the
majority count) and real + synthetic minority images. This script reuses such a run's subsets and generators (its
work/generate/, one per seed) and trains recognizers on mixes: the minority class's real images repeated R times
plus S synthetic images per real minority image, every other class as in the subset. Each recognizer is trained as
the run trains its arms (same options and seeds), so its figures sit beside the run's results.json.

    python bench/augment_imbalance.py runs/bench-aug-over/augment/augment-imbalance-oversample-1 --mixes 5:5,10:9

R:S = 1:9 is the run's x9 arm (the same samples), 10:0 its oversampled arm. One JSON object per mix is appended to
bench/results/augment-imbalance-mixes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from recgen import generate
from recgen.config import from_dict
from recgen.data import load_dataset
from recgen.loop.augment import (AugmentConfig, _classes, _recognizer, oversampled, real_subset,
                                 synthesize, with_real)
from recgen.runs import Run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a `recgen augment --imbalance` run whose work/generate/ holds one generator a seed")
    ap.add_argument("--mixes", default="5:5", help="R:S pairs, comma-separated (R real repeats, S synthetic per real)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "augment-imbalance-mixes.jsonl"))
    args = ap.parse_args()
    run = Run(args.run)
    cfg = from_dict(AugmentConfig, run.config["options"], "augment")
    if not cfg.imbalance or cfg.generator:
        sys.exit(f"{args.run}: expected an --imbalance run that trained its own generators")
    mixes = [tuple(int(v) for v in m.split(":")) for m in args.mixes.split(",")]
    full = load_dataset(cfg.data, "train", cfg.data_dir or None)
    test = load_dataset(cfg.data, "test", cfg.data_dir or None, full.x.shape[1], full.x.shape[-1])
    minority = _classes(cfg.minority, full.classes)
    results = json.loads((run.path / "results.json").read_text())
    work = run.path / "work"
    for repeat, ratio in mixes:
        t0, per_seed = time.perf_counter(), []
        for seed in range(cfg.seeds):
            subset = real_subset(full, cfg, seed)
            # each minority class holds the same number of real images: `repeat` times that many, each as often
            train = oversampled(subset, minority, repeat * int((subset.y == minority[0]).sum()))
            if ratio:
                gen = generate.load(work / "generate" / f"gen-{cfg.generator_model}-{seed + 1}")
                syn = synthesize(gen, subset, ratio, minority, seed, guidance=cfg.guidance or None,
                                 precision=cfg.precision)
                train = with_real(train, syn)
            r = _recognizer(train, test, cfg, seed, work / "mixes", tag=f"r{repeat}s{ratio}")
            per_seed.append({"accuracy": r["accuracy"],
                             "minority_recall": float(np.mean([r["recall"][c] for c in minority]))})
        row = {"run": str(run.path), "mix": f"{repeat}:{ratio}", "real_repeat": repeat, "synthetic_per_real": ratio,
               "recognizer": results.get("recognizer"), "seeds": cfg.seeds,
               "accuracy_mean": float(np.mean([p["accuracy"] for p in per_seed])),
               "minority_recall_mean": float(np.mean([p["minority_recall"] for p in per_seed])),
               "per_seed": per_seed, "seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
