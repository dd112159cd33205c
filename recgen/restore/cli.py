"""`recgen restore`: train a restorer; inpaint, denoise or super-resolve images with a restorer or a diffusion run,
beside the classical baselines; evaluate against them on the test split. Registered in recgen/cli.py with
`app.add_typer(restore_app, name="restore")`."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Optional

import typer

from recgen.cli_kit import IMAGES_HELP, config_command, emit, user_errors
from recgen.errors import RecgenError
from recgen.restore.config import MAX_PIXELS, TASKS

restore_app = typer.Typer(no_args_is_help=True, help="Restoration: inpaint, denoise, super-resolve; train, eval.")

Run_ = Annotated[str, typer.Argument(help="a restorer run (recgen restore train) or a diffusion generator run")]
Inputs = Annotated[list[str], typer.Argument(help=IMAGES_HELP.replace("globs", "globs, .npz files (array x)")
                                             .replace("each at most 40 megapixels", "each within --max-pixels"))]
Out = Annotated[str, typer.Option(help="folder for restored images, grid.png, restored.npz and results.json")]
Simulate = Annotated[bool, typer.Option(help="inputs are clean ground truth: corrupt them first and score the result")]
Method = Annotated[str, typer.Option(help="auto | restorer | ddnm | repaint | reverse (the last three: diffusion runs)")]
Steps = Annotated[int, typer.Option(help="diffusion steps (0 = the method's default)")]
Seed = Annotated[int, typer.Option(help="seeds drawn masks, added noise and diffusion sampling")]
Baselines = Annotated[bool, typer.Option(help="also run the classical baselines")]
Ensemble = Annotated[int, typer.Option(help="restorer runs: average the restorations of 1, 2, 4 or 8 flipped and "
                                            "rotated copies (that many times slower, a little better)")]
Adapt = Annotated[int, typer.Option(help="restorer runs, x2 superres and denoise: first fine-tune a copy of the "
                                         "network for this many steps on the inputs themselves (superres: "
                                         "downscaled once more; denoise: their estimated error, SURE); 0 = off; "
                                         "superres 200: about half a minute a photo on 2 cores, denoise 100: "
                                         "about a minute, for better results")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object")]
MaskKind = Annotated[str, typer.Option(help="masks drawn when no --mask is given: box | strokes")]
Ratio = Annotated[float, typer.Option(help="share of the image a drawn mask covers")]
MaxPixels = Annotated[int, typer.Option(help="largest image restored, width x height (superres: of the output); "
                                             "larger ones are refused before decoding")]


def _photo_run(path: str) -> bool:
    from recgen.runs import Run

    return Run.open(path).config.get("photos") is not None


def _train(options: dict[str, Any]) -> None:
    from recgen.restore.api import train

    run = train(**options)
    typer.echo(f"{run.path}: trained to {run.arch.task}")
    ev = run.path / f"eval-restore-{run.arch.task}.json"
    if ev.is_file():
        import json

        _print_eval(json.loads(ev.read_text()))
    typer.echo(f"report: {run.path / 'report.html'}")


def _register_train():
    from recgen.restore.config import RestoreConfig

    restore_app.command("train", help="Train a restorer U-Net through the shared loop on (corrupted, clean) pairs "
                                      "made on the fly from a dataset.")(config_command(RestoreConfig, _train))


_register_train()


def _run(task: str, run: str, inputs: list[str], out: str, as_json: bool, **kw) -> None:
    from recgen.restore.files import restore_files

    s = restore_files(run, task, inputs, out, **kw)
    if as_json:
        emit(s, True)
        return
    typer.echo(f"{s['n']} image(s) restored with {s['model']} -> {s['out']}")
    for name, m in s.get("mean", {}).items():
        typer.echo(f"  {name:15s} PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}")
    if s["grid"]:
        typer.echo(f"grid: {s['grid']}")


@restore_app.command("inpaint")
@user_errors
def inpaint(run: Run_, inputs: Inputs, out: Out = "restored",
            mask: Annotated[str, typer.Option(help="mask image, white = missing (default: draw masks)")] = "",
            mask_kind: MaskKind = "box", ratio: Ratio = 0.25, simulate: Simulate = False, method: Method = "auto",
            steps: Steps = 0, seed: Seed = 0, baselines: Baselines = True, ensemble: Ensemble = 1,
            json_: Json = False, max_pixels: MaxPixels = MAX_PIXELS):
    """Fill masked regions (baselines: OpenCV Telea and Navier-Stokes)."""
    _run("inpaint", run, inputs, out, json_, mask=mask or None, mask_kind=mask_kind, ratio=ratio, simulate=simulate,
         method=method, steps=steps, seed=seed, baselines=baselines, ensemble=ensemble, max_pixels=max_pixels)


@restore_app.command("denoise")
@user_errors
def denoise(run: Run_, inputs: Inputs, out: Out = "restored",
            sigma: Annotated[float, typer.Option(help="noise std of the inputs, images in [0, 1] "
                                                      "(0 = estimate)")] = 0.0,
            simulate: Simulate = False, method: Method = "auto", steps: Steps = 0, seed: Seed = 0,
            baselines: Baselines = True, ensemble: Ensemble = 1, adapt: Adapt = 0, json_: Json = False,
            max_pixels: MaxPixels = MAX_PIXELS):
    """Remove Gaussian noise of a known or estimated sigma (baseline: non-local means)."""
    _run("denoise", run, inputs, out, json_, sigma=sigma, simulate=simulate, method=method, steps=steps, seed=seed,
         baselines=baselines, ensemble=ensemble, adapt=adapt, max_pixels=max_pixels)


@restore_app.command("superres")
@user_errors
def superres(run: Run_, inputs: Inputs, out: Out = "restored",
             scale: Annotated[int, typer.Option(help="upscaling factor (2; diffusion runs also 4)")] = 2,
             simulate: Simulate = False, method: Method = "auto", steps: Steps = 0, seed: Seed = 0,
             baselines: Baselines = True, ensemble: Ensemble = 1, adapt: Adapt = 0, json_: Json = False,
             max_pixels: MaxPixels = MAX_PIXELS):
    """Upscale low-resolution images (baseline: bicubic)."""
    _run("superres", run, inputs, out, json_, scale=scale, simulate=simulate, method=method, steps=steps, seed=seed,
         baselines=baselines, ensemble=ensemble, adapt=adapt, max_pixels=max_pixels)


Quality = Annotated[int, typer.Option(help="JPEG quality --simulate compresses at (1-100)")]


@restore_app.command("jpeg")
@user_errors
def jpeg(run: Run_, inputs: Inputs, out: Out = "restored", quality: Quality = 20, simulate: Simulate = False,
         seed: Seed = 0, ensemble: Ensemble = 1, json_: Json = False, max_pixels: MaxPixels = MAX_PIXELS):
    """Remove JPEG artefacts (blocks, ringing, colour bleeding) from decoded JPEGs."""
    _run("jpeg", run, inputs, out, json_, quality=quality, simulate=simulate, seed=seed, ensemble=ensemble,
         max_pixels=max_pixels)


@restore_app.command("oldphoto")
@user_errors
def oldphoto(run: Run_, inputs: Inputs, out: Out = "restored", simulate: Simulate = False, seed: Seed = 0,
             ensemble: Ensemble = 1, json_: Json = False, max_pixels: MaxPixels = MAX_PIXELS):
    """Restore an old photo in one pass: fading and tint, grain, scratches and dust, blur."""
    _run("oldphoto", run, inputs, out, json_, simulate=simulate, seed=seed, ensemble=ensemble, max_pixels=max_pixels)


def task_options() -> dict[str, list[str]]:
    """Each restoring task (restore.config.TASKS) -> the options its command above takes, in order: the one
    list the REST route (which refuses the others) and the web pages follow. Run, inputs and the command
    line's own output options are left out."""
    own = {"run", "inputs", "out", "json_", "max_pixels"}
    commands = {c.name: c.callback for c in restore_app.registered_commands}
    return {t: [p for p in inspect.signature(commands[t]).parameters if p not in own] for t in TASKS}


def _print_photo_eval(r: dict[str, Any]) -> None:
    typer.echo(f"{r['task']} with {r['run']} on {r['data']} ({', '.join(r['photos'])}), {r['settings']}")
    for name, m in r["mean"].items():
        y = f"  PSNR(Y) {m['psnr_y']:6.2f} dB" if "psnr_y" in m else ""
        typer.echo(f"  {name:15s} PSNR {m['psnr']:6.2f} dB  SSIM {m['ssim']:.4f}{y}  {r['seconds'][name]:.1f} s")
    t = r["target"]
    if t.get("reached") is not None:
        typer.echo(f"  target {t['rule']}: gain {t['gain_db']:+.2f} dB -> {'reached' if t['reached'] else 'NOT reached'}")
    typer.echo(f"grid: {r['grid']}")


def _print_eval(r: dict[str, Any]) -> None:
    typer.echo(f"{r['task']} with {r['model']} on {r['data']}, seeds {r['seeds']}, {r['settings']}")
    for name, m in r["methods"].items():
        acc = f"  judge accuracy {r['accuracy'][name]:.4f}" if "accuracy" in r else ""
        typer.echo(f"  {name:15s} PSNR {m['psnr']:6.2f} ± {m['psnr_std_over_seeds']:.2f} dB  SSIM {m['ssim']:.4f}"
                   f"{acc}")
    if "accuracy" in r:
        typer.echo(f"  clean images: judge accuracy {r['accuracy']['clean']:.4f} ({r['judge']})")
    for k, t in r["targets"].items():
        figure = f"gain {t['gain_db']:+.2f} dB" if k == "psnr" else f"{t['share_of_clean']:.1%} of clean"
        typer.echo(f"  target {t['rule']}: {figure} -> {'reached' if t['reached'] else 'NOT reached'}")
    typer.echo(f"grid: {r['grid']}")


@restore_app.command("eval")
@user_errors
def eval_(run: Run_, task: Annotated[str, typer.Option(help=" | ".join(TASKS))] = "",
          n: Annotated[int, typer.Option(help="test images (the first n)")] = 1000,
          seeds: Annotated[str, typer.Option(help="comma-separated corruption seeds")] = "0",
          mask_kind: MaskKind = "box", ratio: Ratio = 0.25,
          sigma: Annotated[float, typer.Option(help="noise std, images in [0, 1]")] = 0.2,
          scale: Annotated[int, typer.Option(help="super-resolution factor")] = 2,
          judge: Annotated[str, typer.Option(help="classify run judging recognition ('' = reference judge if "
                                                  "trained, 'none' = skip)")] = "",
          method: Method = "auto", steps: Steps = 0,
          out: Annotated[Optional[str], typer.Option(help="folder for the JSON and grid (default: the run)")] = None,
          data: Annotated[str, typer.Option(help="photos or a folder with a test/ split: score its held-out photos "
                                                 "('' = the run's own data)")] = "",
          quality: Quality = 20,
          crop: Annotated[int, typer.Option(help="photos: score each photo's centre crop x crop (0 = whole)")] = 0,
          slow_baselines: Annotated[bool, typer.Option(help="photos: also run BM3D (slow)")] = True,
          ensemble: Ensemble = 1, adapt: Adapt = 0, json_: Json = False):
    """PSNR / SSIM against ground truth and the judge's accuracy, recgen vs classical baselines vs nothing."""
    from recgen.restore.api import evaluate

    if not task:
        raise RecgenError(f"--task is required: {', '.join(TASKS[:-1])} or {TASKS[-1]}")
    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise RecgenError(f"seeds: expected comma-separated integers, got {seeds!r}") from None
    if data or _photo_run(run):
        from recgen.restore.photo_eval import evaluate_photos

        r = evaluate_photos(run, task, data, sigma=sigma, scale=scale, quality=quality, mask_kind=mask_kind,
                            ratio=ratio, seed=seed_list[0] if seed_list else 0, crop=crop,
                            slow_baselines=slow_baselines, out=out, ensemble=ensemble, adapt=adapt)
        if json_:
            emit(r, True)
        else:
            _print_photo_eval(r)
        return
    r = evaluate(run, task, n=n, seeds=seed_list, mask_kind=mask_kind, ratio=ratio, sigma=sigma, scale=scale,
                 judge=judge, method=method, steps=steps, out=out, ensemble=ensemble, adapt=adapt)
    if json_:
        emit(r, True)
        return
    _print_eval(r)
