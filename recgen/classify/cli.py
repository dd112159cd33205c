"""`recgen classify train|eval|predict`, registered in recgen/cli.py as `recgen classify`.

Each command imports the task's code in its body: `recgen --help` and usage errors answer without loading
torch (tests/test_cli_startup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recgen.cli_kit import IMAGES_HELP, NOT_EVALUATED, config_command, emit, user_errors

classify_app = typer.Typer(no_args_is_help=True, help="Recognition: train, eval, predict.")
ClassifyRun = Annotated[str, typer.Argument(help="a classify run directory, e.g. runs/classify/cnn-1")]


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
