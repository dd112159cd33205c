"""Every option of every command says what it does, from one declaration (the config field's metadata)."""

import dataclasses

import typer.main

from recgen.classify.config import ClassifyConfig
from recgen.cli import app
from recgen.cli_kit import field_help
from recgen.detect.config import DetectConfig, SceneConfig
from recgen.generate.config import GenerateConfig
from recgen.loop.config import AugmentConfig
from recgen.restore.config import RestoreConfig

CONFIGS = (ClassifyConfig, GenerateConfig, RestoreConfig, DetectConfig, SceneConfig, AugmentConfig)


def _commands(cmd, path=()):
    if hasattr(cmd, "commands"):  # a group (typer may vendor its own click, so no isinstance)
        for name, sub in cmd.commands.items():
            yield from _commands(sub, path + (name,))
    else:
        yield " ".join(path), cmd


def test_every_config_field_declares_help():
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help", "").strip(), f"{cls.__name__}.{f.name} has no help"


def test_every_option_of_every_command_has_help():
    commands = dict(_commands(typer.main.get_command(app)))
    assert {"classify train", "generate train", "restore train", "detect train", "detect scenes",
            "augment"} <= set(commands)
    for path, cmd in commands.items():
        for p in cmd.params:
            if p.param_type_name == "option":
                assert (p.help or "").strip(), f"recgen {path} --{p.name} has no help"
    train = {p.name: p.help for p in commands["classify train"].params}
    assert train == {k: v for k, v in field_help(ClassifyConfig).items()}


def test_help_written_over_several_lines_survives_whole():
    helps = {p.name: p.help for p in dict(_commands(typer.main.get_command(app)))["augment"].params}
    # declared over three source lines; a comment-scraping regex kept only the first
    assert helps["oversample"].startswith("with --imbalance: repeat the real minority images")
    assert helps["oversample"].endswith("(--no-oversample: synthetic arms add to the subset as it is)")
    assert "real-only arm of its own and in every synthetic arm" in helps["oversample"]
