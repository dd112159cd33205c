"""What a newcomer notices first: full class names in plots, --version, help on every option."""

import numpy as np
import typer.main
from conftest import cli

import recgen


def test_grid_titles_keep_the_whole_class_name(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from recgen import plots

    seen = []
    real = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda self, label, *a, **k: (seen.append(label), real(self, label, *a, **k)))
    names = ["t-shirt/top", "a very long folder class name"]
    plots.image_grid(np.zeros((2, 8, 8), np.uint8), tmp_path / "g.png", [f"{names[0]} → {names[1]}", names[1]])
    assert (tmp_path / "g.png").is_file()
    assert [s.replace("\n", " ") for s in seen] == [f"{names[0]} → {names[1]}", names[1]]


def test_version():
    r = cli("--version")
    assert r.exit_code == 0 and r.output.strip() == f"recgen {recgen.__version__}"


def _commands(cmd, path):
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield " ".join(path), cmd


def test_every_command_argument_and_option_has_help():
    from recgen.cli import app

    missing = [f"{path} {p.name}" for path, cmd in _commands(typer.main.get_command(app), ["recgen"])
               for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    missing += [path for path, cmd in _commands(typer.main.get_command(app), ["recgen"]) if not cmd.help]
    assert missing == []
