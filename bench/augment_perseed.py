"""What would one seed of `recgen augment` have picked on its own validation images? Re-scores a run's recognizers.

`recgen augment` chooses its best ratio on the mean validation accuracy over its seeds; a user runs one seed. Runs
made before results.json kept each seed's validation figures (`val_accuracy_per_seed`) are re-scored here: every
recognizer in work/classify/ is matched to its arm and seed by its test figures, scored on that seed's validation
images, and each seed's pick (best validation accuracy among the ratio arms, the first on a tie, as `recgen augment`
picks) is reported with its test gain in minority recall (--imbalance runs) or accuracy.

    python bench/augment_perseed.py runs/exp-5seeds/augment/imbalance-5seeds-1 --out bench/results/x.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from recgen import classify
from recgen.config import from_dict
from recgen.data import load_dataset
from recgen.loop.augment import AugmentConfig, _classes, validation_set
from recgen.runs import Run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a `recgen augment` run folder (results.json, work/classify/)")
    ap.add_argument("--out", help="write the per-seed figures here as JSON")
    args = ap.parse_args()
    run = Run(args.run)
    cfg = from_dict(AugmentConfig, run.config["options"], "augment")
    res = json.loads((run.path / "results.json").read_text())
    full = load_dataset(cfg.data, "train", cfg.data_dir or None)
    test = load_dataset(cfg.data, "test", cfg.data_dir or None, full.x.shape[1], full.x.shape[-1])
    watch = _classes(cfg.minority, full.classes)[0] if cfg.imbalance else None
    arms = {f"x{a['ratio']:g}": a for a in res["arms"]} | ({"oversampled": res["oversampled"]}
                                                           if res.get("oversampled") else {})
    vals = {s: validation_set(full, cfg, s) for s in range(cfg.seeds)}  # each seed's, drawn as the run drew it
    fig = {}  # (arm, seed) -> test accuracy, test recall of `watch`, validation accuracy
    for path in sorted((run.path / "work" / "classify").iterdir()):
        rec = classify.load(path)
        m = rec.evaluate(data=test, write=False)
        r = m["per_class"][watch]["recall"] if watch is not None else 0.0
        hits = [(n, s) for n, a in arms.items() for s, acc in enumerate(a["accuracy_per_seed"])
                if abs(acc - m["accuracy"]) < 5e-5 and (watch is None or abs(
                    a["recall_per_seed"][full.classes[watch]][s] - r) < 5e-4)]
        if len(hits) != 1:
            sys.exit(f"{path}: matches {len(hits)} arm/seed pairs of results.json by its test figures, expected 1")
        n, s = hits[0]
        fig[n, s] = (m["accuracy"], r, rec.evaluate(data=vals[s], write=False)["accuracy"])
    ratio_arms = [f"x{a['ratio']:g}" for a in res["arms"]]  # `recgen augment` picks among these
    rows, k = [], 1 if watch is not None else 0  # the gain in minority recall, else in accuracy
    for s in range(cfg.seeds):
        pick = max(ratio_arms, key=lambda n: fig[n, s][2])
        gain = 100 * (fig[pick, s][k] - fig["x0", s][k])
        rows.append({"seed": s, "pick": pick, "gain_points": round(gain, 2),
                     "val_accuracy": {n: fig[n, s][2] for n in arms}})
        print(f"seed {s}: validation accuracy " + ", ".join(f"{n} {fig[n, s][2]:.3f}" for n in arms)
              + f" -> picks {pick}: {'minority recall' if watch is not None else 'accuracy'} gain {gain:+.1f} points")
    print(f"mean gain of each seed's own pick: {np.mean([r['gain_points'] for r in rows]):+.2f} points")
    if args.out:
        Path(args.out).write_text(json.dumps({"run": args.run, "seeds": rows}, indent=1))


if __name__ == "__main__":
    main()
