"""Photo restoration on held-out photographs (issue 35): recgen's photo restorers against BM3D, non-local means,
bicubic and the decoded JPEG, with each restorer's training time, and the memory and time of restoring a
24-megapixel photo. Writes bench/results/restore-photos-YYYYMMDD.json.

    python bench/restore_photos.py --runs /work/runs-photos/restore [--crop 256] [--memory] [--ensemble 8] [--adapt 200]

RUNS holds the restorer runs named denoise-N, sr2-N, sr4-N, jpeg-N, oldphoto-N, inpaint-N (the highest N of each is
used; a missing one is left out of the record); train them with `recgen restore train --task T --data photos
--name NAME` (see README).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recgen.machine import write_record
from recgen.restore.photo_eval import evaluate_photos
from recgen.restore.restorer import adapts
from recgen.runs import Run

# (record key, run name, task, evaluation keywords)
CASES = [("denoise_s25", "denoise", "denoise", {"sigma": 25 / 255}),
         ("denoise_s50", "denoise", "denoise", {"sigma": 50 / 255}),
         ("sr_x2", "sr2", "superres", {"scale": 2}),
         ("sr_x4", "sr4", "superres", {"scale": 4}),
         ("jpeg_q20", "jpeg", "jpeg", {"quality": 20}),
         ("inpaint", "inpaint", "inpaint", {"mask_kind": "box+scratches", "ratio": 0.1}),
         ("oldphoto", "oldphoto", "oldphoto", {})]


def latest(runs: Path, name: str) -> Path | None:
    """runs/NAME-N with the highest N that holds a finished run."""
    done = [p for p in runs.glob(f"{name}-*") if p.name[len(name) + 1:].isdigit() and (p / "weights").is_dir()
            and Run.open(p).config.get("train_seconds") is not None]
    return max(done, key=lambda p: int(p.name[len(name) + 1:]), default=None)


def variants(task: str, ensemble: int, adapt: int, scale: int = 2) -> list[tuple[str, dict]]:
    """recgen's scored settings beyond the plain one: (figure suffix, restore keywords); adapting only where
    restore --adapt has an objective (x4 super-resolution, JPEG, ... are scored without)."""
    out = [(f"x{ensemble}", {"ensemble": ensemble})] if ensemble > 1 else []
    if adapt and adapts(task, scale):
        out += [(f"adapt{adapt}", {"adapt": adapt})]
        out += [(f"adapt{adapt}_x{ensemble}", {"adapt": adapt, "ensemble": ensemble})] if ensemble > 1 else []
    return out


def evaluate_all(runs: Path, crop: int, out: Path, keys: list[str], ensemble: int = 1,
                 adapt: int = 0) -> tuple[dict, dict]:
    """Each case's figures; ensemble > 1: recgen's also with that self-ensemble (`--ensemble`), as recgen_xK;
    adapt > 0: super-resolution's and denoising's also fine-tuned on each photo (`--adapt`), as recgen_adaptN[_xK]."""
    figures, details = {}, {}
    for key, name, task, kw in CASES:
        if keys and key not in keys:
            continue
        path = latest(runs, name)
        if path is None:
            print(f"{key}: no finished run {runs}/{name}-N, left out", flush=True)
            continue
        slow = task == "denoise"
        r = evaluate_photos(str(path), task, crop=crop if slow else 0, slow_baselines=slow, out=out / key, **kw)
        metric = "psnr_y" if task == "superres" else "psnr"
        for method, m in r["mean"].items():
            figures[f"{key}_{method}_{metric}"] = m[metric]
        cfg = Run.open(path).config
        figures[f"{key}_train_seconds"] = cfg.get("train_seconds")
        details[key] = {"run": str(path), "train_options": {k: cfg["options"].get(k) for k in (
            "epochs", "epoch_patches", "batch_size", "patch", "widths", "blocks", "unshuffle", "time_budget", "threads",
            "lr", "precision")},
            "stopped": cfg.get("stopped"), "eval": r}
        print(f"{key}: " + ", ".join(f"{k} {v[metric]:.2f}" for k, v in r["mean"].items()), flush=True)
        for suffix, options in variants(task, ensemble, adapt, kw.get("scale", 2)):  # the baselines are as above: only recgen again
            e = evaluate_photos(str(path), task, crop=crop if slow else 0, slow_baselines=False,
                                out=out / f"{key}-{suffix}", **options, **kw)
            figures[f"{key}_recgen_{suffix}_{metric}"] = e["mean"]["recgen"][metric]
            details[key][f"recgen_{suffix}"] = {
                "options": options, "per_image": {p["image"]: p[f"recgen_{metric}"] for p in e["per_image"]},
                "mean": e["mean"]["recgen"], "seconds": e["seconds"]["recgen"],
                "seconds_without": r["seconds"]["recgen"]}
            print(f"{key}: recgen with {options} {e['mean']['recgen'][metric]:.2f}", flush=True)
    return figures, details


def memory_test(run: Path, megapixels: float, work: Path) -> dict:
    """Restore a noisy photo of `megapixels` (china.jpg enlarged, noise of std 25/255) with the CLI in a child
    process, the restorer alone (no baselines); its peak resident memory (getrusage of the children, so the
    largest of the children so far) and wall time, interpreter start and PNG reading and writing included."""
    import cv2
    from PIL import Image

    from recgen.data.photos import load_photos

    china = dict(load_photos("photos", "test"))["china"]
    h = round((megapixels * 1e6 * 2 / 3) ** 0.5)
    w = round(h * 1.5)
    big = cv2.resize(china, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big += np.random.default_rng(0).normal(0, 25, big.shape).astype(np.float32)
    path = work / f"photo-{megapixels:g}mp.png"
    Image.fromarray(np.clip(big, 0, 255).round().astype(np.uint8)).save(path, compress_level=1)
    del big
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "recgen", "restore", "denoise", str(run), str(path), "--out",
                           str(work / f"out-{megapixels:g}"), "--sigma", str(25 / 255), "--no-baselines", "--json"],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"pixels": w * h, "size": f"{w}x{h}", "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 1)}


def _made_by(key: str, chain: str) -> str:
    """The last command of an older record's ' && ' chain that measured case `key` (memory_*: --memory)."""
    made = ""
    for c in chain.split(" && "):
        argv = shlex.split(c)
        cases = argv[argv.index("--cases") + 1].split(",") if "--cases" in argv else [k for k, *_ in CASES]
        if (key.startswith("memory_") and "--memory" in argv) or key in cases:
            made = c
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/restore", help="folder holding the photo restorer runs")
    ap.add_argument("--crop", type=int, default=256, help="denoising: centre crop scored (BM3D's time)")
    ap.add_argument("--memory", action="store_true", help="also restore 1 and 24 megapixel photos (minutes)")
    ap.add_argument("--megapixels", default="1,24", help="--memory: photo sizes, in megapixels")
    ap.add_argument("--out", default="", help="folder for grids and per-run JSON (default bench/results/NAME)")
    ap.add_argument("--ensemble", type=int, default=8, help="also score recgen averaging this many flipped and "
                                                           "rotated copies (1 = not)")
    ap.add_argument("--adapt", type=int, default=0, help="also score super-resolution and denoising fine-tuned for "
                                                          "this many steps on each photo (restore --adapt), alone "
                                                          "and with --ensemble")
    ap.add_argument("--note", default="", help="context a reader needs (e.g. how loaded the machine was)")
    ap.add_argument("--name", default="restore-photos", help="record name (bench/results/NAME-DATE.json): another "
                                                              "machine's figures go in a record of their own")
    ap.add_argument("--title", default="Photo restoration on held-out photographs (issue 35)",
                    help="the record's heading on docs/BENCHMARKS.md")
    ap.add_argument("--cases", default="", help="comma-separated case keys (default: all); the newest record "
                                                "keeps the other cases' figures from earlier invocations")
    a = ap.parse_args()
    runs, out = Path(a.runs), Path(a.out or f"bench/results/{a.name}")
    figures, details = evaluate_all(runs, a.crop, out, [k for k in a.cases.split(",") if k], a.ensemble, a.adapt)
    if a.memory:
        with tempfile.TemporaryDirectory() as tmp:
            for mp in map(float, a.megapixels.split(",")):  # smallest first: the children's peak only grows
                m = memory_test(latest(runs, "denoise"), mp, Path(tmp))
                figures[f"denoise_{mp:g}mp_seconds"], figures[f"denoise_{mp:g}mp_peak_rss_mb"] = m["seconds"], \
                    m["peak_rss_mb"]
                details[f"memory_{mp:g}mp"] = m
                print(f"{mp} MP: {m}", flush=True)
    cmd = shlex.join(["python", "bench/restore_photos.py", *sys.argv[1:]])
    for d in details.values():
        d["command"] = cmd
    # --cases re-measures some cases: the newest record (of any day) keeps the figures of the others
    earlier = max(Path("bench/results").glob(f"{a.name}-[0-9]*.json"), default=None)
    if a.cases and earlier is not None:
        old = json.loads(earlier.read_text())
        for key, d in old["details"].items():
            if isinstance(d, dict) and "command" not in d:
                d["command"] = _made_by(key, old["command"])
        figures, details = {**old["figures"], **figures}, {**old["details"], **details}
    # the invocations whose figures the record still holds, in order: not every one run that day
    cmd = " && ".join(dict.fromkeys(d["command"] for d in details.values() if isinstance(d, dict) and d.get("command")))
    if a.note:
        details["note"] = a.note
    path = write_record(a.name, a.title, cmd, figures, details)
    print(path)


if __name__ == "__main__":
    main()
