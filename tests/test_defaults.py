"""Defaults sized to the data (recgen.defaults) and the sanity warnings (recgen.sanity)."""

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import yaml
from PIL import Image

from conftest import cli, run_cli
from recgen import classify
from recgen.classify.api import ClassifyConfig
from recgen.defaults import MIN_BATCH, MIN_STEPS, STEPS_PER_EPOCH, given_options, resolve_training
from recgen.detect.api import DetectConfig
from recgen.generate.config import FAMILY_DEFAULTS, GenerateConfig, resolve
from recgen.restore.api import RestoreConfig
from recgen.restore.files import check_restore_inputs
from recgen.sanity import (RecgenWarning, check_accuracy, check_inputs, check_samples, check_steps, training_stats,
                           unlike)

TINY = dict(stem_width=8, widths="16,32", blocks="0,1", threads=1)


def recgen_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RecgenWarning)]


# --------------------------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("n", [54_000, 60_000])  # Fashion-MNIST's training split less 10 % validation, and all
def test_full_fashion_mnist_keeps_todays_defaults(n):
    cfg, note = resolve_training(ClassifyConfig(), set(), n, (28, 28))
    assert (cfg.batch_size, cfg.lr, cfg.epochs) == (256, 0.4, 20) and note == ""
    for model, ref in FAMILY_DEFAULTS.items():
        g, note = resolve_training(resolve(GenerateConfig(model=model)), set(), 58_800, (28, 28), ref, 1000)
        assert (g.batch_size, g.lr, g.epochs) == (ref["batch_size"], ref["lr"], ref["epochs"]) and note == ""
    r, note = resolve_training(RestoreConfig(), set(), 58_800, (28, 28))
    assert (r.batch_size, r.lr, r.epochs) == (64, 2e-3, 2) and note == ""
    d, note = resolve_training(DetectConfig(), set(), 9_500, (96, 96), reference_hw=(96, 96))
    assert (d.batch_size, d.lr, d.epochs) == (32, 3e-3, 12) and note == ""


@pytest.mark.parametrize("n", [54, 200, 1_294, 1_800, 5_000])
def test_small_data_gets_a_small_batch_and_enough_steps(n):
    cfg, note = resolve_training(ClassifyConfig(), set(), n, (28, 28))
    steps_per_epoch = n // cfg.batch_size
    assert MIN_BATCH <= cfg.batch_size < 256
    assert steps_per_epoch >= min(STEPS_PER_EPOCH, n // MIN_BATCH)
    assert steps_per_epoch * cfg.epochs >= MIN_STEPS and cfg.epochs >= 20
    assert cfg.lr == pytest.approx(0.4 * cfg.batch_size / 256, rel=1e-3)  # linear rule for SGD
    assert note.startswith(f"defaults for {n} training images of 28x28") and "batch_size" in note


def test_digits_resolve_to_the_setting_known_to_work():
    cfg, _ = resolve_training(ClassifyConfig(), set(), 1_294, (28, 28))
    assert (cfg.batch_size, cfg.lr) == (32, 0.05)


def test_larger_images_get_smaller_batches_and_adam_the_sqrt_rule():
    cfg, note = resolve_training(ClassifyConfig(), set(), 20_000, (64, 64))
    assert cfg.batch_size * 64 * 64 <= 256 * 28 * 28 and "larger images" in note
    g, _ = resolve_training(resolve(GenerateConfig(model="vae")), set(), 1_960, (28, 28), FAMILY_DEFAULTS["vae"])
    assert g.lr == pytest.approx(2e-3 * (g.batch_size / 128) ** 0.5, rel=1e-3)


def test_user_set_options_are_kept_and_a_set_batch_rescales_the_rate():
    cfg = ClassifyConfig(batch_size=64, epochs=3)
    out, note = resolve_training(cfg, {"batch_size", "epochs"}, 200, (28, 28))
    assert (out.batch_size, out.epochs, out.lr) == (64, 3, 0.1) and "lr 0.1" in note and "batch_size" not in note
    out, note = resolve_training(ClassifyConfig(batch_size=64, lr=0.3, epochs=3), {"batch_size", "lr", "epochs"},
                                 200, (28, 28))
    assert (out.batch_size, out.lr, out.epochs) == (64, 0.3, 3) and note == ""
    # a generator option at its "family default" value is not a user setting
    assert given_options({"epochs": 0, "ema": -1.0, "lr": 1e-3}, GenerateConfig()) == {"lr"}


def test_cli_passes_options_given_at_their_default_value():
    from typer.testing import CliRunner

    import typer
    from recgen.cli import config_command

    got = {}
    app = typer.Typer()
    app.command()(config_command(ClassifyConfig, got.update))
    assert CliRunner().invoke(app, ["--batch-size", "256", "--epochs", "3"]).exit_code == 0
    assert got == {"batch_size": 256, "epochs": 3}


def test_default_classify_train_learns_small_data_and_records_what_it_resolved(tmp_path):
    """The issue's case in small: defaults tuned for 60,000 images left 300 digits at chance."""
    r = run_cli("classify", "train", "--data", "digits", "--limit", "30", "--threads", "1", "--out", tmp_path,
                "--stem-width", "8", "--widths", "16,32", "--blocks", "0,1", timeout=300)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "classify" / "cnn-1"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    o = cfg["options"]
    assert o["batch_size"] == 16 and o["lr"] == 0.025 and o["epochs"] > 20
    assert cfg["resolved"].startswith("defaults for 270 training images") and cfg["resolved"] in r.stderr
    assert json.loads((run / "eval-test.json").read_text())["accuracy"] > 0.6  # chance is 0.1
    assert "warning" not in r.stderr


# ------------------------------------------------------------------------------------------------ warnings
def test_too_few_steps_warns_only_when_few():
    with pytest.warns(RecgenWarning, match="only 14 optimizer steps"):
        check_steps(2, 256, 1_800)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecgenWarning)
        check_steps(20, 32, 1_800)


def test_accuracy_at_chance_warns_and_a_learned_one_does_not():
    y = np.arange(1000) % 10
    with pytest.warns(RecgenWarning, match="at chance"):
        assert check_accuracy(0.1, y, "test accuracy", "train longer")
    assert not check_accuracy(0.5, y, "test accuracy", "train longer")
    # one class holding 90 % of the images: 0.9 is what always answering it gives
    skewed = np.r_[np.zeros(900, int), np.ones(100, int)]
    with pytest.warns(RecgenWarning):
        check_accuracy(0.9, skewed, "test accuracy", "")


def test_samples_at_chance_warn_only_under_a_judge_that_sees_classes():
    y = np.arange(500) % 10
    with pytest.warns(RecgenWarning, match="recognizability of its samples"):
        assert check_samples(0.1, y, 0.9, y, "runs/generate/gan-1")
    assert not check_samples(0.8, y, 0.9, y, "g")
    assert not check_samples(0.1, y, 0.1, y, "g")  # the judge itself is at chance: no verdict on the samples


def test_train_warns_when_the_model_stays_at_chance(tmp_path):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        classify.train(data="digits", limit=10, epochs=1, lr=1e-9, out=str(tmp_path), **TINY)
    msgs = recgen_warnings(rec)
    assert any("test accuracy" in m and "at chance" in m for m in msgs), msgs
    assert any("optimizer steps" in m for m in msgs), msgs


def test_prompt_far_from_every_description_warns_with_the_nearest_classes():
    from recgen.data.sources import FASHION_CLASSES
    from recgen.generate.condition import embed_texts, phrase_table
    from recgen.sanity import check_prompt

    table = phrase_table(FASHION_CLASSES)
    with pytest.warns(RecgenWarning, match=r"'a picture of a cat' is far from every training description.*nearest"):
        assert check_prompt("a picture of a cat", embed_texts(["a picture of a cat"])[0], table, FASHION_CLASSES)
    for near in ("a leather ankle boot", "running shoes", "a warm winter jacket"):
        assert not check_prompt(near, embed_texts([near])[0], table, FASHION_CLASSES), near


@pytest.fixture(scope="module")
def fashion_stats():
    from recgen.data import load_dataset

    ds = load_dataset("fashion-mnist", "test")
    return ds, training_stats(ds.x)


def test_a_colour_photo_is_unlike_fashion_mnist_and_its_own_images_are_not(fashion_stats):
    ds, stats = fashion_stats
    photo = skimage.data.chelsea()  # (300, 451, 3) colour photograph
    gray28 = np.asarray(Image.fromarray(photo).convert("L").resize((28, 28)))[..., None]
    why = unlike(photo, (1, 28, 28), stats, gray28)
    assert any("colour" in w for w in why) and any("451x300" in w for w in why)
    assert any("border" in w for w in why)  # the photograph has no dark background
    flagged = [i for i in range(200) if unlike(ds.x[i], (1, 28, 28), stats, ds.x[i])]
    assert len(flagged) <= 4  # the range leaves out 1 % of the training images; most real ones pass
    with pytest.warns(RecgenWarning, match="cat.jpg is unlike the images"):
        check_inputs(["cat.jpg"], [photo], gray28[None], (1, 28, 28), stats, "runs/classify/cnn-1")


def test_restorer_inputs_are_checked_against_its_training_images(fashion_stats):
    ds, stats = fashion_stats
    model = SimpleNamespace(input_shape=(1, 28, 28), run=SimpleNamespace(config={"input_stats": stats}),
                            path=Path("runs/restore/denoise-1"))
    with pytest.warns(RecgenWarning, match="photo is unlike the images runs/restore/denoise-1"):
        check_restore_inputs(model, [("photo", skimage.data.coffee())])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecgenWarning)
        check_restore_inputs(model, [("shirt", ds.x[0])])


def test_predict_warns_on_a_colour_photo_not_on_a_dataset_image(tmp_path):
    run = classify.train(data="fashion-mnist", limit=5, epochs=1, max_steps=1, val_fraction=0.0, tta="none",
                         out=str(tmp_path), **TINY)
    from recgen.data import load_dataset

    shirt, cat = tmp_path / "shirt.png", tmp_path / "cat.png"
    Image.fromarray(load_dataset("fashion-mnist", "test").x[0, ..., 0]).save(shirt)
    Image.fromarray(skimage.data.chelsea()).save(cat)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        run.predict([str(shirt), str(cat)])
    msgs = recgen_warnings(rec)
    assert len(msgs) == 1 and "cat.png" in msgs[0] and "colour" in msgs[0], msgs
    r = cli("classify", "predict", run.path, cat)  # the CLI says it on one line
    assert r.exit_code == 0 and f"warning: {cat} is unlike" in r.output


def test_sampling_with_a_far_prompt_warns_through_the_run():
    import torch

    from recgen.data.sources import FASHION_CLASSES
    from recgen.generate.run import GeneratorRun

    run = GeneratorRun.__new__(GeneratorRun)  # only what conditioning reads: no weights needed
    run.arch, run.classes, run.device = SimpleNamespace(cond="text"), FASHION_CLASSES, torch.device("cpu")
    run._modules = {}  # no text head: the recorded label falls back to the nearest class centroid
    with pytest.warns(RecgenWarning, match="nearest classes"):
        emb, labels = run._condition(4, prompt="a picture of a cat")
    assert emb.shape == (4, 384) and len(labels) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecgenWarning)
        run._condition(2, prompt="a leather ankle boot")
