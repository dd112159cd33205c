"""`recgen generate train|distill|sample|interpolate|eval|judge`, registered in recgen/cli.py as `recgen generate`.

Each command imports the task's code in its body: `recgen --help` and usage errors answer without loading
torch (tests/test_cli_startup.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from recgen.cli_kit import NOT_EVALUATED, config_command, emit, options_from, user_errors
from recgen.errors import RecgenError
from recgen.generate.options import SampleOptions

generate_app = typer.Typer(no_args_is_help=True, help="Generation: train, sample, interpolate, eval, judge.")
GenerateRun = Annotated[str, typer.Argument(help="a generate run directory, e.g. runs/generate/diffusion-1")]


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
@options_from(SampleOptions)
def generate_sample(
        run: GenerateRun,
        options: SampleOptions,
        out: Annotated[str, typer.Option(help="grid PNG path; the .npz goes beside it")] = "",
        per_image: Annotated[bool, typer.Option(help="also write one PNG per image")] = False,
        json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Sample images: a grid PNG, an .npz (x uint8 (N, H, W, C), y labels, classes) and optionally single PNGs."""
    from recgen import generate

    from recgen.progress import Progress

    gen = generate.load(run)
    o = options
    with Progress(f"sampling from {Path(run).name} ({gen.family})", o.n, "images") as p:
        x, y = gen.sample(o, progress=p)
    cols = len(gen.classes) if y is not None and o.class_ is None and o.prompt is None and o.like is None \
        and len(gen.classes) <= 16 else 8
    asked = f"class {o.class_}" if o.class_ is not None else o.prompt if o.prompt is not None else \
        f"like {Path(o.like).stem}" if o.like is not None else ""
    out = out or _default_out(run, "sample", o.seed, asked)
    paths = generate.save_samples(x, y, out, gen.classes, per_image, cols, prompt=o.prompt)
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
@options_from(SampleOptions, into="sampling", only=("sampler", "steps", "guidance", "precision"),
              overrides={"precision": {"help": "sampling precision: fp32 | bf16 (faster on CPUs with native bf16, "
                                               "AMX or AVX-512 BF16, and on GPUs; the judge stays fp32)"}})
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
        split: Annotated[str, typer.Option(help="likelihood figures on test | val")] = "test",
        cas_classifier: Annotated[str, typer.Option(help="CAS classifier: small (fast, 800 steps) | recognizer "
                                                         "(the default CNN's network, 2,400 steps)")] = "small",
        cas_steps: Annotated[int, typer.Option(help="optimizer steps of each CAS classifier (0 = the classifier's "
                                                    "own: 800 small, 2,400 recognizer)")] = 0,
        json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
        sampling: SampleOptions | None = None):  # built from the sampling flags by options_from
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
        out["judged"] = evaluate_generator(run, judge, n=n, seed=seed, sampling=sampling, inception=inception,
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
        if "prompt_adherence" in out["judged"]:
            pa = out["judged"]["prompt_adherence"]
            typer.echo(f"  prompt adherence {pa['adherence']:.4f} over {pa['phrasings']} held-out phrasings; "
                       + ", ".join(f"{c} {v:.2f}" for c, v in pa["per_class"].items()))
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
