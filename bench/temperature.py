"""Recognizability against sampling temperature: does a softer softmax (PixelCNN) or a shrunk noise (GAN, VAE:
the truncation trick, arXiv 1809.11096) make class-conditional samples look more like their class? And against the
classifier-free guidance scale (`--guidances`, diffusion and PixelCNN runs trained with cond_dropout).

    flock /tmp/recgen-bench.lock .venv/bin/python bench/temperature.py runs/bench-pcnn/generate/pixelcnn-1 \
        --judge runs/bench/classify/cnn-1 --temperatures 1.0,0.9,0.8 --n 100
    flock /tmp/recgen-bench.lock .venv/bin/python bench/temperature.py runs/bench-pcnn-cfg/generate/pixelcnn-1 \
        --judge runs/bench/classify/cnn-1 --temperatures 1.0 --guidances 1,2,3 --n 100

Prints one JSON line per temperature and guidance: the judge's accuracy on the samples (classes in turn), per class, and the
sampling seconds. The same seed gives the same samples, so each temperature sees the same classes and noise seeds.
"""

from __future__ import annotations

import argparse
import json
import time

from recgen import generate
from recgen.evaluate.generation import recognizability
from recgen.loop.judge import load_judge, sample_many


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a class-conditional recgen generator run")
    p.add_argument("--judge", required=True, help="a recgen CNN run")
    p.add_argument("--temperatures", default="1.0,0.9,0.8")
    p.add_argument("--guidances", default="", help="guidance scales to try (default: the run's own)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    gen = generate.load(a.run)
    judge = load_judge(a.judge, gen.config.data)
    guidances = [float(w) for w in a.guidances.split(",")] if a.guidances else [None]
    for temp, w in ((float(t), w) for t in a.temperatures.split(",") for w in guidances):
        t0 = time.perf_counter()
        x, y = sample_many(gen, a.n, a.seed, batch=100, temperature=temp, **({} if w is None else {"guidance": w}))
        seconds = time.perf_counter() - t0
        rec = recognizability(judge, x, y, gen.classes)
        print(json.dumps({"run": a.run, "temperature": temp, "guidance": w, "n": a.n,
                          "sampling_seconds": round(seconds, 1),
                          "recognizability": round(rec["recognizability"], 4),
                          "per_class": {k: round(v, 3) for k, v in rec["recognizability_per_class"].items()}}),
              flush=True)


if __name__ == "__main__":
    main()
