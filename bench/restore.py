"""Restoration benchmark on Fashion-MNIST: train the three restorers (and a judge) with the default recipe, evaluate
them against the classical baselines on the test split, print every command, the budgets and the figures, and
check the issue's targets. Run it alone on the machine (timings are reported):

    flock /tmp/recgen-bench.lock .venv/bin/python bench/restore.py --out runs/bench-restore
    flock /tmp/recgen-bench.lock .venv/bin/python bench/restore.py --out runs/bench-restore --diffusion RUN

Existing runs are reused when given (--judge, --inpaint, --denoise, --superres), so one task can be retrained
alone. `--diffusion RUN` adds a diffusion generator run (DDNM / RePaint / Tweedie denoising) on fewer images.
Writes OUT/restore-bench.json (everything below) beside the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recgen.machine import machine, write_record

# The settings of the targets; inpainting is measured with both mask kinds.
EVALS = [("inpaint", {"mask_kind": "box", "ratio": 0.25}), ("inpaint", {"mask_kind": "strokes", "ratio": 0.25}),
         ("denoise", {"sigma": 0.2}), ("superres", {"scale": 2})]
JUDGE = {"model": "cnn", "epochs": 3, "val_fraction": 0.0}
RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = {"inpaint": "telea", "denoise": "nlm", "superres": "bicubic"}


def setting(s: dict) -> str:
    return " ".join(f"{k} {v}" for k, v in s.items() if k in ("mask_kind", "ratio", "sigma", "scale"))


def figures(summary: list[dict]) -> dict:
    """Per evaluated setting: the restorer's PSNR, its baseline's, the gain and restored / clean judge accuracy."""
    out = {}
    for s in summary:
        label, base = f"{s['task']} {setting(s['settings'])}", BASELINE[s["task"]]
        out[f"{label}: PSNR dB"] = s["psnr"].get("recgen")
        out[f"{label}: {base} PSNR dB"] = s["psnr"].get(base)
        out[f"{label}: gain dB"] = s["targets"].get("psnr", {}).get("gain_db")
        out[f"{label}: judge accuracy restored / clean"] = s["targets"].get("accuracy", {}).get("share_of_clean")
    return out


def flags(opts: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench-restore")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--n", type=int, default=1000, help="test images per evaluation")
    p.add_argument("--seeds", default="0,1,2", help="corruption seeds")
    p.add_argument("--epochs", type=int, default=0, help="restorer epochs (0 = RestoreConfig's default)")
    p.add_argument("--limit", type=int, default=0, help="restorer training images per class (0 = all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--judge", default="", help="an existing classify run (default: train one)")
    for t in ("inpaint", "denoise", "superres"):
        p.add_argument(f"--{t}", default="", help=f"an existing {t} restorer run (default: train one)")
    p.add_argument("--diffusion", default="", help="a diffusion generator run to evaluate too")
    p.add_argument("--diffusion-n", type=int, default=200, help="test images for the diffusion evaluations")
    p.add_argument("--no-record", dest="record", action="store_false", help="write no record to bench/results/")
    p.add_argument("--diffusion-steps", type=int, default=0, help="diffusion steps (0 = each method's default)")
    return p.parse_args(argv)


def train_judge(a: argparse.Namespace, res: dict, note) -> str:
    """Train the judge CNN (no --judge given); its path."""
    from recgen import classify

    opts = {**JUDGE, "data": a.data, "out": a.out, "name": "judge", "threads": a.threads}
    note(f"recgen classify train {flags(opts)}")
    t0, c0 = time.perf_counter(), time.process_time()
    run = classify.train(**opts)
    ev = json.loads((run.path / "eval-test.json").read_text())
    res["runs"]["judge"] = {"run": str(run.path), "wall_s": round(time.perf_counter() - t0, 1),
                            "cpu_s_per_thread": round((time.process_time() - c0) / a.threads, 1),
                            "test_accuracy": ev["accuracy"]}
    return str(run.path)


def train_restorers(a: argparse.Namespace, res: dict, note) -> dict[str, str]:
    """task -> restorer run: the one given on the command line, or one trained here (its timings go in res)."""
    from recgen import restore

    runs = {}
    for task in ("inpaint", "denoise", "superres"):
        given = getattr(a, task)
        if given:
            runs[task] = given
            continue
        opts = {"task": task, "data": a.data, "out": a.out, "threads": a.threads,
                **({"epochs": a.epochs} if a.epochs else {}), **({"limit": a.limit} if a.limit else {})}
        note(f"recgen restore train {flags(opts)}")
        t0, c0 = time.perf_counter(), time.process_time()
        run = restore.train(**opts)
        runs[task] = str(run.path)
        cfg = run.run.config
        res["runs"][task] = {"run": runs[task], "wall_s": round(time.perf_counter() - t0, 1),
                             "cpu_s_per_thread": round((time.process_time() - c0) / a.threads, 1),
                             "train_seconds": cfg.get("train_seconds"), "epochs": cfg["options"]["epochs"],
                             "parameters": sum(p.numel() for p in run.net.parameters()),
                             "last_epoch": run.run.read_metrics()[-1]}
    return runs


def main(argv=None) -> dict:
    import torch

    from recgen import restore

    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = tuple(int(s) for s in a.seeds.split(","))
    res = {"machine": machine(), "commands": [], "runs": {}, "evaluations": []}

    def note(cmd: str) -> None:
        res["commands"].append(cmd)
        print(f"$ {cmd}", flush=True)

    judge = a.judge or train_judge(a, res, note)
    runs = train_restorers(a, res, note)

    def evaluate(path: str, task: str, kw: dict, n: int, **extra) -> None:
        opts = {"task": task, "n": n, "seeds": a.seeds, "judge": judge, **kw, **extra}
        out = Path(a.out) / "evals" / f"{Path(path).name}-{task}-{'-'.join(str(v) for v in kw.values())}"
        if extra:
            out = out.with_name(out.name + "-" + "-".join(str(v) for v in extra.values()))
        note(f"recgen restore eval {path} {flags(opts)} --out {out} --json")
        t0 = time.perf_counter()
        r = restore.evaluate(path, task, n=n, seeds=seeds, judge=judge, out=out, **kw, **extra)
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        res["evaluations"].append(r)
        line = "  ".join(f"{k} {m['psnr']:.2f} dB / {m['ssim']:.3f}" for k, m in r["methods"].items())
        print(f"  {task} {kw}: {line}", flush=True)
        for t in r["targets"].values():
            print(f"  target {t['rule']}: {t}", flush=True)
        if "accuracy" in r:
            print(f"  judge accuracy: {r['accuracy']}", flush=True)

    for task, kw in EVALS:
        evaluate(runs[task], task, kw, a.n)
    if a.diffusion:
        for task, kw in EVALS:
            methods = ("ddnm", "repaint") if task == "inpaint" else ("auto",)
            for m in methods:
                evaluate(a.diffusion, task, kw, a.diffusion_n, method=m, steps=a.diffusion_steps)

    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "restore-bench.json").write_text(json.dumps(res, indent=2, default=str))
    summary = [{"task": r["task"], "model": r["model"], "settings": r["settings"], "targets": r["targets"],
                "psnr": {k: m["psnr"] for k, m in r["methods"].items()},
                "ssim": {k: m["ssim"] for k, m in r["methods"].items()},
                "accuracy": r.get("accuracy"), "wall_s": r["wall_s"]} for r in res["evaluations"]]
    print(json.dumps({"summary": summary}, indent=1))
    if a.record:
        reduced = a.epochs or a.limit  # the restorers trained below their default budget
        write_record("restore-reduced-budget" if reduced else "restore", "Restoration: inpainting, denoising, x2 "
                     f"super-resolution vs classical baselines{' (reduced budget)' if reduced else ''}", " ".join(["python", "bench/restore.py", *(argv if argv is not None else sys.argv[1:])]),
                     figures(summary), {k: res[k] for k in ("machine", "commands", "runs")} | {"summary": summary},
                     out_dir=RESULTS)
    return res


if __name__ == "__main__":
    main()
