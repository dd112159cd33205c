"""Detection benchmark: CenterNet (the defaults of `recgen detect train`) and the classical baseline on held-out
Fashion-MNIST test scenes (96x96, test-split objects only); prints one JSON object with the figures and commands.

    flock /tmp/recgen-bench.lock .venv/bin/python bench/detect.py --out runs/bench

Targets (issue "Detection"): mAP@[.5:.95] >= 0.75 on the test scenes; >= 50 images/s inference at 96x96 on 2 cores.
Clocks: `train_seconds` is the loop's wall time; `train_cpu_seconds` is process CPU time / threads, which estimates
the uncontended 2-core wall time when other jobs share the machine. Inference is timed after a warm-up, batched
(256 images) and one image at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recgen import detect
from recgen.machine import machine, write_record

TARGET_MAP, TARGET_IPS = 0.75, 50.0
RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = {"centernet": [("mAP@[.5:.95]", "map"), ("mAP@.5", "map50"), ("training seconds", "train_seconds"),
                         ("images/s, batched", "images_per_s_batched"),
                         ("images/s, one at a time", "images_per_s_one_at_a_time")],
           "classical": [("mAP@[.5:.95]", "map"), ("training seconds", "train_seconds")]}


def figures(res: dict) -> dict:
    """The record's headline figures: each model's mAP, training time and speed."""
    label = {"centernet": "CenterNet", "classical": "classical"}
    return {f"{label[m]} {name}": res[m][key] for m, keys in FIGURES.items() if m in res for name, key in keys}


def timed_train(**opts) -> tuple[detect.DetectorRun, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    run = detect.train(**opts)
    return run, time.perf_counter() - t0, (time.process_time() - c0) / torch.get_num_threads()


def inference_speed(run: detect.DetectorRun, images: np.ndarray) -> dict:
    run.detect(images[:8])
    t0 = time.perf_counter()
    run.detect(images)
    batched = len(images) / (time.perf_counter() - t0)
    n = min(200, len(images))
    t0 = time.perf_counter()
    for i in range(n):
        run.detect(images[i:i + 1])
    single = n / (time.perf_counter() - t0)
    return {"images_per_s_batched": round(batched, 1), "images_per_s_one_at_a_time": round(single, 1)}


def summarise(run: detect.DetectorRun, wall: float, cpu: float, flags: str) -> dict:
    m = run.evaluate()  # test scenes; writes eval-test.json and report.html
    cfg = run.run.config
    test = detect.api.load_test(run.config)
    return {"run": str(run.path), "command": f"recgen detect train {flags}".strip(), "map": m["map"],
            "map50": m["map50"], "map75": m["map75"], "mar100": m["mar100"],
            "per_class_ap": {r["class"]: r["ap"] for r in m["per_class"]},
            "train_seconds": cfg.get("train_seconds"), "wall_seconds": round(wall, 1),
            "train_cpu_seconds": round(cpu, 1), "test_images": m["images"], "test_objects": m["objects"],
            **inference_speed(run, test.images)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=["centernet", "classical"], default=None)
    p.add_argument("--set", nargs="*", default=[], help="extra DetectConfig options for centernet, key=value")
    p.add_argument("--no-record", dest="record", action="store_false", help="write no record to bench/results/")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    extra = dict(kv.split("=", 1) for kv in a.set)
    res = {"machine": machine(), "threads": a.threads}
    if a.only in (None, "centernet"):
        opts = {"model": "centernet", "threads": a.threads, **extra}
        run, wall, cpu = timed_train(out=a.out, **opts)
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items() if k not in ("model", "threads"))
        res["centernet"] = summarise(run, wall, cpu, flags)
    if a.only in (None, "classical"):
        run, wall, cpu = timed_train(out=a.out, model="classical", threads=a.threads)
        res["classical"] = summarise(run, wall, cpu, "--model classical")
    if "centernet" in res:
        c = res["centernet"]
        res["targets"] = {f"map >= {TARGET_MAP}": c["map"] >= TARGET_MAP,
                          f"images_per_s >= {TARGET_IPS}": c["images_per_s_batched"] >= TARGET_IPS}
    print(json.dumps(res, indent=2), flush=True)
    if a.record:
        write_record("detect", "Detection: CenterNet and the classical baseline on 96x96 Fashion-MNIST scenes "
                     "(target: mAP 0.75, 50 images/s)",
                     " ".join(["python", "bench/detect.py", *(argv if argv is not None else sys.argv[1:])]),
                     figures(res), res, out_dir=RESULTS)
    return res


if __name__ == "__main__":
    main()
