"""Classification Accuracy Score (arXiv 1905.10887) under several classifier budgets, from one cached sample set.

`recgen generate eval` trains its CAS classifier with a small fixed budget (CAS_OPTIONS, CAS_STEPS in
recgen/loop/judge.py), which on 10,000 real training images reaches 90.7 %. This script asks how CAS moves with the
classifier's size and budget (CAS_CLASSIFIERS, `--cas-classifier` of `recgen generate eval`), always beside the same
classifier trained on as many real training images (the floor), so the ratio stays honest:

    python bench/cas.py runs/bench-diff6/generate/diffusion-1 --n 10000 --precision bf16 \
        --cache runs/cas-samples-diff6.npz --budgets small:800,recognizer:2400 --classifier-seeds 0

Samples are drawn exactly as `recgen generate eval --n N --seed S` draws them (same seeds, so the same images) and
cached, so each budget reuses them. Prints one JSON line per budget and writes them to --json-out when given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recgen import generate
from recgen.classify.api import load_splits
from recgen.data import load_dataset
from recgen.loop.judge import CAS_CLASSIFIERS, CAS_OPTIONS, cas, cas_options_for, real_references, sample_many


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a class-conditional recgen generator run")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="bf16", help="sampling precision: fp32 | bf16")
    p.add_argument("--guidance", type=float, default=None, help="diffusion guidance (default: the run's)")
    p.add_argument("--cache", required=True, help=".npz of samples: read when present, written otherwise")
    p.add_argument("--budgets", default="small:800", help="CLASSIFIER:STEPS,... with CLASSIFIER in "
                   + "|".join(CAS_CLASSIFIERS))
    p.add_argument("--classifier-seeds", default="0", help="seeds of the CAS classifiers (the samples and the real "
                   "subset stay those of --seed)")
    p.add_argument("--json-out", default="")
    a = p.parse_args()

    gen = generate.load(a.run)
    cache = Path(a.cache)
    if cache.is_file():
        with np.load(cache) as z:
            fake, fake_y = z["x"], z["y"]
        sample_secs = None
    else:
        kw = {} if a.guidance is None else {"guidance": a.guidance}
        t0 = time.perf_counter()
        fake, fake_y = sample_many(gen, a.n, a.seed, precision=a.precision, **kw)
        sample_secs = round(time.perf_counter() - t0, 1)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, x=fake, y=fake_y)
        tmp.replace(cache)
    fake, fake_y = fake[:a.n], fake_y[:a.n]

    cfg = gen.config
    train, _, _ = load_splits(cfg)
    test = load_dataset(cfg.data, "test", cfg.data_dir or None, gen.input_shape[1], gen.input_shape[0])
    n = min(len(fake), len(test), len(train))
    real, _ = real_references(train, test, n, a.seed)  # the floor's real images, exactly those of generate eval

    lines = []
    for spec in a.budgets.split(","):
        name, steps = spec.split(":")
        opts = cas_options_for(name, {"steps": int(steps)})
        for cseed in (int(s) for s in a.classifier_seeds.split(",")):
            row = {"generator": a.run, "n": n, "seed": a.seed, "classifier_seed": cseed, "precision": a.precision,
                   "guidance": a.guidance, "classifier": name, "options": {**CAS_OPTIONS, **opts},
                   "sample_seconds": sample_secs}
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                row["cas"], _ = cas(fake, fake_y, test, test.classes, cseed, Path(tmp), opts)
                row["cas_real"], _ = cas(real.x, real.y, test, test.classes, cseed, Path(tmp), opts)
                row["train_seconds"] = round(time.perf_counter() - t0, 1)
            row["ratio"] = round(row["cas"] / row["cas_real"], 4)
            print(json.dumps(row), flush=True)
            lines.append(row)
    if a.json_out:
        Path(a.json_out).write_text("".join(json.dumps(r) + "\n" for r in lines))


if __name__ == "__main__":
    main()
