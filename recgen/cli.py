"""The `recgen` command. Task words (data, classify, generate, ...) and modes (train, eval, predict, ...) match the
Python API; every training flag is generated from the task's config dataclass, so `--batch-size` on the command line
is `batch_size` in config.yaml and in `recgen.classify.train(batch_size=...)`."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from recgen.cli_kit import IMAGES_HELP, NOT_EVALUATED, config_command, emit, user_errors
from recgen.detect.cli import detect_app
from recgen.errors import RecgenError
from recgen.restore.cli import restore_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="recgen: image recognition and generation, trained, judged and improved by each other.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list, show, export, download.")
classify_app = typer.Typer(no_args_is_help=True, help="Recognition: train, eval, predict.")
generate_app = typer.Typer(no_args_is_help=True, help="Generation: train, sample, interpolate, eval, judge.")
app.add_typer(data_app, name="data")
app.add_typer(classify_app, name="classify")
app.add_typer(generate_app, name="generate")
app.add_typer(detect_app, name="detect")
app.add_typer(restore_app, name="restore")


def _print_version(value: bool) -> None:
    if value:
        from recgen import __version__

        typer.echo(f"recgen {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="print the version and exit")] = False):
    pass


ClassifyRun = Annotated[str, typer.Argument(help="a classify run directory, e.g. runs/classify/cnn-1")]
GenerateRun = Annotated[str, typer.Argument(help="a generate run directory, e.g. runs/generate/diffusion-1")]


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
def data_show(name: Annotated[str, typer.Argument(help="a named dataset (recgen data list) or a path")],
              split: Annotated[str, typer.Option(help="train | test")] = "train",
              data_dir: Annotated[str, typer.Option(help="where named datasets are looked for first")] = "",
              out: Annotated[str, typer.Option(help="PNG file or folder for the grid (default: here)")] = "",
              json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
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
    plots.image_grid(ds.x[pick], path, [ds.classes[ds.y[i]] for i in pick], cols=8)
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


@data_app.command("export")
@user_errors
def data_export(name: Annotated[str, typer.Argument(help="a named dataset (recgen data list) or a path")],
                out: Annotated[str, typer.Option(help="folder for the PNG files")] = "examples",
                split: Annotated[str, typer.Option(help="train | test")] = "test",
                per_class: Annotated[int, typer.Option(help="images of each class")] = 1,
                seed: Annotated[int, typer.Option(help="picks which images")] = 0,
                data_dir: Annotated[str, typer.Option(help="where named datasets are looked for first")] = ""):
    """Write a few images of a dataset as PNG files named by their class (examples/shirt.png, ...): inputs to try
    `classify predict`, `restore` or the web UI on."""
    import io

    import numpy as np
    from PIL import Image

    from recgen.config import check_option
    from recgen.data import load_dataset
    from recgen.runs import atomic_write

    check_option("per_class", per_class, int)
    if per_class < 1:
        raise RecgenError(f"per_class must be at least 1, got {per_class}")
    check_option("seed", seed, int)
    ds = load_dataset(name, split, data_dir or None)
    rng = np.random.default_rng(seed)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for c, cls in enumerate(ds.classes):
        slug = re.sub(r"[^a-z0-9]+", "-", cls.lower()).strip("-") or f"class-{c}"
        for i, j in enumerate(rng.permutation(np.flatnonzero(ds.y == c))[:per_class]):
            buf = io.BytesIO()
            im = ds.x[j]
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, format="PNG")
            atomic_write(folder / (f"{slug}.png" if per_class == 1 else f"{slug}-{i + 1}.png"), buf.getvalue())
    typer.echo(f"{per_class} {split} image(s) of each of {ds.num_classes} classes of {ds.name} in {folder}/")


@data_app.command("download")
@user_errors
def data_download(name: Annotated[str, typer.Argument(help="fashion-mnist")],
                  data_dir: Annotated[str, typer.Option(help="destination folder")] = "data",
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
    from recgen.classify.config import ClassifyConfig

    classify_app.command("train", help="Train a recognizer (CNN through the shared loop, or SVM / random forest "
                                       "on classical features).")(config_command(ClassifyConfig, _classify_train))


_register_classify_train()


@classify_app.command("eval")
@user_errors
def classify_eval(run: ClassifyRun, split: Annotated[str, typer.Option(help="test | val")] = "test",
                  tta: Annotated[str, typer.Option(help="CNN test-time views, e.g. none, flip, flip+shift "
                                                        "(default: the run's own)")] = "",
                  json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix; writes report.html."""
    from recgen import classify

    m = classify.load(run).evaluate(split, tta=tta or None)
    if json_:
        emit(m, True)
        return
    from recgen.report import chance_note

    chance = chance_note(m["accuracy"], len(m["per_class"]), m["n"])
    typer.echo(f"{m['split']}: accuracy {m['accuracy']:.4f}  macro P {m['macro_precision']:.4f}  "
               f"R {m['macro_recall']:.4f}  F1 {m['macro_f1']:.4f}  (n={m['n']})" + (f"  {chance}" if chance else ""))
    for r in m["per_class"]:
        typer.echo(f"  {r['class']:20s} P {r['precision']:.3f}  R {r['recall']:.3f}  F1 {r['f1']:.3f}")
    typer.echo(f"report: {Path(run) / 'report.html'}")


@classify_app.command("predict")
@user_errors
def classify_predict(run: ClassifyRun,
                     inputs: Annotated[list[str], typer.Argument(help=IMAGES_HELP)],
                     topk: Annotated[int, typer.Option(help="classes listed per image, most probable first")] = 3,
                     explain: Annotated[bool, typer.Option(help="write Grad-CAM overlays")] = False,
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


# issue 34: `recgen generate distill TEACHER_RUN`, a few-step student (recgen/generate/student.py)
def _generate_distill(options: dict[str, Any]) -> None:
    from recgen import generate

    run = generate.distill(**options)
    m = run.run.saved_eval() or {}
    figures = "  ".join(f"{k} {v}" for k, v in m.items() if k.startswith("teacher_mse"))
    typer.echo(f"{run.path}: student of {run.config.teacher}, at most {run.arch.steps} steps  {figures}".rstrip())
    typer.echo(f"report: {run.path / 'report.html'}")


def _register_generate_distill():
    import inspect

    from recgen.generate.config import TEACHER_OWNED, DistillConfig

    cmd = config_command(DistillConfig, _generate_distill, skip=TEACHER_OWNED)
    teacher = Annotated[str, typer.Argument(help="the diffusion run to distil (omit with --resume)")]
    sig = inspect.signature(cmd)  # TEACHER_RUN is positional, as the other commands' runs are
    cmd.__signature__ = sig.replace(parameters=[p.replace(annotation=teacher) if p.name == "teacher" else p
                                                for p in sig.parameters.values()])
    cmd.__annotations__ = {**cmd.__annotations__, "teacher": teacher}
    generate_app.command("distill", help="Distil a 1-4 step student from a diffusion run (consistency distillation, "
                                         "guidance distilled in) through the shared loop.")(cmd)


_register_generate_distill()


def _default_out(run: str, what: str, seed: int, asked: str = "") -> Path:
    """RUN/samples/<what>[-<what was asked>]-seed<seed>.png, numbered -2, -3, ... rather than overwrite an earlier
    one (another --n or --steps asks for other images under the same name)."""
    slug = re.sub(r"[^a-z0-9]+", "-", asked.lower()).strip("-")[:48]
    stem = f"{what}-{slug}-seed{seed}" if slug else f"{what}-seed{seed}"
    path, k = Path(run) / "samples" / f"{stem}.png", 2
    while path.exists() or path.with_suffix(".npz").exists():
        path, k = path.with_name(f"{stem}-{k}.png"), k + 1
    return path


@generate_app.command("sample")
@user_errors
def generate_sample(
        run: GenerateRun,
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

    from recgen.progress import Progress

    gen = generate.load(run)
    with Progress(f"sampling from {Path(run).name} ({gen.family})", n, "images") as p:
        x, y = gen.sample(n, class_=class_, prompt=prompt, like=like, sampler=sampler, steps=steps,
                          guidance=guidance, strength=strength, temperature=temperature, seed=seed,
                          precision=precision, progress=p)
    cols = len(gen.classes) if y is not None and class_ is None and prompt is None and like is None \
        and len(gen.classes) <= 16 else 8
    asked = f"class {class_}" if class_ is not None else prompt if prompt is not None else \
        f"like {Path(like).stem}" if like is not None else ""
    paths = generate.save_samples(x, y, out or _default_out(run, "sample", seed, asked), gen.classes, per_image, cols,
                                  prompt=prompt)
    if json_:
        emit({**paths, "n": len(x), "labels": None if y is None else y.tolist()}, True)
        return
    typer.echo(f"{len(x)} images: {paths['grid']}, {paths['npz']}" +
               (f", {paths['images']}/" if "images" in paths else ""))


@generate_app.command("interpolate")
@user_errors
def generate_interpolate(
        run: GenerateRun,
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
    asked = f"{Path(a).stem} to {Path(b).stem}" if a and b else f"class {class_}" if class_ is not None else ""
    paths = generate.save_samples(x, y, out or _default_out(run, "interpolation", seed, asked), gen.classes, cols=n)
    typer.echo(f"{len(x)} frames: {paths['grid']}, {paths['npz']}")


@generate_app.command("eval")
@user_errors
def generate_eval(
        run: GenerateRun,
        judge: Annotated[str, typer.Option(help="recgen CNN run judging the samples (default: the reference judge "
                                                "of the run's dataset, see `recgen generate judge`)")] = "",
        inception: Annotated[str, typer.Option(help="also FID/KID in Inception-v3 space from this local weights file "
                                                    "(torch-fidelity's pt_inception-2015-12-05; needs torch-fidelity)")] = "",
        no_judge: Annotated[bool, typer.Option("--no-judge", help="only the held-out likelihood figures, no judge")] = False,
        n: Annotated[int, typer.Option(help="samples to judge (the cost of fid, hog and recognizability grows with "
                                            "it; memorization, cas and likelihood cost about the same at any n)")] = 10000,
        metrics: Annotated[str, typer.Option(help="parts to compute, comma-separated: all, or fid (also kid, "
                                                  "precision, recall), hog, recognizability, memorization, cas, "
                                                  "likelihood")] = "all",
        seed: Annotated[int, typer.Option(help="seeds the samples and the real reference images")] = 0,
        sampler: Annotated[Optional[str], typer.Option(help="diffusion: ddpm | ddim | dpm")] = None,
        steps: Annotated[Optional[int], typer.Option(help="diffusion: sampling steps")] = None,
        guidance: Annotated[Optional[float], typer.Option(help="diffusion, pixelcnn: classifier-free guidance "
                                                                  "scale (1 = none)")] = None,
        split: Annotated[str, typer.Option(help="likelihood figures on test | val")] = "test",
        precision: Annotated[str, typer.Option(help="sampling precision: fp32 | bf16 (faster on CPUs with AMX and "
                                                    "on GPUs; the judge stays fp32)")] = "fp32",
        cas_classifier: Annotated[str, typer.Option(help="CAS classifier: small (fast, 800 steps) | recognizer "
                                                         "(the default CNN's network, 2,400 steps)")] = "small",
        cas_steps: Annotated[int, typer.Option(help="optimizer steps of each CAS classifier (0 = the classifier's "
                                                    "own: 800 small, 2,400 recognizer)")] = 0,
        json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Judge samples with a recognizer (FID/KID/precision/recall in its feature space, recognizability, CAS,
    memorization) beside the held-out likelihood figures (VAE ELBO, PixelCNN bits/dim, diffusion loss, GAN spread);
    writes eval-*.json and report.html."""
    from recgen import generate
    from recgen.loop.judge import evaluate_generator, format_table, parse_metrics

    parts = parse_metrics(metrics)
    if cas_steps < 0:
        raise RecgenError(f"cas_steps must be 0 (the classifier's own) or more, got {cas_steps}")
    out: dict[str, Any] = {}
    if not no_judge and set(parts) - {"likelihood"}:
        out["judged"] = evaluate_generator(run, judge, n=n, seed=seed, sampler=sampler, steps=steps,
                                           guidance=guidance, inception=inception, precision=precision,
                                           cas_classifier=cas_classifier, metrics=metrics,
                                           cas_options={"steps": cas_steps} if cas_steps else None)
    if "likelihood" in parts or no_judge:
        out["likelihood"] = generate.load(run).evaluate(split)  # rewrites report.html with every section
    else:
        generate.load(run).write_report()  # every section, the run's earlier likelihood figures included
    if json_:
        emit(out, True)
        return
    if "judged" in out:
        def num(v):
            return f"{v:10.4g}" if isinstance(v, float) else f"{v!s:>10s}"

        for r in format_table(out["judged"]):
            typer.echo(f"  {r['metric']:16s} {r['better']} {num(r['model'])}   real-vs-real "
                       f"{num(r['floor (real vs real)'])}   noise {num(r['ceiling (noise)'])}   {r['note']}".rstrip())
        typer.echo("  (↓ lower is better, ↑ higher; the legend is in report.html)")
        card = out["judged"]["card"]
        if "cas_steps" in card:
            typer.echo(f"  cas: 2 {card['cas_classifier']} classifiers of {card['cas_steps']} steps each")
    if "likelihood" in out:
        from recgen.report import arrow

        typer.echo("  ".join(f"{k}{arrow(k)} {v}" for k, v in out["likelihood"].items() if k != "run"))
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
    from recgen.loop.config import AugmentConfig

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
def demo(out: Annotated[str, typer.Option(help="root folder of the run directories")] = "runs",
         quick: Annotated[bool, typer.Option(help="tiny budget (smoke test)")] = False,
         data: Annotated[str, typer.Option(help="dataset (the budgets are sized for fashion-mnist)")] = "fashion-mnist"):
    """The main job: the whole recognition/generation chain on Fashion-MNIST, one HTML report."""
    from recgen.demo import run_demo

    report = run_demo(out=out, quick=quick, data=data)
    typer.echo(f"report: {report}")


@app.command("serve")
@user_errors
def serve(root: Annotated[str, typer.Option(help="runs root folder to serve")] = "runs",
          host: Annotated[str, typer.Option(help="address to listen on; beyond loopback a token is required")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8000,
          token: Annotated[Optional[str], typer.Option(
              envvar="RECGEN_TOKEN", show_default=False,
              help="secret required on every route (auto: a random one); the environment keeps it out of "
                   "`ps`")]
          = None,
          allow_host: Annotated[Optional[list[str]], typer.Option(help="another Host name the server answers "
                                                                       "to (repeatable; * = any)")] = None,
          max_files: Annotated[int, typer.Option(help="images per request")] = 16,
          max_pixels: Annotated[int, typer.Option(help="width x height summed over a request's images")]
          = 4 * 2**20,
          max_upload_mb: Annotated[float, typer.Option(help="request body size, MiB")] = 32,
          concurrency: Annotated[int, typer.Option(help="model requests running at once")] = 2,
          queue: Annotated[int, typer.Option(help="model requests waiting; beyond: 503 Retry-After")] = 8):
    """REST API (/api/...) and a web UI (/) over the runs under ROOT."""
    import secrets
    import socket

    from recgen.progress import Progress
    from recgen.serve.limits import Limits
    from recgen.serve.security import check_bind

    if not Path(root).is_dir():
        raise RecgenError(f"{root}: no such runs folder")
    token = secrets.token_urlsafe(24) if token == "auto" else token
    check_bind(host, token)
    for name, value, least in [("max-files", max_files, 1), ("max-pixels", max_pixels, 1),
                               ("max-upload-mb", max_upload_mb, 0.001), ("concurrency", concurrency, 1),
                               ("queue", queue, 0)]:
        if value < least:
            raise RecgenError(f"--{name} must be at least {least}, got {value}")
    body = int(max_upload_mb * 2**20)
    limits = Limits(max_body_bytes=body, max_file_bytes=min(Limits.max_file_bytes, body), max_files=max_files,
                    max_pixels=max_pixels, concurrency=concurrency, queue=queue)
    with Progress("starting the server (models load on first use)"):  # torch, gradio: seconds of imports
        import uvicorn

        from recgen.serve.app import create_app

        app_ = create_app(root, token=token, bind=host, allow_hosts=allow_host or [], limits=limits)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    typer.echo(f"serving {Path(root).resolve()} at {url} (API docs at /docs"
               + (f"; API clients send 'Authorization: Bearer {token}')" if token else ")"))
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command("export")
@user_errors
def export_cmd(run: Annotated[str, typer.Argument(help="a classify (cnn) or detect (centernet) run directory")],
               format: Annotated[str, typer.Option("--format", help="onnx")] = "onnx",
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
          out: Annotated[str, typer.Option(help="root folder of the benchmark runs")] = "runs/bench",
          doc: Annotated[str, typer.Option(help="the document whose sections are rewritten")] = "docs/BENCHMARKS.md"):
    """Reproduce the figures of docs/BENCHMARKS.md and rewrite their sections there."""
    from recgen.bench import run_benchmarks

    run_benchmarks(list(names or []), out=out, doc=doc)


def main() -> None:
    """Usage errors (unknown option, missing argument) also end as one line and exit code 2."""
    try:  # recent typer vendors its own click
        from typer._click import exceptions as cx
    except ImportError:
        from click import exceptions as cx

    # A file name that is not valid UTF-8 reaches Python as surrogate escapes; a strict UTF-8 terminal encoding
    # would turn printing it into a traceback. Shown as \udcXX escapes instead.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
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
    except (KeyboardInterrupt, getattr(cx, "Abort", KeyboardInterrupt)):  # outside a command's own handler
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
