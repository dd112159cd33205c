"""Screen sampling settings for the low-data augmentation loop on one seed's subset, with its generator fixed.

`recgen augment` trains a generator per seed, then samples with the run's defaults. This script reuses such a
generator (a run under an augment run's work/generate/) and compares ways of sampling from it, each arm scored like
`recgen augment` scores one: the recognizer on real + synthetic vs real only, the synthetic images' near-copy rate and
nearest-neighbour distance ratio. Used to pick the defaults for issue 4's 10-images-per-class target.

    python bench/augment_lowdata.py runs/exp/augment/NAME-1/work/generate/gen-diffusion-1 --seed 0 \
        --arms "default:;g1:guidance=1;ddpm50:sampler=ddpm,steps=50" --ratios 4,16

An arm is NAME:key=value,...; keys are `GeneratorRun.sample` keywords (sampler, steps, guidance, temperature,
precision, strength). With `strength` the arm varies each real image (`like=`, SDEdit for diffusion) ratio times
instead of sampling from noise. Results (one JSON object per arm and ratio) are appended to bench/results/augment-lowdata.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recgen import generate  # noqa: E402
from recgen.data import ImageSet, load_dataset  # noqa: E402
from recgen.loop.augment import (AugmentConfig, _copies, _recognizer, real_subset, synthesize,  # noqa: E402
                                 with_real)


def parse_arms(spec: str) -> dict[str, dict]:
    arms = {}
    for part in spec.split(";"):
        name, _, kv = part.partition(":")
        opts = {}
        for item in filter(None, kv.split(",")):
            k, v = item.split("=")
            opts[k] = v if k in ("sampler", "precision") else (int(v) if k == "steps" else float(v))
        arms[name.strip()] = opts
    return arms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator")
    ap.add_argument("--seed", type=int, default=0, help="the augment seed whose subset the generator was trained on")
    ap.add_argument("--real-per-class", type=int, default=10)
    ap.add_argument("--arms", default="default:")
    ap.add_argument("--ratios", default="4,16")
    ap.add_argument("--steps", type=int, default=500, help="recognizer optimizer steps")
    ap.add_argument("--recognizer-seeds", type=int, default=3,
                    help="recognizers per arm (paired with as many real-only ones): one is noisy to about a point")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--cache", default="", help="folder keeping each arm's samples, reused when present")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "augment-lowdata.jsonl"))
    a = ap.parse_args()
    cfg = AugmentConfig(real_per_class=a.real_per_class, steps=a.steps, threads=a.threads)
    full = load_dataset(cfg.data, "train")
    test = load_dataset(cfg.data, "test")
    subset = real_subset(full, cfg, a.seed)
    gen = generate.load(a.generator)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if gen.run.config.get("data_fingerprint") != subset.fingerprint():
        sys.exit(f"{a.generator} was not trained on seed {a.seed}'s {len(subset)}-image subset")
    work = Path(tempfile.mkdtemp(prefix="augment-lowdata-"))
    rseeds = [a.seed + 100 * i for i in range(a.recognizer_seeds)]
    bases = [_recognizer(subset, test, cfg, s, work)["accuracy"] for s in rseeds]
    base = float(np.mean(bases))
    print(f"real only: {base:.4f} ({', '.join(f'{b:.4f}' for b in bases)})", flush=True)
    for name, opts in parse_arms(a.arms).items():
        for r in [float(v) for v in a.ratios.split(",")]:
            t = time.perf_counter()
            gen_id = "-".join(Path(a.generator).resolve().parts[-4:])
            cached = Path(a.cache) / f"{gen_id}-seed{a.seed}-{name}-x{r:g}.npz"
            if a.cache and cached.exists():
                z = np.load(cached)
                syn = ImageSet(z["x"], z["y"], full.classes, "synthetic")
            elif "strength" in opts:  # variations of each real image (SDEdit for diffusion), r per image
                xs = [gen.sample(int(r), class_=int(c), like=img, seed=a.seed * 1000 + i, **opts)[0]
                      for i, (img, c) in enumerate(zip(subset.x, subset.y))]
                syn = ImageSet(np.concatenate(xs), np.repeat(subset.y, int(r)), full.classes, "synthetic")
            else:  # from noise, as `recgen augment` samples
                syn = synthesize(gen, subset, r, list(range(full.num_classes)), a.seed, **opts)
            if a.cache and not cached.exists():
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, x=syn.x, y=syn.y)
            secs = time.perf_counter() - t
            accs = [_recognizer(with_real(subset, syn), test, cfg, s, work)["accuracy"] for s in rseeds]
            acc = float(np.mean(accs))
            row = {"generator": a.generator, "seed": a.seed, "arm": name, "options": opts, "ratio": r,
                   "recognizer_steps": a.steps, "real_only": base, "accuracy": acc, "accuracies": accs,
                   "gain_points": round(100 * (acc - base), 2), **_copies(syn, subset, test),
                   "sampling_s": round(secs, 1)}
            print(json.dumps(row), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
