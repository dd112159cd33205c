"""Restore images a user hands over (files, folders, globs, .npz) and write what came out: restored PNGs per method,
an .npz of every array, a side-by-side grid (input | baselines | recgen | ground truth when known) and results.json.

Ground truth is known when the corruption was made here: inpainting with drawn masks (box / strokes), or any task
with `simulate` (the inputs are clean; noise is added, the image downscaled, JPEG-compressed or aged first).

Images above IN_MEMORY_PIXELS (of the output) stream through the restorer in tiles, uint8 in and out, without the
baselines, the grid or the .npz (`_restore_large`), so a photo of any size restores in bounded memory. Grey inputs
restored by a colour run come out grey; 16-bit inputs are read as 8-bit and transparency is composited over white
(recgen.data.sources.read_image), so outputs are 8-bit grey or RGB PNGs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen.config import check_option
from recgen.data import read_image, read_images, to_channels
from recgen.data.dataset import fit_images, pixels_uint8
from recgen.data.sources import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, ImageTooLarge, read_npz
from recgen.errors import RecgenError
from recgen.generate.common import from_uint8, to_uint8
from recgen.restore.baselines import BASELINES, SLOW_BASELINES, SLOW_PIXELS
from recgen.restore.config import IN_MEMORY_PIXELS, MAX_PIXELS, MIN_SIDE
from recgen.restore.degrade import (
    Observation,
    add_noise,
    apply_mask,
    check_quality,
    check_scale,
    check_sigma,
    corrupt,
    downscale,
    draw_masks,
    estimate_sigma,
    mask_from_image,
    quantize,
)
from recgen.restore.evaluate import write_grid
from recgen.restore.metrics import psnr, ssim
from recgen.runs import atomic_write
from recgen.sanity import check_inputs


def read_inputs(inputs: list[str], max_pixels: int = MAX_IMAGE_PIXELS) -> list[tuple[str, np.ndarray]]:
    """Files, folders (recursively), globs and .npz files (array 'x') -> (name, uint8 (H, W, C)) at their own size."""
    def read(f: Path) -> list[tuple[str, np.ndarray]]:
        if f.suffix.lower() == ".npz":
            return [(f"{f.stem}-{i:04d}", im) for i, im in enumerate(_npz_images(f))]
        try:
            return [(f.stem, read_image(f, max_pixels))]
        except ImageTooLarge as e:
            raise ImageTooLarge(f"{e} (--max-pixels raises it)") from None

    return list(zip(*read_images(inputs, IMAGE_SUFFIXES | {".npz"}, read)))


def _npz_images(path: Path) -> np.ndarray:
    x = read_npz(path, ("x",), 1, "an array 'x' of images")["x"]
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape:
        raise RecgenError(f"{path}: 'x' must be images (N, H, W[, C]) with 1 or 3 channels, got {x.shape}")
    return pixels_uint8(x, f"{path}: 'x'")




def safe_name(name: str) -> str:
    """A file-name stem anyone's file system takes."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "image"


def check_restore_inputs(model, items: list[tuple[str, np.ndarray]]) -> None:
    """One warning per input (name, uint8 image) unlike the images `model` trained on (recgen.sanity)."""
    if model.run.config.get("photos"):  # a photo run restores any size and content it is handed
        return
    names, images = [name for name, _ in items], [im for _, im in items]
    check_inputs(names, images, fit_images(images, model.input_shape), model.input_shape,
                 model.run.config.get("input_stats"), str(model.path))


def restore_files(model, task: str, inputs: list[str], out: str | Path, mask: str | None = None,
                  mask_kind: str = "box", ratio: float = 0.25, sigma: float = 0.0, scale: int = 2,
                  simulate: bool = False, method: str = "auto", steps: int = 0, seed: int = 0,
                  baselines: bool = True, max_pixels: int = MAX_PIXELS, quality: int = 20,
                  ensemble: int = 1, adapt: int = 0) -> dict[str, Any]:
    """Restore every input; returns the summary written to OUT/results.json.

    inpaint: pixels under `mask` (an image, white = missing) or under drawn box / strokes masks covering `ratio`.
    denoise: inputs carry Gaussian noise of std `sigma` (images in [0, 1]); 0 = estimate it per image.
    superres: inputs are low-resolution; the output is `scale` times larger.
    jpeg, oldphoto: inputs are JPEG-compressed (simulate: at `quality`) or aged photos.
    simulate: the inputs are clean ground truth: corrupt them first, and score the result.
    max_pixels: the largest image read (the output's size for superres), checked in the header before decoding;
    images above IN_MEMORY_PIXELS are restored in tiles without baselines.
    ensemble: a restorer run averages this many flipped and rotated copies (1, 2, 4 or 8; that many times slower).
    adapt: superres or denoise with a restorer run first fine-tunes it for this many steps on the images restored
    together (those of one size; a large one on its own), restorer.adapt_net."""
    from recgen.restore.api import load

    model = load(model) if isinstance(model, (str, Path)) else model
    check_sigma(sigma)
    if task == "superres":
        check_scale(scale)
    if task == "jpeg":
        check_quality(quality)
    if task == "denoise" and simulate and sigma == 0:
        raise RecgenError("--simulate adds noise of std --sigma to clean inputs: give a positive --sigma")
    model.check(task, method, scale, steps, ensemble, adapt)
    check_option("seed", seed, int)
    check_option("max_pixels", max_pixels, int)
    grow = scale * scale if task == "superres" and not simulate else 1  # superres outputs scale^2 the pixels
    items = read_inputs(inputs, max_pixels // grow)
    _check_sizes(items, grow, max_pixels)
    mask_arr = read_image(Path(mask), max_pixels) if mask else None
    c = model.channels
    groups: dict[tuple, list[int]] = {}  # images of one shape are restored as one batch
    results: list = [None] * len(items)
    for i, (name, im) in enumerate(items):
        if im.shape[0] * im.shape[1] * grow > IN_MEMORY_PIXELS and model.fixed_size() is None:
            if simulate:
                raise RecgenError(f"{name}: --simulate scores images of at most {IN_MEMORY_PIXELS:,} pixels; "
                                  f"this one has {im.shape[0] * im.shape[1] * grow:,} (crop it)")
            out_large = _restore_large(model, task, im, mask_arr, sigma, scale, ensemble, adapt, seed)
            results[i] = (name, None, {"recgen": out_large}, None)
        else:
            groups.setdefault(im.shape, []).append(i)
    groups = _cut(groups, min(max_pixels, IN_MEMORY_PIXELS) // grow)
    for g, ((h, w, ch), idx) in enumerate(groups):
        arr = np.stack([items[i][1] for i in idx])  # (N, H, W, C) uint8
        k = 3 if c == 1 and ch == 3 else 1  # a gray model restores each colour channel on its own
        x = from_uint8(arr.transpose(0, 3, 1, 2).reshape(-1, h, w, 1) if k == 3 else to_channels(arr, c))
        obs, truth = _observe(task, x, k, mask_arr, mask, mask_kind, ratio, sigma, scale, simulate,
                              seed + 1000 * g, model.fixed_size(), quality)
        outs = {"recgen": model.restore(obs, method=method, steps=steps, seed=seed + g, ensemble=ensemble,
                                        adapt=adapt)}
        if baselines:
            slow = SLOW_BASELINES.get(task, {}) if h * w <= SLOW_PIXELS else {}
            outs.update({name: fn(obs) for name, fn in {**BASELINES[task], **slow}.items()})
        if ch == 1 and c == 3:  # a grey photo through a colour run: its three equal channels back to one
            obs, outs, truth = _grey(obs), {name: v.mean(1, keepdim=True) for name, v in outs.items()}, \
                None if truth is None else truth.mean(1, keepdim=True)
        if k == 3:  # (3N, 1, H, W) -> (N, 3, H, W)
            obs = Observation(task, _unfold(obs.y), None if obs.mask is None else obs.mask[::3],
                              None if obs.sigma is None else obs.sigma[::3], obs.scale)
            outs = {name: _unfold(v) for name, v in outs.items()}
            truth = None if truth is None else _unfold(truth)
        for j, i in enumerate(idx):
            results[i] = (items[i][0], obs.subset(slice(j, j + 1)), {name: v[j:j + 1] for name, v in outs.items()},
                          None if truth is None else truth[j:j + 1])
    rows = []
    for name, obs, outs, truth in results:
        row = {"input": name, "tiled_without_baselines": obs is None}
        if truth is not None:
            row.update({f"{m}_psnr": round(float(psnr(v, truth)[0]), 3) for m, v in outs.items()})
            row.update({f"{m}_ssim": round(float(ssim(v, truth)[0]), 4) for m, v in outs.items()})
        if task == "denoise" and obs is not None:
            row["sigma"] = round(float(obs.sigma[0]), 4)
        rows.append(row)
    check_restore_inputs(model, items)  # after the restoration: a request that fails says only why
    return _write(model, task, out, results, rows, method, steps)


def _check_sizes(items: list[tuple[str, np.ndarray]], grow: int, max_pixels: int) -> None:
    big = [(name, im.shape) for name, im in items if im.shape[0] * im.shape[1] * grow > max_pixels]
    if big:  # from an .npz (image files were refused while reading)
        (name, (h, w, _)) = big[0]
        raise RecgenError(f"{name}: refused, {w}x{h} = {w * h * grow:,} pixels to restore, above the limit of "
                          f"{max_pixels:,} (--max-pixels raises it)")
    small = [name for name, im in items if min(im.shape[:2]) < MIN_SIDE]
    if small:
        raise RecgenError(f"{small[0]}: images must be at least {MIN_SIDE}x{MIN_SIDE} pixels (the noise estimate and "
                          f"SSIM's window need that), {len(small)} input(s) are smaller")


def _cut(groups: dict[tuple, list[int]], budget: int) -> list[tuple[tuple, list[int]]]:
    """Image indices grouped by shape -> batches of one shape holding at most `budget` pixels (at least one image;
    a colour image counts thrice, as a grey model restores its channels as three images)."""
    out = []
    for (h, w, c), idx in groups.items():
        per = max(1, budget // (h * w * c))
        out += [((h, w, c), idx[i:i + per]) for i in range(0, len(idx), per)]
    return out


def _unfold(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, 3, *t.shape[-2:])


def _grey(obs: Observation) -> Observation:
    return Observation(obs.task, obs.y.mean(1, keepdim=True), obs.mask, obs.sigma, obs.scale)


def _restore_large(model, task: str, im: np.ndarray, mask_arr, sigma: float, scale: int,
                   ensemble: int = 1, adapt: int = 0, seed: int = 0) -> torch.Tensor:
    """One large uint8 image (H, W, C) restored in tiles (recgen.restore.tiles), uint8 from end to end: the output
    (1, C, H', W') uint8. The noise level, when not given, is estimated on the centre 1024 x 1024 pixels."""
    c, ch = model.channels, im.shape[-1]
    im = np.require(im, requirements=["C", "W"])  # a decoded file is read-only; torch wants to own writable data
    y = torch.from_numpy(im).permute(2, 0, 1)[None]  # (1, C, H, W) uint8
    # grey through a colour run: three equal channels; colour through a grey run: each channel an image
    y = y.expand(-1, c, -1, -1) if ch == 1 and c == 3 else y[0][:, None] if ch == 3 and c == 1 else y
    obs = Observation(task, y, scale=scale if task == "superres" else 1)
    if task == "inpaint":
        obs.mask = mask_from_image(mask_arr, im.shape[:2]) if mask_arr is not None else None
        if obs.mask is None:
            raise RecgenError(f"{im.shape[1]}x{im.shape[0]} pixels: inpainting an image this large needs --mask")
        obs.mask = obs.mask.to(torch.uint8).mul_(255)
    if task == "denoise":
        h, w = im.shape[:2]
        centre = y[..., max(0, h // 2 - 512):h // 2 + 512, max(0, w // 2 - 512):w // 2 + 512].float().div(255)
        s = float(sigma) if sigma > 0 else float(estimate_sigma(centre.reshape(1, -1, *centre.shape[-2:]))[0])
        obs.sigma = torch.full((len(y),), s)
    if task == "inpaint" and len(y) > 1:
        obs.mask = obs.mask.expand(len(y), -1, -1, -1)
    out = model.restore(obs, seed=seed, ensemble=ensemble, adapt=adapt)
    if ch == 3 and c == 1:
        out = out.reshape(1, 3, *out.shape[-2:])
    if ch == 1 and c == 3:  # back to grey, a band of rows at a time (no float copy of the whole image)
        out = torch.cat([b.float().mean(1, keepdim=True).round().to(torch.uint8) for b in out.split(256, 2)], 2)
    return out


def _observe(task, x, k, mask_arr, mask_path, mask_kind, ratio, sigma, scale, simulate, seed, fixed, quality=20):
    """Images (B, C, H, W), k channels folded per image -> (observation, ground truth or None)."""
    n, _, h, w = x.shape
    if fixed is not None:
        want = fixed if task != "superres" or simulate else (fixed[0] // scale, fixed[1] // scale)
        if (h, w) != tuple(want):
            raise RecgenError(f"this diffusion model restores {want[0]}x{want[1]} inputs, got {h}x{w}")
    if task == "inpaint":
        if mask_arr is not None:
            m = mask_from_image(mask_arr, (h, w), str(mask_path)).expand(n, 1, h, w)
        else:  # one mask per image, shared by its folded channels
            m = draw_masks(n // k, h, w, mask_kind, ratio, seed).repeat_interleave(k, 0)
        known = mask_arr is None or simulate
        return Observation(task, quantize(apply_mask(x, m)), mask=m), (x if known else None)
    if task == "denoise":
        grey = x.shape[1] == 3 and bool((x[:, :1] == x).all())  # a grey photo given to a colour run: noise it grey
        y = add_noise(x[:, :1] if grey else x, sigma, torch.Generator().manual_seed(seed)) if simulate else x
        y = y.expand_as(x) if grey else y
        s = torch.full((n,), float(sigma)) if sigma > 0 else \
            estimate_sigma(y).reshape(-1, k).mean(1).repeat_interleave(k)
        return Observation(task, y, sigma=s), (x if simulate else None)
    if task in ("jpeg", "oldphoto"):
        return (corrupt(x, task, seed, quality=quality) if simulate else Observation(task, x)), \
            (x if simulate else None)
    y = downscale(x, scale) if simulate else x
    return Observation(task, y, scale=scale), (x if simulate else None)


def _write(model, task, out, results, rows, method, steps) -> dict[str, Any]:
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [safe_name(n) for n, *_ in results]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # the same stem from two folders must not overwrite
        seen[n] = seen.get(n, 0) + 1
        names[i] = n if seen[n] == 1 else f"{n}-{seen[n]}"
    written: dict[str, list[str]] = {}
    for name, (_, obs, outs, truth) in zip(names, results):
        for k, v in outs.items():
            im = v[0].permute(1, 2, 0).numpy() if v.dtype == torch.uint8 else to_uint8(v)[0]
            path = out / k / f"{name}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(path)
            written.setdefault(k, []).append(str(path))
    grid = None
    # one grid (and .npz) when all outputs share a size and none was too large to hold beside its baselines
    if len({r[2]["recgen"].shape[-2:] for r in results}) == 1 and all(r[1] is not None for r in results):
        rgb = max(r[2]["recgen"].shape[1] for r in results) == 3
        widen = (lambda t: t.expand(-1, 3, -1, -1) if rgb and t.shape[1] == 1 else t)  # noqa: E731
        k = results[:16]
        obs = Observation(task, torch.cat([widen(r[1].y) for r in k]),
                          None if k[0][1].mask is None else torch.cat([r[1].mask for r in k]), None, k[0][1].scale)
        outs = {m: torch.cat([widen(r[2][m]) for r in k]) for m in k[0][2]}
        truth = torch.cat([widen(r[3]) for r in k]) if all(r[3] is not None for r in k) else None
        grid = str(write_grid(obs, outs, truth, out / "grid.png", rows=16))
        np.savez_compressed(out / "restored.npz", names=np.array(names),
                            **{m: to_uint8(torch.cat([widen(r[2][m]) for r in results])) for m in outs})
    summary = {"task": task, "run": str(model.path), "model": model.describe(task, method, steps), "n": len(results),
               "out": str(out), "grid": grid, "images": written, "per_image": rows}
    scored = [r for r in rows if "recgen_psnr" in r]
    if scored:
        keys = [k[:-5] for k in scored[0] if k.endswith("_psnr")]
        summary["mean"] = {k: {"psnr": round(float(np.mean([r[f"{k}_psnr"] for r in scored])), 3),
                               "ssim": round(float(np.mean([r[f"{k}_ssim"] for r in scored])), 4)} for k in keys}
    atomic_write(out / "results.json", json.dumps(summary, indent=2))
    return summary
