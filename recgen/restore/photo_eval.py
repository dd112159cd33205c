"""Measured restoration of held-out photographs (`recgen restore eval RUN --data photos`): each held-out photo
(recgen.data.photos.HELD_OUT, or a folder's test/ split) corrupted once with a stated seed, restored by the run and
by the classical baselines, scored per image in PSNR / SSIM (super-resolution also on the luma channel, Y of
YCbCr, with `scale` border pixels shaved, as super-resolution papers report it), with side-by-side crops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen.data.dataset import to_channels
from recgen.data.photos import load_photos
from recgen.errors import RecgenError
from recgen.restore.baselines import BASELINES, SLOW_BASELINES, nlm, none, tune_nlm
from recgen.restore.degrade import Observation, check_sigma, corrupt
from recgen.restore.metrics import psnr, psnr_y, ssim
from recgen.runs import atomic_write

PHOTO_TARGETS = {"denoise": ("bm3d", 0.3), "superres": ("bicubic", 2.0), "jpeg": ("none", 1.0),
                 "inpaint": ("telea", 0.0), "oldphoto": ("none", 0.0)}
SHOW = 128  # side of the crops the side-by-side figure shows, from each photo's centre


def centre_crop(im: np.ndarray, side: int, multiple: int = 1) -> np.ndarray:
    """The centre side x side window (0 = whole image), sides cut to a multiple of `multiple`."""
    h, w = im.shape[:2]
    ch, cw = (min(side, h), min(side, w)) if side else (h, w)
    ch, cw = ch - ch % multiple, cw - cw % multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return im[top:top + ch, left:left + cw]


def _nlm_tuned(data: str, sigma: float, channels: int):
    """NLM at the strength that scores best on patches of the training photos (never the held-out ones)."""
    from recgen.data.photos import PatchSampler

    clean = PatchSampler(load_photos(data, "train"), 128, channels).draw(8, np.random.default_rng(5))
    factor = tune_nlm(torch.from_numpy(clean).permute(0, 3, 1, 2).float().div(255), sigma)
    return (lambda obs: nlm(obs, factor)), factor


def _methods(model, task: str, data: str, sigma: float, slow: bool, ensemble: int = 1,
             adapt: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    methods: dict[str, Any] = {"none": none, **BASELINES[task]}
    extra: dict[str, Any] = {}
    if task == "denoise":
        methods["nlm"], extra["nlm_h_factor"] = _nlm_tuned(data, sigma, model.channels)
        if slow:
            methods.update(SLOW_BASELINES["denoise"])
    methods["recgen"] = lambda obs: model.restore(obs, ensemble=ensemble, adapt=adapt)
    return methods, extra


def evaluate_photos(model, task: str, data: str = "", sigma: float = 25 / 255, scale: int = 2, quality: int = 20,
                    mask_kind: str = "box+scratches", ratio: float = 0.1, seed: int = 0, crop: int = 0,
                    slow_baselines: bool = True, out: str | Path | None = None, ensemble: int = 1,
                    adapt: int = 0) -> dict[str, Any]:
    """Restore every held-out photo of `data` ('' = the run's own data) corrupted with `seed`; crop: evaluate on
    each photo's centre crop x crop (0 = whole photos). Grey photos go through a colour run as three equal
    channels and are scored grey. ensemble: recgen's restorations average that many flipped and rotated copies;
    adapt: super-resolution and denoising fine-tune the network for that many steps on each photo first
    (restorer.adapt_net)."""
    from recgen.restore.api import load

    model = load(model) if isinstance(model, (str, Path)) else model
    if task == "denoise":
        check_sigma(sigma)
        if sigma == 0:
            raise RecgenError("sigma must be positive to evaluate denoising")
    model.check(task, "auto", scale, ensemble=ensemble, adapt=adapt)
    data = data or model.data[0]
    photos = load_photos(data, "test")
    methods, extra = _methods(model, task, data, sigma, slow_baselines, ensemble, adapt)
    if ensemble > 1:
        extra["ensemble"] = ensemble
    if adapt:
        extra["adapt"] = adapt
    rows, seconds, shown = [], {k: 0.0 for k in methods}, []
    for i, (name, im) in enumerate(photos):
        im = centre_crop(im, crop, scale if task == "superres" else 1)
        im = to_channels(im[None], 1)[0] if model.channels == 1 else im  # a grey run scores photos grey
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float().div(255)  # a writable copy
        obs = corrupt(x, task, seed + i, mask_kind=mask_kind, ratio=ratio, sigma=sigma, scale=scale,
                      quality=quality)
        row, outs = _score(methods, obs, x, model.channels, seconds)
        rows.append({"image": name, "size": f"{im.shape[1]}x{im.shape[0]}", **row})
        shown.append((obs, outs, x))
    res = {"task": task, "run": str(model.path), "data": f"{data} held-out photos", "seed": seed,
           "photos": [r["image"] for r in rows], "crop": crop or "whole photos",
           "settings": _settings(task, sigma, scale, quality, mask_kind, ratio) | extra, "per_image": rows}
    res["mean"] = {k: {m: round(float(np.mean([r[f"{k}_{m}"] for r in rows])), 4)
                       for m in ("psnr", "ssim", "psnr_y") if f"{k}_{m}" in rows[0]} for k in methods}
    res["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    res["target"] = _target(task, res["mean"])
    dest = Path(out) if out else model.path
    res["grid"] = str(_grid(shown, dest / f"photos-{task}.png"))
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write(dest / f"eval-photos-{task}.json", json.dumps(res, indent=2))
    if out is None:
        _report(model, res)
    return res


def _report(model, res: dict[str, Any]) -> None:
    """The run's report.html: the mean and per-photo table, the target and the side-by-side crops."""
    from recgen.report import image, table, write_report

    rows = [{"method": k, **v, "seconds": res["seconds"][k]} for k, v in res["mean"].items()]
    sections = [(f"{res['task']} on {res['data']} ({', '.join(res['photos'])})", table(res["settings"]) + table(rows)),
                ("Per photo", table(res["per_image"])), ("Target", table(res["target"])),
                ("Centre crops", image(model.run, res["grid"], "input | baselines | recgen | original"))]
    write_report(model.run, f"recgen restore: {res['task']} restorer on photos", sections)


def _score(methods, obs: Observation, x: torch.Tensor, channels: int, seconds: dict[str, float]):
    """Every method on one corrupted photo: ({method_psnr, method_ssim[, method_psnr_y]}, outputs). A grey photo
    is corrupted grey; the baselines restore it grey and a colour run sees it as three equal channels."""
    grey = x.shape[1] == 1 and channels == 3
    wide = Observation(obs.task, obs.y.expand(-1, 3, -1, -1), obs.mask, obs.sigma, obs.scale) if grey else obs
    row: dict[str, Any] = {"grey": x.shape[1] == 1}
    outs = {}
    for k, fn in methods.items():
        t0 = time.perf_counter()
        v = fn(wide if k == "recgen" else obs)
        seconds[k] += time.perf_counter() - t0
        outs[k] = v = v.mean(1, keepdim=True) if grey and k == "recgen" else v
        row[f"{k}_psnr"] = round(float(psnr(v, x)[0]), 3)
        row[f"{k}_ssim"] = round(float(ssim(v, x)[0]), 4)
        if obs.task == "superres":
            row[f"{k}_psnr_y"] = round(float(psnr_y(v, x, shave=obs.scale)[0]), 3)
    return row, outs


def _settings(task, sigma, scale, quality, mask_kind, ratio) -> dict[str, Any]:
    return {"denoise": {"sigma": sigma, "sigma_255": round(sigma * 255, 2)}, "superres": {"scale": scale},
            "jpeg": {"quality": quality}, "inpaint": {"mask_kind": mask_kind, "ratio": ratio},
            "oldphoto": {"chain": "blur, fading + tint, grain, scratches + dust (recgen.restore.degrade.age)"}}[task]


def _target(task: str, mean: dict[str, dict[str, float]]) -> dict[str, Any]:
    base, margin = PHOTO_TARGETS[task]
    key = "psnr_y" if task == "superres" else "psnr"
    if base not in mean:
        return {"rule": f"recgen >= {base} + {margin:g} dB", "reached": None, "note": f"{base} not run"}
    gain = mean["recgen"][key] - mean[base][key]
    return {"rule": f"recgen >= {base} + {margin:g} dB ({key})", "gain_db": round(gain, 3),
            "reached": bool(gain >= margin)}


def _grid(shown, path: Path) -> Path:
    """One row per photo: centre crops (SHOW pixels) of the input, each baseline, recgen and the original."""
    from recgen.generate.common import to_uint8
    from recgen.plots import image_grid
    from recgen.restore.evaluate import show_input
    from recgen.restore.tiles import crop

    ims, titles = [], []
    for r, (obs, outs, x) in enumerate(shown):
        h, w = x.shape[-2:]
        top, left = max(0, (h - SHOW) // 2), max(0, (w - SHOW) // 2)
        s = obs.scale if obs.task == "superres" else 1
        window = (..., slice(top, top + SHOW), slice(left, left + SHOW))
        inp = show_input(crop(obs, top // s, (top + SHOW) // s, left // s, (left + SHOW) // s))
        cols = [("input", inp)] + [(k, v[window]) for k, v in outs.items() if k not in ("none", "recgen")]
        cols += [("recgen", outs["recgen"][window]), ("original", x[window])]
        for name, t in cols:
            im = to_uint8(t[:1])[0]
            ims.append(np.repeat(im, 3, -1) if im.shape[-1] == 1 else im)
            titles.append(name if r == 0 else "")
    side = max(max(i.shape[0] for i in ims), max(i.shape[1] for i in ims))
    ims = [np.pad(i, ((0, side - i.shape[0]), (0, side - i.shape[1]), (0, 0)), constant_values=255) for i in ims]
    return image_grid(np.stack(ims), path, titles, cols=len(cols), scale=1.6)
