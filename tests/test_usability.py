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


def test_tables_say_which_way_is_better_and_flag_chance():
    from recgen.loop.judge import format_table
    from recgen.report import at_chance, legend

    assert at_chance(0.11, 10, 1000) and at_chance(0.14, 10, 100) and not at_chance(0.2, 10, 100)
    assert not at_chance(0.5, 10, 1000) and not at_chance(0.16, 10, 10**6)  # weak but real skill is not chance
    res = {"model": {"fid": 3.0, "cas": 0.104, "recognizability": 0.9}, "floor": {"fid": 1.0}, "ceiling": {},
           "card": {"n": 1000, "classes": 10}}
    rows = {r["metric"]: r for r in format_table(res)}
    assert rows["fid"]["better"] == "↓" and rows["cas"]["better"] == "↑"
    assert rows["cas"]["note"].startswith("AT CHANCE") and rows["recognizability"]["note"] == ""
    text = legend(["bpd", "kid", "cas", "n"])
    assert text.count("<li>") == 3 and "bits per dimension" in text and "Classification Accuracy Score" in text
    assert "↓ lower is better" in text and "↑ higher is better" in text


def test_data_export_writes_examples_named_by_class(tmp_path):
    from PIL import Image

    r = cli("data", "export", "digits", "--out", tmp_path / "ex", "--per-class", 2)
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "ex").iterdir())
    assert files == sorted(f"{d}-{i}.png" for d in range(10) for i in (1, 2))
    im = Image.open(tmp_path / "ex" / "7-1.png")
    assert im.mode == "L" and im.size[0] == im.size[1] >= 8
    r = cli("data", "export", "digits", "--out", tmp_path / "one")
    assert r.exit_code == 0 and (tmp_path / "one" / "3.png").is_file() and len(list((tmp_path / "one").iterdir())) == 10
    r = cli("data", "export", "digits", "--per-class", 0, "--out", tmp_path / "none")
    assert r.exit_code == 2 and "per_class must be at least 1" in r.output and not (tmp_path / "none").exists()


def test_log_tensorboard_needs_its_package_and_keeps_metrics_csv(tmp_path):
    import importlib.util

    args = ["classify", "train", "--data", "digits", "--epochs", 1, "--batch-size", 64, "--stem-width", 8,
            "--widths", "16", "--blocks", "0", "--threads", 1, "--log", "tensorboard", "--out", tmp_path]
    r = cli(*args)
    if importlib.util.find_spec("tensorboard") is None:
        assert r.exit_code == 2 and "log must be csv, or tensorboard with the tensorboard package installed" \
            in r.output and not (tmp_path / "classify").exists()
    else:
        run = tmp_path / "classify" / "cnn-1"
        assert r.exit_code == 0 and (run / "metrics.csv").is_file() and list((run / "tensorboard").glob("events.*"))
    r = cli("classify", "train", "--log", "wandb", "--out", tmp_path)
    assert r.exit_code == 2 and "log must be csv, or tensorboard" in r.output
