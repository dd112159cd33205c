"""The `recgen` command. Task words (data, classify, generate, ...) and modes (train, eval, predict, ...) match the
Python API; every training flag is generated from the task's config dataclass, so `--batch-size` on the command line
is `batch_size` in config.yaml and in `recgen.classify.train(batch_size=...)`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from recgen.errors import RecgenError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="recgen: image recognition and generation, trained, judged and improved by each other.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list, show, download.")
classify_app = typer.Typer(no_args_is_help=True, help="Recognition: train, eval, predict.")
generate_app = typer.Typer(no_args_is_help=True, help="Generation: train, sample, interpolate, eval, judge.")
app.add_typer(data_app, name="data")
app.add_typer(classify_app, name="classify")
app.add_typer(generate_app, name="generate")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def user_errors(fn: Callable) -> Callable:
    """User mistakes (RecgenError) -> one line on stderr and the error's exit code (2), no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _one_line_warning
        try:
            return fn(*args, **kwargs)
        except RecgenError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # a path the user named cannot be written or read (permissions, a file in the way)
            where = f"{e.filename}: " if e.filename else ""
            why = "a file stands where a folder is needed" if isinstance(e, (FileExistsError, NotADirectoryError)) \
                else e.strerror or e
            typer.echo(f"error: {where}{why}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def field_help(cls) -> dict[str, str]:
    """The `# comment` after each dataclass field is its help text (one place to document an option)."""
    out = {}
    for klass in reversed(cls.__mro__):
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", src, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


def config_command(cls, handler: Callable[[dict[str, Any]], None], skip: tuple[str, ...] = ()) -> Callable:
    """A typer command whose options are the fields of dataclass `cls`; calls handler(dict of given options)."""
    helps = field_help(cls)
    params, annotations = [], {}
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in skip}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        t = {"int": int, "float": float, "str": str, "bool": bool}.get(str(f.type), f.type)
        ann = Annotated[t, typer.Option(help=helps.get(f.name, ""), show_default=True)]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=ann))
        annotations[f.name] = ann

    def command(**kwargs):
        # Only options the user gave are passed on: the config dataclass fills in the rest, and training options
        # left out are sized to the data (recgen.defaults). One given at its default value still counts as given.
        handler({k: v for k, v in kwargs.items() if v != defaults[k] or _given(k)})

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = annotations
    return user_errors(command)


def _given(name: str) -> bool:
    """Whether option `name` of the running command came from the command line (or the environment)."""
    try:  # recent typer vendors its own click
        from typer._click import core, globals as click_globals
    except ImportError:
        import click.core as core
        import click.globals as click_globals
    ctx = click_globals.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source is not None and source != core.ParameterSource.DEFAULT


def emit(obj: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=None, default=str))


# ------------------------------------------------------------------------------------------------------ data
@data_app.command("list")
@user_errors
def data_list():
    """Named datasets and whether their files are found on this machine."""
    from recgen.data.sources import NAMED, fashion_mnist_dir

    for name, desc in NAMED.items():
        try:
            where = str(fashion_mnist_dir()) if name == "fashion-mnist" else "bundled with scikit-learn"
        except RecgenError:
            where = "NOT FOUND (apt-get install dataset-fashion-mnist, or recgen data download)"
        typer.echo(f"{name:15s} {desc}\n{'':15s} {where}")
    typer.echo("Also accepted as --data: an image folder (one subfolder per class), a folder of IDX files, a folder "
               "of CIFAR-10 python batches, or an .npz with arrays x and y.")


@data_app.command("show")
@user_errors
def data_show(name: str, split: str = "train", data_dir: str = "", out: str = "",
              json_: Annotated[bool, typer.Option("--json")] = False):
    """Class counts and a sample grid PNG (8 images per class)."""
    import numpy as np

    from recgen import plots
    from recgen.data import load_dataset
    from recgen.runs import output_file

    ds = load_dataset(name, split, data_dir or None)
    counts = ds.class_counts()
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.permutation(np.flatnonzero(ds.y == c))[:8] for c in range(ds.num_classes)])
    path = output_file(out or ".", f"{Path(name).name}-{split}-samples.png")
    plots.image_grid(ds.x[pick], path, [ds.classes[ds.y[i]][:12] for i in pick], cols=8)
    info = {"dataset": ds.name, "split": split, "images": len(ds), "shape_hwc": list(ds.x.shape[1:]),
            "classes": {c: int(n) for c, n in zip(ds.classes, counts)}, "fingerprint": ds.fingerprint(),
            "grid": str(path)}
    if json_:
        emit(info, True)
        return
    typer.echo(f"{ds.name} [{split}]: {len(ds)} images of {ds.x.shape[1]}x{ds.x.shape[2]}x{ds.x.shape[3]}")
    for c, n in zip(ds.classes, counts):
        typer.echo(f"  {c:20s} {n}")
    typer.echo(f"sample grid: {path}")


@data_app.command("download")
@user_errors
def data_download(name: str, data_dir: Annotated[str, typer.Option(help="destination folder")] = "data",
                  url: Annotated[str, typer.Option(help="base URL (default: the official source)")] = ""):
    """Download a named dataset with checksum verification (Fashion-MNIST)."""
    from recgen.data.download import FASHION_MNIST_URL, download_fashion_mnist
    from recgen.data.sources import DOWNLOAD_DIR  # "data", the default above: where loading looks too

    if name != "fashion-mnist":
        raise RecgenError(f"only fashion-mnist can be downloaded (digits ships with scikit-learn), not {name!r}")
    dest = download_fashion_mnist(Path(data_dir) / "fashion-mnist", url or FASHION_MNIST_URL)
    typer.echo(f"fashion-mnist verified in {dest}")
    if Path(data_dir).resolve() != Path(DOWNLOAD_DIR).resolve():
        typer.echo(f"recgen looks in ./{DOWNLOAD_DIR} by default: pass --data-dir {data_dir} "
                   f"or set RECGEN_DATA={data_dir}")


# ------------------------------------------------------------------------------------------------- classify
NOT_EVALUATED = "trained; not evaluated, as the data has no test split and --val-fraction is 0"


def _classify_train(options: dict[str, Any]) -> None:
    from recgen import classify

    run = classify.train(**options)
    m = run.run.saved_eval()
    if m is None:
        typer.echo(f"{run.path}: {NOT_EVALUATED}")
        return
    typer.echo(f"{run.path}: {m['split']} accuracy {m['accuracy']:.4f}, macro F1 {m['macro_f1']:.4f}")
    typer.echo(f"report: {run.path / 'report.html'}")


def _register_classify_train():
    from recgen.classify.api import ClassifyConfig

    classify_app.command("train", help="Train a recognizer (CNN through the shared loop, or SVM / random forest "
                                       "on classical features).")(config_command(ClassifyConfig, _classify_train))


_register_classify_train()


@classify_app.command("eval")
@user_errors
def classify_eval(run: str, split: Annotated[str, typer.Option(help="test | val")] = "test",
                  tta: Annotated[str, typer.Option(help="CNN test-time views, e.g. none, flip, flip+shift "
                                                        "(default: the run's own)")] = "",
                  json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix; writes report.html."""
    from recgen import classify

    m = classify.load(run).evaluate(split, tta=tta or None)
    if json_:
        emit(m, True)
        return
    typer.echo(f"{m['split']}: accuracy {m['accuracy']:.4f}  macro P {m['macro_precision']:.4f}  "
               f"R {m['macro_recall']:.4f}  F1 {m['macro_f1']:.4f}  (n={m['n']})")
    for r in m["per_class"]:
        typer.echo(f"  {r['class']:20s} P {r['precision']:.3f}  R {r['recall']:.3f}  F1 {r['f1']:.3f}")
    typer.echo(f"report: {Path(run) / 'report.html'}")


@classify_app.command("predict")
@user_errors
def classify_predict(run: str, inputs: Annotated[list[str], typer.Argument(help="image files, folders or globs")],
                     topk: int = 3, explain: Annotated[bool, typer.Option(help="write Grad-CAM overlays")] = False,
                     out: Annotated[str, typer.Option(help="folder for --explain overlays")] = "",
                     json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Top-k classes with probabilities for new images; --explain adds Grad-CAM overlays."""
    from recgen import classify

    results = classify.load(run).predict(inputs, topk=topk, explain=explain, out=out or None)
    if json_:
        emit(results, True)
        return
    for r in results:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        extra = f"  [grad-cam: {r['explanation']}]" if "explanation" in r else ""
        typer.echo(f"{r['input']}: {top}{extra}")


# ------------------------------------------------------------------------------------------------- generate
def _generate_train(options: dict[str, Any]) -> None:
    from recgen import generate

    run = generate.train(**options)
    m = run.run.saved_eval()
    if m is None:
        typer.echo(f"{run.path}: {NOT_EVALUATED}")
    else:
        figures = {k: v for k, v in m.items() if k not in ("split", "n", "model", "cond", "seconds", "run", "data")}
        typer.echo(f"{run.path}: {m['split']} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    for h in run.run.config.get("health") or []:
        typer.echo(f"warning: {h}", err=True)
    typer.echo(f"report: {run.path / 'report.html'}")


def _register_generate_train():
    from recgen.generate.config import GenerateConfig

    generate_app.command("train", help="Train a generator (gan | vae | pixelcnn | diffusion) through the shared loop, "
                                       "unconditional, class- or text-conditional.")(
        config_command(GenerateConfig, _generate_train))


_register_generate_train()


def _default_out(run: str, what: str, seed: int) -> Path:
    return Path(run) / "samples" / f"{what}-seed{seed}.png"


@generate_app.command("sample")
@user_errors
def generate_sample(
        run: str,
        n: Annotated[int, typer.Option(help="number of images")] = 64,
        class_: Annotated[Optional[str], typer.Option("--class", help="class name or index")] = None,
        prompt: Annotated[Optional[str], typer.Option(help="free text (text-conditional runs)")] = None,
        like: Annotated[Optional[str], typer.Option(help="an image to make variations of (vae, diffusion, "
                                                         "pixelcnn)")] = None,
        strength: Annotated[float, typer.Option(help="with --like: how far from the image, in (0, 1]")] = 0.6,
        sampler: Annotated[Optional[str], typer.Option(help="diffusion: ddpm | ddim | dpm")] = None,
        steps: Annotated[Optional[int], typer.Option(help="diffusion: sampling steps")] = None,
        guidance: Annotated[Optional[float], typer.Option(help="diffusion, pixelcnn: classifier-free guidance "
                                                                  "scale (1 = none)")] = None,
        temperature: Annotated[float, typer.Option(help="noise scale (gan, vae) or softmax temperature "
                                                        "(pixelcnn)")] = 1.0,
        seed: Annotated[int, typer.Option(help="same seed, same images")] = 0,
        precision: Annotated[str, typer.Option(help="fp32 | bf16 (faster on CPUs with AMX and on GPUs)")] = "fp32",
        out: Annotated[str, typer.Option(help="grid PNG path; the .npz goes beside it")] = "",
        per_image: Annotated[bool, typer.Option(help="also write one PNG per image")] = False,
        json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Sample images: a grid PNG, an .npz (x uint8 (N, H, W, C), y labels, classes) and optionally single PNGs."""
    from recgen import generate

    gen = generate.load(run)
    x, y = gen.sample(n, class_=class_, prompt=prompt, like=like, sampler=sampler, steps=steps, guidance=guidance,
                      strength=strength, temperature=temperature, seed=seed, precision=precision)
    cols = len(gen.classes) if y is not None and class_ is None and prompt is None and like is None \
        and len(gen.classes) <= 16 else 8
    paths = generate.save_samples(x, y, out or _default_out(run, "sample", seed), gen.classes, per_image, cols,
                                  prompt=prompt)
    if json_:
        emit({**paths, "n": len(x), "labels": None if y is None else y.tolist()}, True)
        return
    typer.echo(f"{len(x)} images: {paths['grid']}, {paths['npz']}" +
               (f", {paths['images']}/" if "images" in paths else ""))


@generate_app.command("interpolate")
@user_errors
def generate_interpolate(
        run: str,
        a: Annotated[Optional[str], typer.Option(help="first image (vae, diffusion)")] = None,
        b: Annotated[Optional[str], typer.Option(help="second image (vae, diffusion)")] = None,
        n: Annotated[int, typer.Option(help="frames per row")] = 8,
        class_: Annotated[Optional[str], typer.Option("--class", help="class name or index (default: one row "
                                                                      "per class)")] = None,
        seed: Annotated[int, typer.Option(help="picks the two latent endpoints")] = 0,
        out: Annotated[str, typer.Option(help="grid PNG path; the .npz goes beside it")] = ""):
    """Latent interpolation (gan, vae, diffusion): between two images (vae, diffusion) or two noise draws, one row
    per class."""
    from recgen import generate

    gen = generate.load(run)
    x, y = gen.interpolate(a, b, n=n, class_=class_, seed=seed)
    paths = generate.save_samples(x, y, out or _default_out(run, "interpolation", seed), gen.classes, cols=n)
    typer.echo(f"{len(x)} frames: {paths['grid']}, {paths['npz']}")


@generate_app.command("eval")
@user_errors
def generate_eval(
        run: str,
        judge: Annotated[str, typer.Option(help="recgen CNN run judging the samples (default: the reference judge "
                                                "of the run's dataset, see `recgen generate judge`)")] = "",
        inception: Annotated[str, typer.Option(help="also FID/KID in Inception-v3 space from this local weights file "
                                                    "(torch-fidelity's pt_inception-2015-12-05; needs torch-fidelity)")] = "",
        no_judge: Annotated[bool, typer.Option("--no-judge", help="only the held-out likelihood figures, no judge")] = False,
        n: Annotated[int, typer.Option(help="samples to judge")] = 10000,
        seed: int = 0,
        sampler: Annotated[Optional[str], typer.Option(help="diffusion: ddpm | ddim | dpm")] = None,
        steps: Annotated[Optional[int], typer.Option(help="diffusion: sampling steps")] = None,
        guidance: Annotated[Optional[float], typer.Option(help="diffusion, pixelcnn: classifier-free guidance "
                                                                  "scale (1 = none)")] = None,
        split: Annotated[str, typer.Option(help="likelihood figures on test | val")] = "test",
        precision: Annotated[str, typer.Option(help="sampling precision: fp32 | bf16 (faster on CPUs with AMX and "
                                                    "on GPUs; the judge stays fp32)")] = "fp32",
        cas_classifier: Annotated[str, typer.Option(help="CAS classifier: small (fast, 800 steps) | recognizer "
                                                         "(the default CNN's network, 2,400 steps)")] = "small",
        json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Judge samples with a recognizer (FID/KID/precision/recall in its feature space, recognizability, CAS,
    memorization) beside the held-out likelihood figures (VAE ELBO, PixelCNN bits/dim, diffusion loss, GAN spread);
    writes eval-*.json and report.html."""
    from recgen import generate

    out: dict[str, Any] = {}
    if not no_judge:
        from recgen.loop.judge import evaluate_generator, format_table

        out["judged"] = evaluate_generator(run, judge, n=n, seed=seed, sampler=sampler, steps=steps,
                                           guidance=guidance, inception=inception, precision=precision,
                                           cas_classifier=cas_classifier)
    out["likelihood"] = generate.load(run).evaluate(split)  # rewrites report.html with every section
    if json_:
        emit(out, True)
        return
    if "judged" in out:
        def num(v):
            return f"{v:10.4g}" if isinstance(v, float) else f"{v!s:>10s}"

        for r in format_table(out["judged"]):
            typer.echo(f"  {r['metric']:16s} {num(r['model'])}   real-vs-real {num(r['floor (real vs real)'])}   "
                       f"noise {num(r['ceiling (noise)'])}")
    typer.echo("  ".join(f"{k} {v}" for k, v in out["likelihood"].items() if k != "run"))
    typer.echo(f"report: {Path(run) / 'report.html'}")


@generate_app.command("judge")
@user_errors
def generate_judge(data: Annotated[str, typer.Option(help="dataset the judge recognizes")] = "fashion-mnist",
                   out: Annotated[str, typer.Option(help="where to keep it (default: runs/judges/<data>)")] = ""):
    """Train the reference judge of a dataset once (a CNN on its full training split); `generate eval` uses it."""
    from recgen.loop.judge import train_judge

    typer.echo(f"reference judge: {train_judge(data, out or None)}")


# ------------------------------------------------------------------------------------------------- the loop
def _augment(options: dict[str, Any]) -> None:
    from recgen.loop.augment import run_augment

    s = run_augment(**options)
    typer.echo(f"{s['setting']} [{s['label']}], {s['seeds']} seed(s), generator {s['generator']}, "
               f"recognizer {s['recognizer']}")
    over = s.get("oversampled")
    for a in s["arms"][:1] + ([{**over, "ratio": "0, minority oversampled"}] if over else []) + s["arms"][1:]:
        copies = f"  near copies {a['copy_rate']:.1%}" if "copy_rate" in a else ""
        val = f"  (validation {a['val_accuracy_mean']:.4f})" if "val_accuracy_mean" in a else ""
        ratio = a["ratio"] if isinstance(a["ratio"], str) else f"{a['ratio']:g}"
        typer.echo(f"  ratio {ratio}: accuracy {a['accuracy_mean']:.4f} ± {a['accuracy_std']:.4f}  "
                   f"gain {a['gain_points']:+.2f} ± {a['gain_std']:.2f} points{copies}{val}")
    for r, g in s.get("minority_recall_gain_points", {}).items():
        vs = s.get("over_oversampled", {}).get(r)
        typer.echo(f"  minority recall gain at ratio {r:g}: {g:+.2f} points" +
                   (f" ({vs['minority_recall_points']:+.2f} over oversampling)" if vs else ""))
    if over:
        typer.echo(f"  minority recall gain of oversampling alone: {over['minority_recall_gain_points']:+.2f} points")
    typer.echo(f"best ratio {s['best_ratio']:g} (chosen on {s['best_chosen_on']}): gain {s['best_gain_points']:+.2f} "
               "points on the test set")
    for h in s.get("health", []):
        typer.echo(f"warning: {h}", err=True)
    typer.echo(f"report: {s['run']}/report.html")


def _register_augment():
    from recgen.loop.augment import AugmentConfig

    app.command("augment", help="Generation feeds recognition: train recognizers on scarce or imbalanced real data "
                                "with and without synthetic images; per-class gains over seeds.")(
        config_command(AugmentConfig, _augment))


_register_augment()


# --------------------------------------------------------------------------------------------------- others
@app.command("checks")
@user_errors
def checks():
    """Versions, compute device and datasets found."""
    import platform

    import torch

    import recgen
    from recgen.data.sources import fashion_mnist_dir
    from recgen.train import resolve_device, resolve_precision

    typer.echo(f"recgen {recgen.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    typer.echo(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else 'cpu'}, "
               f"{torch.get_num_threads()} torch threads, "
               f"training precision auto = {resolve_precision('auto', resolve_device('auto'))}")
    try:
        typer.echo(f"fashion-mnist: {fashion_mnist_dir()}")
    except RecgenError as e:
        typer.echo(f"fashion-mnist: {e}")
    typer.echo("digits: bundled with scikit-learn")


@app.command("demo")
@user_errors
def demo(out: str = "runs", quick: Annotated[bool, typer.Option(help="tiny budget (smoke test)")] = False,
         data: Annotated[str, typer.Option(help="dataset (the budgets are sized for fashion-mnist)")] = "fashion-mnist"):
    """The main job: the whole recognition/generation chain on Fashion-MNIST, one HTML report."""
    from recgen.demo import run_demo

    report = run_demo(out=out, quick=quick, data=data)
    typer.echo(f"report: {report}")


@app.command("serve")
@user_errors
def serve(root: Annotated[str, typer.Option(help="runs root folder to serve")] = "runs",
          host: str = "127.0.0.1", port: int = 8000):
    """REST API (/api/...) and a web UI (/) over the runs under ROOT."""
    import uvicorn

    from recgen.serve.app import create_app

    if not Path(root).is_dir():
        raise RecgenError(f"{root}: no such runs folder")
    typer.echo(f"serving {Path(root).resolve()} at http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(create_app(root), host=host, port=port, log_level="warning")


@app.command("export")
@user_errors
def export_cmd(run: str, format: Annotated[str, typer.Option("--format", help="onnx")] = "onnx",
               out: Annotated[str, typer.Option(help="output file (default RUN/model.onnx)")] = "",
               json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Export a classifier CNN or a CenterNet detector (decoding included) to ONNX, with a parity check against
    PyTorch (onnxruntime, real images)."""
    from recgen.export import export

    info = export(run, format, out or None)
    if json_:
        emit(info, True)
        return
    agree = {k: v for k, v in info.items() if k.endswith("agreement")}
    typer.echo(f"{info['onnx']}: parity max |diff| {info['parity_max_abs_diff']:.2e}, "
               + ", ".join(f"{k.removeprefix('parity_').replace('_', ' ')} {v:.4f}" for k, v in agree.items())
               + f" on {info['parity_images']} images")
    typer.echo(f"  in: {info['input']}\n  out: {info['output']}")


@app.command("bench")
@user_errors
def bench(names: Annotated[Optional[list[str]], typer.Argument(help="benchmarks to run (default: all)")] = None,
          out: str = "runs/bench", doc: str = "docs/BENCHMARKS.md"):
    """Reproduce the figures of docs/BENCHMARKS.md and rewrite their sections there."""
    from recgen.bench import run_benchmarks

    run_benchmarks(list(names or []), out=out, doc=doc)


def _register_task_apps():
    """Tasks whose commands live beside their code (each defines its typer app before importing this module)."""
    from recgen.detect.cli import detect_app
    from recgen.restore.cli import restore_app

    app.add_typer(detect_app, name="detect")
    app.add_typer(restore_app, name="restore")


_register_task_apps()


def main() -> None:
    """Usage errors (unknown option, missing argument) also end as one line and exit code 2."""
    try:  # recent typer vendors its own click
        from typer._click import exceptions as cx
    except ImportError:
        from click import exceptions as cx

    try:
        rv = app(standalone_mode=False)
    except cx.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare `recgen classify`: the help was printed
            sys.exit(0)
        where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"error: {e.format_message()}{where}", file=sys.stderr)
        sys.exit(2)
    except cx.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, getattr(cx, "Abort", KeyboardInterrupt)):
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
