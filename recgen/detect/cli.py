"""`recgen detect train|eval|predict|scenes`, registered in recgen/cli.py as `recgen detect`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recgen.cli_kit import IMAGES_HELP, NOT_EVALUATED, config_command, emit, user_errors
from recgen.detect.config import SceneConfig

detect_app = typer.Typer(no_args_is_help=True, help="Detection: scenes, train, eval, predict (COCO mAP).")
DetectRun = Annotated[str, typer.Argument(help="a detect run directory, e.g. runs/detect/centernet-1")]


def _print_metrics(m: dict[str, Any]) -> None:
    typer.echo(f"{m['split']}: mAP@[.5:.95] {m['map']:.4f}  mAP@.5 {m['map50']:.4f}  mAP@.75 {m['map75']:.4f}  "
               f"AR@100 {m['mar100']:.4f}  ({m['images']} images, {m['objects']} objects, "
               f"{m['inference_images_per_s']:.0f} images/s)")
    if "map_agnostic" in m:
        typer.echo(f"  classes ignored: mAP@[.5:.95] {m['map_agnostic']:.4f}  mAP@.5 {m['map50_agnostic']:.4f}")
    for r in m["per_class"]:
        ap = "   n/a" if r["ap"] is None else f"{r['ap']:.4f}"
        ap50 = "   n/a" if r["ap50"] is None else f"{r['ap50']:.4f}"
        typer.echo(f"  {r['class']:20s} AP {ap}  AP50 {ap50}")


def _train(options: dict[str, Any]) -> None:
    from recgen import detect

    run = detect.train(**options)
    m = run.run.saved_eval()
    if m is None:
        typer.echo(f"{run.path}: {NOT_EVALUATED}")
        return
    _print_metrics(m)
    typer.echo(f"run: {run.path}\nreport: {run.path / 'report.html'}")


def _scenes(options: dict[str, Any]) -> None:
    from recgen.detect.scenes import write_scenes

    cfg = SceneConfig(**options)
    for split, path in write_scenes(cfg).items():
        typer.echo(f"{split}: {path}")
    typer.echo(f"preview: {Path(cfg.out) / 'preview.png'}")


def _register() -> None:
    from recgen.detect.config import DetectConfig

    detect_app.command("train", help="Train a detector: CenterNet through the shared loop, or the classical "
                                     "baseline (contour proposals + classifier + NMS).")(
        config_command(DetectConfig, _train))
    detect_app.command("scenes", help="Write synthetic scenes (objects of a classification dataset on larger "
                                      "canvases) as COCO JSON + PNG images.")(config_command(SceneConfig, _scenes))


_register()


@detect_app.command("eval")
@user_errors
def detect_eval(run: DetectRun, split: Annotated[str, typer.Option(help="test | val")] = "test",
                data: Annotated[str, typer.Option(help="a COCO .json to evaluate on instead")] = "",
                json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """COCO mAP@[.5:.95], mAP@.5, mAP@.75 and per-class AP (pycocotools); writes report.html."""
    from recgen import detect

    m = detect.load(run).evaluate(split, data=data or None)
    if json_:
        emit(m, True)
        return
    _print_metrics(m)
    typer.echo(f"report: {Path(run) / 'report.html'}")


@detect_app.command("predict")
@user_errors
def detect_predict(run: DetectRun, inputs: Annotated[list[str], typer.Argument(help=IMAGES_HELP)],
                   min_score: Annotated[float, typer.Option(help="show detections scoring at least this")] = 0.3,
                   out: Annotated[str, typer.Option(help="folder for the drawings (default: RUN/predictions)")] = "",
                   draw: Annotated[bool, typer.Option(help="write each image with its boxes as PNG")] = True,
                   json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Boxes, classes and scores for new images (coordinates in each image's own pixels), drawn as PNG."""
    from recgen import detect

    results = detect.load(run).predict(inputs, min_score=min_score, out=out or None, draw=draw)
    if json_:
        emit(results, True)
        return
    for r in results:
        found = ", ".join(f"{d['class']} {d['score']:.2f} [{', '.join(f'{v:.0f}' for v in d['box'])}]"
                          for d in r["detections"]) or "nothing"
        extra = f"  -> {r['drawing']}" if "drawing" in r else ""
        typer.echo(f"{r['input']}: {found}{extra}")
