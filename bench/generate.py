"""Generation benchmark, per family: training time for a budget, parameter count, sampling images/s (diffusion at
10/20/50/250 steps for each sampler), bits/dim (PixelCNN; VAE bound), and optionally recognizability (a recgen CNN
run as judge: the share of class-conditional samples it classifies as the class asked for).

Run it alone on the machine (timings are wall-clock on 2 cores):

    flock /tmp/recgen-bench.lock .venv/bin/python bench/generate.py                     # default budgets, ~20 min each
    flock /tmp/recgen-bench.lock .venv/bin/python bench/generate.py --families gan,vae --max-steps 300   # short
    flock /tmp/recgen-bench.lock .venv/bin/python bench/generate.py --runs runs/generate/gan-1 ...       # trained runs
    flock /tmp/recgen-bench.lock .venv/bin/python bench/generate.py --speed-only         # untrained, sampling only

Results go to bench/results/generate-<time>.json (raw rows), a table on stdout and, unless --no-record, one
record per family (bench/results/generate-FAMILY-<date>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from recgen import generate
from recgen.generate.config import FAMILIES
from recgen.machine import write_record

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = (10, 20, 50, 250)
SAMPLERS = ("ddpm", "ddim", "dpm")


def best_rate(fn, n: int, repeats: int = 3) -> float:
    """Images per second of fn() producing n images: the best of `repeats` timed calls after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(n / best, 1)


def sampling_speed(run, family: str, quick: bool) -> dict:
    if family in ("gan", "vae"):
        n = 2000
        return {"decoder_images_per_s": best_rate(lambda: run.sample(n, seed=0), n),
                "decoder_bf16_images_per_s": best_rate(lambda: run.sample(n, seed=0, precision="bf16"), n)}
    if family == "pixelcnn":
        n = 10
        return {"images_per_s": best_rate(lambda: run.sample(n, seed=0), n, repeats=1)}
    out, n = {}, 32
    for sampler in SAMPLERS:
        for steps in STEPS[:2] if quick else STEPS:
            out[f"{sampler}_{steps}_images_per_s"] = best_rate(
                lambda: run.sample(n, sampler=sampler, steps=steps, seed=0), n, repeats=1)
    return out


def recognizability(run, judge: str, n: int = 1000) -> dict:
    """The share of samples the judge assigns to the class asked for: classes in turn, and for text runs also the
    held-out phrasings of recgen/resources/prompts.json (never seen in training), 20 samples each."""
    from recgen import classify
    from recgen.generate.condition import class_prompts

    j = classify.load(judge)
    x, y = run.sample(n, seed=1)
    out = {"classes": round(float((j.predict_proba(x).argmax(1) == y).mean()), 4)}
    if run.arch.cond == "text":
        hits = total = 0
        for k, phrases in enumerate(class_prompts(run.classes, "heldout")):
            for p in phrases:
                x, _ = run.sample(20, prompt=p, seed=2)
                hits += int((j.predict_proba(x).argmax(1) == k).sum())
                total += len(x)
        out["heldout_prompts"] = round(hits / total, 4)
    return out


def judged(run, judge: str, n: int) -> dict:
    """`recgen generate eval RUN --judge JUDGE --n N`: judge-space scores beside the real-vs-real floor and the noise
    ceiling (the full card stays in the run's eval-judge.json)."""
    from recgen.loop.judge import evaluate_generator

    t0 = time.perf_counter()
    res = evaluate_generator(str(run.path), judge=judge, n=n, seed=0)
    keep = ("fid", "kid", "precision", "recall", "fid_hog", "recognizability", "cas", "reverse_cas",
            "copy_rate", "min_class_spread")
    return {"n": res["card"]["n"], "seconds": round(time.perf_counter() - t0, 1),
            **{part: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res[part].items() if k in keep}
               for part in ("model", "floor", "ceiling")}}


def fid_by_steps(run, judge: str, n: int, steps_list: list[int], samplers: list[str]) -> dict:
    """Diffusion: judge-space FID of n samples at each number of steps, per sampler, against the whole test set,
    beside the real-vs-real floor at the same n (n training images against the same test set)."""
    from recgen.data import load_dataset
    from recgen.evaluate.generation import fid_kid
    from recgen.loop.judge import load_judge, sample_many

    j = load_judge(judge, run.config.data)
    c, h, _ = run.input_shape
    test = load_dataset(run.config.data, "test", run.config.data_dir or None, h, c)
    train = load_dataset(run.config.data, "train", run.config.data_dir or None, h, c)
    pick = np.random.default_rng(0).permutation(len(train))[:n]
    out = {"n": n, "floor": round(fid_kid(j, test.x, train.x[pick])["fid"], 4)}
    for sampler in samplers:
        for steps in steps_list:
            t0 = time.perf_counter()
            x, _ = sample_many(run, n, seed=0, sampler=sampler, steps=steps)
            out[f"{sampler}_{steps}"] = {"fid": round(fid_kid(j, test.x, x)["fid"], 4),
                                         "sampling_s": round(time.perf_counter() - t0, 1)}
            print(f"  fid {sampler} {steps} steps: {out[f'{sampler}_{steps}']}", flush=True)
    return out


def untrained(family: str, out: str):
    """A run directory holding the default network at 28x28, trained for one step (for --speed-only)."""
    return generate.train(model=family, data="digits", limit=2, max_steps=1, val_fraction=0.0, out=out,
                          name=f"speed-{family}", batch_size=8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="gan,vae,pixelcnn,diffusion")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--max-steps", type=int, default=0, help="short budget: stop training after this many steps")
    ap.add_argument("--epochs", default="", help="per-family epochs, e.g. gan=2,vae=5 (default: the family's own, "
                    "sized for ~20 min); unlike --time-budget the schedule then fits the shorter run")
    ap.add_argument("--limit", default="", help="per-family training images per class, e.g. pixelcnn=3000 "
                    "(default: all)")
    ap.add_argument("--time-budget", type=float, default=0.0, help="short budget: stop after this many seconds")
    ap.add_argument("--runs", nargs="*", default=[], help="benchmark these trained runs instead of training")
    ap.add_argument("--speed-only", action="store_true", help="untrained default networks, sampling speed only")
    ap.add_argument("--judge", default="", help="a recgen classify run to judge samples with (recognizability, and "
                    "with --eval-n the full `recgen generate eval` card)")
    ap.add_argument("--eval-n", type=int, default=0, help="judge this many samples per family: FID/KID/P/R, "
                    "recognizability, CAS (0 = skip); PixelCNN gets a fifth of it (pixel-by-pixel sampling)")
    ap.add_argument("--fid-n", type=int, default=0, help="diffusion: judge-space FID of this many samples at each "
                    "of --fid-steps for every sampler (0 = skip)")
    ap.add_argument("--fid-steps", default="10,20,50,250")
    ap.add_argument("--fid-samplers", default="ddpm,ddim,dpm")
    ap.add_argument("--no-record", dest="record", action="store_false", help="write no record to bench/results/")
    ap.add_argument("--quick-sampling", action="store_true", help="diffusion: only 10 and 20 steps")
    ap.add_argument("--text", action="store_true", help="train text-conditional instead of class-conditional")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench")
    return ap.parse_args(argv)


def train_or_load(args: argparse.Namespace, family: str, path: str | None):
    if path:
        return generate.load(path)
    if args.speed_only:
        return untrained(family, args.out)
    epochs, limit = (dict((k, int(v)) for k, v in (kv.split("=") for kv in spec.split(",") if kv))
                     for spec in (args.epochs, args.limit))
    opts = dict(model=family, data=args.data, threads=args.threads, out=args.out, epochs=epochs.get(family),
                limit=limit.get(family), max_steps=args.max_steps, time_budget=args.time_budget,
                text_conditional=args.text)
    return generate.train(**{k: v for k, v in opts.items() if v})


def bench_family(args: argparse.Namespace, family: str, path: str | None) -> dict:
    """One family's row: training budget and speed, its own evaluation, sampling speed and, with --judge, scores."""
    t0 = time.perf_counter()
    run = train_or_load(args, family, path)
    wall = time.perf_counter() - t0
    cfg = run.run.config
    rows = run.run.read_metrics()
    row = {"family": family, "run": str(run.path), "cond": run.arch.cond,
           "params": {k: sum(p.numel() for p in m.parameters()) for k, m in run.modules.items()},
           "epochs_planned": run.config.epochs, "batch_size": run.config.batch_size,
           "steps": rows[-1]["step"] if rows else 0, "stopped": cfg.get("stopped"),
           "train_seconds": cfg.get("train_seconds"),
           "train_images_per_s": rows[-1].get("images_per_s") if rows else None,
           "wall_seconds_incl_eval": round(wall, 1) if not path else None}
    ev = run.run.path / "eval-test.json"
    if ev.is_file() and not args.speed_only:
        m = json.loads(ev.read_text())
        row["eval"] = {k: v for k, v in m.items() if k not in ("run", "model", "cond")}
    row["sampling"] = sampling_speed(run, family, args.quick_sampling)
    if args.judge and args.eval_n:
        row["judged"] = judged(run, args.judge, args.eval_n // 5 if family == "pixelcnn" else args.eval_n)
    if args.judge and run.arch.cond == "class" and "judged" in row:  # the judged samples already tell it
        row["recognizability"] = {"classes": row["judged"]["model"]["recognizability"]}
    elif args.judge and run.arch.cond != "none":
        row["recognizability"] = recognizability(run, args.judge, 200 if family == "pixelcnn" else 1000)
    if args.judge and args.fid_n and family == "diffusion":
        row["fid_by_steps"] = fid_by_steps(run, args.judge, args.fid_n, [int(v) for v in args.fid_steps.split(",")],
                                           args.fid_samplers.split(","))
    return row


JUDGED = [("judge FID", "fid"), ("precision", "precision"), ("recall", "recall"),
          ("recognizability", "recognizability"), ("CAS", "cas")]


def figures(r: dict) -> dict:
    """A family's headline figures for its record (the full row goes into its details)."""
    out = {"training seconds": r["train_seconds"]}
    if "bpd" in r.get("eval", {}):
        out["test bits/dim"] = r["eval"]["bpd"]
    out.update({f"sampling: {k.replace('_', ' ')}": v for k, v in r["sampling"].items() if isinstance(v, float)})
    if "judged" in r:
        j = r["judged"]
        out.update({label: j["model"].get(key) for label, key in JUDGED})
        out["FID floor (real vs real)"], out["CAS floor (real images)"] = j["floor"]["fid"], j["floor"].get("cas")
    for key, v in r.get("recognizability", {}).items():
        out[f"recognizability ({key.replace('_', ' ')})"] = v
    for key, v in r.get("fid_by_steps", {}).items():
        if isinstance(v, dict):
            out[f"FID at {key.replace('_', ' ')} steps (n = {r['fid_by_steps']['n']})"] = v["fid"]
    return out


def write_results(args: argparse.Namespace, results: list[dict]) -> None:
    """The raw rows to bench/results/generate-<time>.json, a table on stdout and, unless --no-record or
    --speed-only, one record per family."""
    doc = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
           "cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
           "budget": {"max_steps": args.max_steps, "time_budget": args.time_budget, "speed_only": args.speed_only,
                      "runs": args.runs}, "results": results}
    dest = RESULTS / f"generate-{datetime.now():%Y%m%d-%H%M%S}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(doc, indent=2))
    print(f"\n{'family':10s} {'params':>9s} {'steps':>6s} {'train s':>8s} {'img/s':>7s}  eval / sampling")
    for r in results:
        params = sum(r["params"].values())
        ev = r.get("eval", {})
        key = {k: ev[k] for k in ("bpd", "elbo", "recon_mse", "loss", "spread_ratio") if k in ev}
        print(f"{r['family']:10s} {params:9d} {r['steps']:6d} {r['train_seconds'] or 0:8.1f} "
              f"{r['train_images_per_s'] or 0:7.1f}  {key} {r['sampling']}"
              + (f" recognizability {r['recognizability']}" if "recognizability" in r else ""))
    print(f"written: {dest}")
    if args.record and not args.speed_only:
        for r in results:
            cond = "text" if args.text else "class"
            print(write_record(f"generate{'-text' if args.text else ''}-{r['family']}",
                               f"{r['family']} ({cond}-conditional) on {args.data}",
                               " ".join(["python", "bench/generate.py", *sys.argv[1:]]), figures(r),
                               {**{k: v for k, v in doc.items() if k != "results"}, "result": r}, out_dir=RESULTS))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    todo = [(generate.load(r).family, r) for r in args.runs] or [(f, None) for f in args.families.split(",")]
    results = []
    for family, path in todo:
        if family not in FAMILIES:
            raise SystemExit(f"unknown family {family!r}")
        results.append(bench_family(args, family, path))
        print(json.dumps(results[-1]), flush=True)
    write_results(args, results)


if __name__ == "__main__":
    main()
