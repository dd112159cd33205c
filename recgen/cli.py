"""The `recgen` command. Task words (data, classify, generate, ...) and modes (train, eval, predict, ...) match the
Python API; every training flag is generated from the task's config dataclass, so `--batch-size` on the command line
is `batch_size` in config.yaml and in `recgen.classify.train(batch_size=...)`. Each command imports what it runs
in its body, so `recgen --help` and usage errors answer without loading torch (tests/test_cli_startup.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from recgen.cli_kit import config_command, emit, user_errors  # noqa: F401 (config_command: re-exported)
from recgen.classify.cli import classify_app
from recgen.detect.cli import detect_app
from recgen.errors import RecgenError
from recgen.files import atomic_write, output_file
from recgen.generate.cli import generate_app
from recgen.loop.cli import register_augment
from recgen.restore.cli import restore_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="recgen: image recognition and generation, trained, judged and improved by each other.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list, show, export, download.")
app.add_typer(data_app, name="data")
app.add_typer(classify_app, name="classify")
app.add_typer(generate_app, name="generate")
app.add_typer(detect_app, name="detect")
app.add_typer(restore_app, name="restore")
register_augment(app)


def _print_version(value: bool) -> None:
    if value:
        from recgen import __version__

        typer.echo(f"recgen {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="print the version and exit")] = False):
    pass




# ------------------------------------------------------------------------------------------------------ data
@data_app.command("list")
@user_errors
def data_list():
    """Named datasets and whether their files are found on this machine."""
    from recgen.data.sources import NAMED, fashion_mnist_dir

    for name, desc in NAMED.items():
        try:
            where = str(fashion_mnist_dir()) if name == "fashion-mnist" else \
                "bundled with scikit-image and scikit-learn" if name == "photos" else "bundled with scikit-learn"
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
          out: Annotated[str, typer.Option(help="root folder of the benchmark runs")] = "runs/bench"):
    """Run a source checkout's registered bench/ scripts (each writes a record to bench/results/), then regenerate
    docs/BENCHMARKS.md from the records."""
    from recgen.bench import run_benchmarks

    typer.echo(run_benchmarks(list(names or []), out=out))


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
