"""The command line answers quickly: help, listing data and usage errors load no deep-learning library."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "sentence_transformers", "sklearn", "kornia")


def _imported(*argv: str, code: int = 0) -> set[str]:
    """Top-level packages a `recgen ARGV` process imports, from Python's own import log (-X importtime)."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "recgen", *argv], capture_output=True, text=True, check=False,
                       timeout=120)
    assert p.returncode == code, p.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize("argv", [["--help"], ["classify", "train", "--help"], ["generate", "train", "--help"],
                                  ["data", "list"], ["restore", "train", "--help"], ["detect", "train", "--help"],
                                  ["augment", "--help"]])
def test_help_and_listing_load_no_deep_learning_library(argv):
    imported = _imported(*argv)
    assert "typer" in imported  # the log was read
    assert not set(HEAVY) & imported


def test_usage_errors_load_no_deep_learning_library():
    assert not set(HEAVY) & _imported("classify", "train", "--no-such-option", code=2)


def test_the_config_modules_load_without_torch():
    code = ("import sys, recgen.cli, recgen.classify.config, recgen.generate.config, recgen.detect.config, "
            "recgen.restore.config, recgen.loop.config, recgen.data.sources; "
            f"print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_package_attributes_still_load_on_use():
    from recgen import classify, data, detect, generate, restore

    assert callable(classify.train) and callable(generate.load) and callable(detect.make_scenes)
    assert callable(restore.corrupt) and callable(data.load_dataset)
    assert classify.ClassifyConfig().model == "cnn" and generate.FAMILY_DEFAULTS["vae"]["epochs"] > 0
    with pytest.raises(AttributeError):
        classify.no_such_name  # noqa: B018
