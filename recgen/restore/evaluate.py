"""Measured restoration quality on a dataset's test split: recgen against the classical baselines and doing
nothing, in PSNR / SSIM against the ground truth, and in recognition (a recgen classifier's accuracy on clean,
corrupted and restored images), over stated corruption settings and seeds; with the issue's targets checked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen import plots
from recgen.config import check_option
from recgen.data import load_dataset
from recgen.errors import RecgenError
from recgen.generate.common import to_uint8
from recgen.restore.baselines import BASELINES, NLM_H_FACTOR, nlm, none, tune_nlm
from recgen.restore.degrade import TASKS, Observation, check_sigma, corrupt
from recgen.restore.metrics import psnr, ssim
from recgen.runs import atomic_write

# The targets on Fashion-MNIST: (baseline to beat, dB margin); restored accuracy >= 90 % of clean.
TARGETS = {"inpaint": ("telea", 3.0), "denoise": ("nlm", 2.0), "superres": ("bicubic", 3.0), "jpeg": ("none", 1.0),
           "oldphoto": ("none", 0.0)}
ACCURACY_SHARE = 0.9


def settings(task: str, mask_kind: str, ratio: float, sigma: float, scale: int) -> dict[str, Any]:
    """The corruption settings that matter for `task` (recorded with every figure)."""
    if task == "inpaint":
        return {"mask_kind": mask_kind, "ratio": ratio}
    if task == "denoise":
        return {"sigma": sigma, "clipped_to_0_1": True, "quantized_8bit": True}
    if task in ("jpeg", "oldphoto"):
        return {"quality": 20} if task == "jpeg" else {"chain": "recgen.restore.degrade.age"}
    return {"scale": scale, "downscaling": "area (box filter)"}


def _judge(spec: str, data: str):
    """'none' -> no judge; '' -> the dataset's reference judge when it has been trained; else a classify run."""
    if spec == "none":
        return None
    from recgen import classify
    from recgen.evaluate.generation import Judge
    from recgen.evaluate.judging import default_judge_path

    path = Path(spec) if spec else default_judge_path(data)
    if not spec and not (path / "config.yaml").is_file():
        return None
    return Judge.from_run(classify.load(path))


def evaluate(model, task: str, n: int = 1000, seeds: tuple[int, ...] = (0,), mask_kind: str = "box",
             ratio: float = 0.25, sigma: float = 0.2, scale: int = 2, judge: str = "", method: str = "auto",
             steps: int = 0, tune: bool = True, out: str | Path | None = None, ensemble: int = 1,
             adapt: int = 0) -> dict[str, Any]:
    """Restore the first n test images corrupted with each seed; every method sees the same corruptions.

    model: a loaded restorer / diffusion run (recgen.restore.evaluate, in api.py, also takes a path). judge: a recgen classify run ('' = the dataset's reference
    judge if trained, 'none' = skip). tune: pick the NLM strength on 200 training images (never test images).
    ensemble: a restorer run averages that many flipped and rotated copies (1, 2, 4 or 8); adapt: superres or denoise
    with a restorer run fine-tunes it on the test images for that many steps first (restorer.adapt_net)."""
    if task not in TASKS:
        raise RecgenError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "denoise":
        check_sigma(sigma)
        if sigma == 0:
            raise RecgenError("sigma must be positive to evaluate denoising")
    model.check(task, method, scale, steps, ensemble, adapt)
    if n < 1 or not seeds:
        raise RecgenError(f"need n >= 1 images and at least one seed, got n={n}, seeds={list(seeds)}")
    for seed in seeds:
        check_option("seed", seed, int)
    data, data_dir = model.data
    c = model.channels
    size = model.input_shape[1:]  # the size it trained on
    test = load_dataset(data, "test", data_dir or None, tuple(size), c)
    x = test.tensors()[0][:n]
    labels = test.y[:n]
    j = _judge(judge, data)

    baselines = dict(BASELINES[task])
    h_factor = NLM_H_FACTOR
    if task == "denoise" and tune:
        train = load_dataset(data, "train", data_dir or None, tuple(size), c)
        h_factor = tune_nlm(train.tensors()[0][:200], sigma)
        baselines["nlm"] = lambda obs: nlm(obs, h_factor)
    methods = {"none": none, **baselines,
               "recgen": lambda obs, s=0: model.restore(obs, method=method, steps=steps, seed=s, ensemble=ensemble,
                                                        adapt=adapt)}

    per_seed: dict[str, list[dict[str, float]]] = {k: [] for k in methods}
    accuracy: dict[str, list[float]] = {k: [] for k in ["clean", *methods]}
    seconds: dict[str, float] = {k: 0.0 for k in methods}
    shown = None
    for seed in seeds:
        obs = corrupt(x, task, seed, mask_kind=mask_kind, ratio=ratio, sigma=sigma, scale=scale)
        outs = {}
        for name, fn in methods.items():
            t0 = time.perf_counter()
            outs[name] = fn(obs, seed) if name == "recgen" else fn(obs)
            seconds[name] += time.perf_counter() - t0
            p, s = psnr(outs[name], x), ssim(outs[name], x)
            per_seed[name].append({"psnr": float(p.mean()), "ssim": float(s.mean())})
        if j is not None:
            accuracy["clean"].append(float((j.predict(to_uint8(x)) == labels).mean()))
            for name, im in outs.items():
                accuracy[name].append(float((j.predict(to_uint8(im)) == labels).mean()))
        if shown is None:
            shown = (obs, outs)

    res: dict[str, Any] = {"task": task, "run": str(model.path), "model": model.describe(task, method, steps),
                           "data": f"{test.name} test split, first {len(x)} images", "n": len(x),
                           "seeds": list(seeds), "settings": settings(task, mask_kind, ratio, sigma, scale)}
    if ensemble > 1:
        res["settings"]["ensemble"] = ensemble
    if adapt:
        res["settings"]["adapt"] = adapt
    if task == "inpaint":
        res["settings"]["masked_share_measured"] = round(float(shown[0].mask.mean()), 4)
    if task == "denoise":
        res["settings"]["nlm_h_factor"] = h_factor
        res["settings"]["nlm_tuned_on"] = "200 training images" if tune else "default"
    res["methods"] = {}
    for name, rows in per_seed.items():
        ps, ss = np.array([r["psnr"] for r in rows]), np.array([r["ssim"] for r in rows])
        res["methods"][name] = {"psnr": round(float(ps.mean()), 3), "psnr_std_over_seeds": round(float(ps.std()), 3),
                                "ssim": round(float(ss.mean()), 4), "ssim_std_over_seeds": round(float(ss.std()), 4),
                                "images_per_s": round(len(x) * len(seeds) / max(seconds[name], 1e-9), 1)}
    if j is not None:
        res["judge"] = str(j.run.path)
        res["accuracy"] = {k: round(float(np.mean(v)), 4) for k, v in accuracy.items()}
    res["targets"] = targets(task, res)
    res["grid"] = str(write_grid(shown[0], shown[1], x, _grid_path(model, task, out)))
    _write(model, task, res, out)
    return res


def targets(task: str, res: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the figures it was judged on."""
    base, margin = TARGETS[task]
    m = res["methods"]
    gain = m["recgen"]["psnr"] - m[base]["psnr"]
    out = {"psnr": {"rule": f"recgen >= {base} + {margin:g} dB", "gain_db": round(gain, 3),
                    "reached": bool(gain >= margin)}}
    if "accuracy" in res:
        a = res["accuracy"]
        share = a["recgen"] / max(a["clean"], 1e-9)
        out["accuracy"] = {"rule": f"restored accuracy >= {ACCURACY_SHARE:.0%} of clean",
                           "share_of_clean": round(share, 4), "reached": bool(share >= ACCURACY_SHARE)}
    return out


def show_input(obs: Observation) -> torch.Tensor:
    """What the grid shows as the corrupted input: missing pixels in red (RGB), low resolution by replication."""
    y = none(obs)
    if obs.task != "inpaint":
        return y
    rgb = y.expand(-1, 3, -1, -1).clone() if y.shape[1] == 1 else y.clone()
    m = obs.mask.bool().expand_as(rgb).clone()
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand_as(rgb)
    return torch.where(m, red, rgb)


def write_grid(obs: Observation, outs: dict[str, torch.Tensor], truth: torch.Tensor | None, path: Path,
               rows: int = 8) -> Path:
    """One row per image: input, each baseline, recgen, ground truth (when known)."""
    cols = [("input", show_input(obs))] + [(k, v) for k, v in outs.items() if k not in ("none", "recgen")]
    cols.append(("recgen", outs["recgen"]))
    if truth is not None:
        cols.append(("ground truth", truth))
    k = min(rows, len(obs.y))
    ims, titles = [], []
    for i in range(k):
        for name, t in cols:
            im = to_uint8(t[i:i + 1])[0]
            ims.append(np.repeat(im, 3, -1) if im.shape[-1] == 1 else im)
            titles.append(name if i == 0 else "")
    return plots.image_grid(np.stack(ims), path, titles, cols=len(cols))


def _grid_path(model, task: str, out) -> Path:
    return (Path(out) if out else model.run.plots) / f"restore-{task}.png"


def _write(model, task: str, res: dict[str, Any], out) -> None:
    import json

    dest = Path(out) if out else model.path
    atomic_write(dest / f"eval-restore-{task}.json", json.dumps(res, indent=2))
    if out is None and model.kind == "restorer":
        from recgen.report import image, table, write_report

        rows = [{"method": k, **v} for k, v in res["methods"].items()]
        sections = [(f"Restoration ({task}), {res['data']}", table(res["settings"]) + table(rows)),
                    ("Targets", table([{"target": k, **v} for k, v in res["targets"].items()])),
                    ("Examples", image(model.run, res["grid"], "input | baselines | recgen | ground truth"))]
        if "accuracy" in res:
            sections.insert(1, ("Recognition (judge accuracy)", table(res["accuracy"])))
        curves = model.run.read_metrics()
        if curves:
            sections.append(("Training curves", image(model.run, plots.curves(curves, model.run.plots / "curves.png"))
                             + table(curves)))
        write_report(model.run, f"recgen restore: {task} restorer on {model.config.data}", sections)
