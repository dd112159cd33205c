"""Screen sampling settings for the low-data augmentation loop on one seed's subset, with its generator fixed.

`recgen augment` trains a generator per seed, then samples with the run's defaults. This script reuses such a
generator (a run under an augment run's work/generate/) and compares ways of sampling from it, each arm scored like
`recgen augment` scores one: the recognizer on real + synthetic vs real only, the synthetic images' near-copy rate and
nearest-neighbour distance ratio. Used to pick the defaults for issue 4's 10-images-per-class target.

    python bench/augment_lowdata.py runs/exp/augment/NAME-1/work/generate/gen-diffusion-1 --seed 0 \
        --arms "default:;g1:guidance=1;ddpm50:sampler=ddpm,steps=50" --ratios 4,16

With `train` instead of a run, the generator is first trained on the seed's subset as `recgen augment` trains it
(--generator-model, --generator-steps, --generator-augment, --generator-augment-p), into --work:

    python bench/augment_lowdata.py train --seed 0 --generator-model diffusion --generator-steps 1500 \
        --generator-augment flip+crop --generator-augment-p 0.5 --work runs/exp-nl --arms "bf16:precision=bf16"

An arm is NAME:key=value,...; keys are `GeneratorRun.sample` keywords (sampler, steps, guidance, temperature,
precision, strength). With `strength` the arm varies each real image (`like=`, SDEdit for diffusion) ratio times
instead of sampling from noise. With `between` (a noise level in (0, 1]) each synthetic image lies between two real
images of its class: both DDIM-inverted to that level, a random point on the great circle between them (fraction
uniform in [0.2, 0.8]) sampled back with DDIM (diffusion generators only). With `keep` (a fraction) the arm keeps
only that share of each class's synthetic images, those two cross-fitted recognizers (each trained on the real images
and the other half of the synthetic ones) give the highest probability of their label.

How the recognizer uses them: --steps and --recognizer-augment (every arm's, real only included; by default 500
and flip+crop, `recgen augment`'s recognizer until 2026-12-02, which the recorded figures used), --real-repeat (the
real images repeated in each mixed set, so batches hold more of them; 0 = synthetic images only), --finetune N (then
fine-tune each mixed arm's recognizer on the real images only, N steps at --finetune-lr, from its weights),
--recognizer (classify.train options over `recgen augment`'s, as key=value pairs joined by '&', e.g.
"widths=32,64,128&blocks=1,0,1"; the real-only arms get them too).
Results (one JSON object per arm and ratio) are appended to bench/results/augment-lowdata.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recgen import generate
from recgen.data import ImageSet, load_dataset
from recgen.loop.augment import (AugmentConfig, _copies, _generator, _recognizer, real_subset,
                                 synthesize, train_recognizer, with_real)

ROOT = Path(__file__).resolve().parents[1]


def between(gen, subset: ImageSet, ratio: float, seed: int, strength: float, guidance: float | None = None,
            precision: str = "fp32", steps: int = 20) -> ImageSet:
    """`ratio` images per real image, each between two real images of its class (see the module docstring)."""
    import torch

    from recgen.generate import diffusion
    from recgen.generate.common import from_uint8, slerp, to_uint8

    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    guidance = gen.config.guidance if guidance is None else guidance
    xs, ys = [], []
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        for c in range(subset.num_classes):
            real = subset.x[subset.y == c]
            n, k = int(round(ratio * len(real))), len(real)
            z = diffusion.invert(gen.modules, gen.arch, from_uint8(real), gen._condition(k, c)[0], steps, strength)
            i = rng.integers(0, k, n)
            j = (i + rng.integers(1, k, n)) % k  # another image of the class
            w = torch.from_numpy(rng.uniform(0.2, 0.8, n)).float()
            lat = torch.stack([slerp(z[a].flatten(), z[b].flatten(), t[None])[0] for a, b, t in zip(i, j, w)])
            x = diffusion.sample(gen.modules, gen.arch, gen._condition(n, c)[0], n, g, "ddim", steps, guidance,
                                 latent=lat.view(n, *z.shape[1:]), strength=strength)
            xs.append(to_uint8(x.float()))
            ys.append(np.full(n, c))
    return ImageSet(np.concatenate(xs), np.concatenate(ys), subset.classes, "synthetic")


def keep_confident(syn: ImageSet, subset: ImageSet, cfg: AugmentConfig, keep: float, seed: int, work: Path,
                   **options) -> ImageSet:
    """The `keep` share of each class's synthetic images that cross-fitted recognizers find most typical of it."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 2, len(syn.y)).astype(bool)
    p = np.zeros(len(syn.y))
    for k, fold in enumerate((~half, half)):  # trained on the other half: a model's own images score too well
        other = ImageSet(syn.x[~fold], syn.y[~fold], syn.classes, "synthetic")
        pr = train_recognizer(with_real(subset, other), cfg, 7 + k, work, **options).predict_proba(syn.x[fold])
        p[fold] = pr[np.arange(len(pr)), syn.y[fold]]
    idx = np.concatenate([i[np.argsort(-p[i])][:int(round(keep * len(i)))]
                          for i in (np.flatnonzero(syn.y == c) for c in range(len(syn.classes)))])
    idx.sort()
    return ImageSet(syn.x[idx], syn.y[idx], syn.classes, "synthetic")


def parse_options(spec: str, sep: str = ",") -> dict:
    """'k=v<sep>k=v' with numbers parsed (ints stay ints) and anything else kept as a string."""
    opts = {}
    for item in filter(None, spec.split(sep)):
        k, v = item.split("=", 1)
        for cast in (int, float, str):
            try:
                opts[k.strip()] = cast(v)
                break
            except ValueError:
                pass
    return opts


def parse_arms(spec: str) -> dict[str, dict]:
    arms = {}
    for part in spec.split(";"):
        name, _, kv = part.partition(":")
        arms[name.strip()] = parse_options(kv)
    return arms


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator", help="a generator run trained on the seed's subset, or 'train' to train one")
    ap.add_argument("--generator-model", default="diffusion")
    ap.add_argument("--generator-steps", type=int, default=1500)
    ap.add_argument("--generator-augment", default="none")
    ap.add_argument("--generator-augment-p", type=float, default=0.0)
    ap.add_argument("--work", default="runs/bench-augment-lowdata", help="where `train` puts the generator run")
    ap.add_argument("--seed", type=int, default=0, help="the augment seed whose subset the generator was trained on")
    ap.add_argument("--real-per-class", type=int, default=10)
    ap.add_argument("--arms", default="default:")
    ap.add_argument("--ratios", default="4,16")
    ap.add_argument("--steps", type=int, default=500, help="recognizer optimizer steps")
    ap.add_argument("--recognizer-augment", default="flip+crop", help="the recognizers' training augmentations")
    ap.add_argument("--real-repeat", type=int, default=1, help="copies of the real images in each mixed set")
    ap.add_argument("--finetune", type=int, default=0, help="real-only steps after each mixed arm (0 = none)")
    ap.add_argument("--finetune-lr", type=float, default=0.04, help="their peak learning rate (no warmup)")
    ap.add_argument("--recognizer", default="", help="classify.train options, 'k=v&k=v' (see above)")
    ap.add_argument("--recognizer-seeds", type=int, default=3,
                    help="recognizers per arm (paired with as many real-only ones): one is noisy to about a point")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--cache", default="", help="folder keeping each arm's samples, reused when present")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "augment-lowdata.jsonl"))
    return ap.parse_args()


def samples(a: argparse.Namespace, gen, subset: ImageSet, classes: list[str], sample: dict, r: float,
            cached: Path | None) -> ImageSet:
    """The synthetic images of one arm at ratio r: from the cache when there, else drawn as the arm says."""
    if cached is not None and cached.exists():
        z = np.load(cached)
        return ImageSet(z["x"], z["y"], classes, "synthetic")
    if "between" in sample:
        syn = between(gen, subset, r, a.seed, sample["between"], sample.get("guidance"),
                      sample.get("precision", "fp32"))
    elif "strength" in sample:  # variations of each real image (SDEdit for diffusion), r per image
        xs = [gen.sample(int(r), class_=int(c), like=img, seed=a.seed * 1000 + i, **sample)[0]
              for i, (img, c) in enumerate(zip(subset.x, subset.y))]
        syn = ImageSet(np.concatenate(xs), np.repeat(subset.y, int(r)), classes, "synthetic")
    else:  # from noise, as `recgen augment` samples
        syn = synthesize(gen, subset, r, list(range(len(classes))), a.seed, **sample)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, x=syn.x, y=syn.y)
    return syn


def main() -> None:
    a = parse_args()
    cfg = AugmentConfig(real_per_class=a.real_per_class, steps=a.steps, recognizer_augment=a.recognizer_augment,
                        threads=a.threads, generator_model=a.generator_model, generator_steps=a.generator_steps,
                        generator_augment=a.generator_augment, generator_augment_p=a.generator_augment_p)
    full = load_dataset(cfg.data, "train")
    test = load_dataset(cfg.data, "test")
    subset = real_subset(full, cfg, a.seed)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.generator == "train":
        gen, _ = _generator(subset, cfg, a.seed, Path(a.work))
        a.generator = str(gen.run.path)
        print(f"generator: {a.generator}", flush=True)
    gen = generate.load(a.generator)
    if gen.run.config.get("data_fingerprint") != subset.fingerprint():
        sys.exit(f"{a.generator} was not trained on seed {a.seed}'s {len(subset)}-image subset")
    work = Path(tempfile.mkdtemp(prefix="augment-lowdata-"))
    rseeds = [a.seed + 100 * i for i in range(a.recognizer_seeds)]
    rec = parse_options(a.recognizer, "&")
    bases = [_recognizer(subset, test, cfg, s, work, **rec)["accuracy"] for s in rseeds]
    real = ImageSet(np.repeat(subset.x, a.real_repeat, 0), np.repeat(subset.y, a.real_repeat), full.classes,
                    "real") if a.real_repeat else None  # 0: the arms train on synthetic images only
    base = float(np.mean(bases))
    print(f"real only: {base:.4f} ({', '.join(f'{b:.4f}' for b in bases)})", flush=True)

    def mixed(train: ImageSet, s: int) -> float:
        if not a.finetune:
            return _recognizer(train, test, cfg, s, work, **rec)["accuracy"]
        first = train_recognizer(train, cfg, s, work, **rec)
        tuned = train_recognizer(subset, dataclasses.replace(cfg, steps=a.finetune), s, work,
                                 **{**rec, "init": str(first.path), "lr": a.finetune_lr, "warmup": 0.0})
        return tuned.evaluate(data=test, write=False)["accuracy"]

    gen_id = "-".join(Path(a.generator).resolve().parts[-4:])  # names its cached samples
    for name, opts in parse_arms(a.arms).items():
        keep = opts.get("keep")  # a filter on the samples, not a sampling option
        sample = {k: v for k, v in opts.items() if k != "keep"}
        key = ",".join(f"{k}={v}" for k, v in sorted(sample.items())) or "default"  # with gen_id, names them
        for r in [float(v) for v in a.ratios.split(",")]:
            t = time.perf_counter()
            cached = Path(a.cache) / f"{gen_id}-seed{a.seed}-{key}-x{r:g}.npz" if a.cache else None
            syn = samples(a, gen, subset, full.classes, sample, r, cached)
            secs = time.perf_counter() - t
            if keep is not None:
                syn = keep_confident(syn, subset, cfg, keep, a.seed, work, **rec)
            accs = [mixed(with_real(real, syn) if real is not None else syn, s) for s in rseeds]
            acc = float(np.mean(accs))
            row = {"generator": a.generator, "seed": a.seed, "arm": name, "options": opts, "ratio": r,
                   "recognizer_steps": a.steps, "recognizer_augment": a.recognizer_augment,
                   "real_repeat": a.real_repeat, "recognizer": rec,
                   **({"finetune": a.finetune, "finetune_lr": a.finetune_lr} if a.finetune else {}),
                   "real_only": base, "accuracy": acc, "accuracies": accs,
                   "gain_points": round(100 * (acc - base), 2), **_copies(syn, subset, test),
                   "sampling_s": round(secs, 1)}
            print(json.dumps(row), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
