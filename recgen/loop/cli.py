"""`recgen augment`, registered in recgen/cli.py.

Each command imports the task's code in its body: `recgen --help` and usage errors answer without loading
torch (tests/test_cli_startup.py)."""

from __future__ import annotations

from typing import Any

import typer

from recgen.cli_kit import config_command


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


def register_augment(app: typer.Typer) -> None:
    """Add `recgen augment` to the top-level app (a command of its own, not a group)."""
    from recgen.loop.config import AugmentConfig

    app.command("augment", help="Generation feeds recognition: train recognizers on scarce or imbalanced real data "
                                "with and without synthetic images; per-class gains over seeds.")(
        config_command(AugmentConfig, _augment))
