"""How many trees does the random forest need? Scores the first k trees of a fitted `recgen classify train --model rf`
run on the Fashion-MNIST test set. scikit-learn draws each tree's seed in order from the forest's random state, so
the first k trees of a 300-tree forest are exactly the trees a k-tree forest with the same seed would grow.

    .venv/bin/python bench/rf_trees.py runs/bench/classify/rf-1 --trees 50,100,150,300
"""

from __future__ import annotations

import argparse
import time

from recgen import classify
from recgen.data import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--trees", default="50,100,150,300")
    a = ap.parse_args()
    run = classify.load(a.run)
    pipe = run.model
    test = load_dataset(run.config.data, "test")
    x = run.prepare(test.x)
    rf = pipe.steps[-1][1]
    trees = rf.estimators_
    for k in (int(v) for v in a.trees.split(",")):
        rf.estimators_, rf.n_estimators = trees[:k], k
        t0 = time.perf_counter()
        acc = float((pipe.predict(x) == test.y).mean())
        print(f"{k:4d} trees: test accuracy {acc:.4f} (predict {time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
