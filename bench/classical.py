"""Fashion-MNIST benchmark of the classical defaults: fit `build_classical(model)` on the 60k training images and
score it on the 10k test images, timing fit, predict and (inside both) feature extraction.

    flock /tmp/recgen-bench.lock .venv/bin/python bench/classical.py [--models svm rf] [--out result.json]

Prints one JSON object: per model accuracy, fit / predict / feature seconds, its config, plus the data
fingerprints and library versions that make the figures reproducible. Targets (see the issue): svm >= 93.0 %
with fit + predict <= 300 s on 2 cores; rf >= 89 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict

import sklearn

from recgen.classify.classical import DEFAULT_FEATURES, build_classical, resolve_config
from recgen.data import load_dataset


def timed_features(pipe) -> list[float]:
    """Wrap the pipeline's feature step so that the seconds spent in it accumulate in the returned list."""
    union = pipe.named_steps["features"]
    spent = [0.0]

    def timed(method):
        def run(*args, **kwargs):
            t = time.perf_counter()
            out = method(*args, **kwargs)
            spent[0] += time.perf_counter() - t
            return out
        return run

    union.fit_transform, union.transform = timed(union.fit_transform), timed(union.transform)
    return spent


def bench(model: str, features: str, seed: int, train, test) -> dict:
    pipe = build_classical(model, features, seed=seed)
    spent = timed_features(pipe)
    t0 = time.perf_counter()
    pipe.fit(train.x, train.y)
    t1 = time.perf_counter()
    pred = pipe.predict(test.x)
    t2 = time.perf_counter()
    return {"accuracy": round(float((pred == test.y).mean()), 4),
            "fit_seconds": round(t1 - t0, 1), "predict_seconds": round(t2 - t1, 1),
            "total_seconds": round(t2 - t0, 1), "feature_seconds": round(spent[0], 1),
            "features": features or DEFAULT_FEATURES[model], "config": asdict(resolve_config(model))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["svm", "rf"], choices=["svm", "rf"])
    ap.add_argument("--features", default="", help="feature spec, e.g. hog+lbp+pixels (default: the model's, "
                    f"{DEFAULT_FEATURES})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args()

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    result = {"data": "fashion-mnist", "train": len(train), "test": len(test),
              "train_fingerprint": train.fingerprint(), "test_fingerprint": test.fingerprint(), "seed": args.seed,
              "cpus": os.cpu_count(), "python": platform.python_version(), "sklearn": sklearn.__version__,
              "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}
    for model in args.models:
        result[model] = bench(model, args.features, args.seed, train, test)
        result[model]["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
