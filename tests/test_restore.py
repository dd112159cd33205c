"""Restoration: tiny restorers and a tiny diffusion run on digits; metrics that can fail; baselines; bad input."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import run_cli
from recgen import generate, restore
from recgen.data import load_dataset
from recgen.errors import RecgenError
from recgen.restore.baselines import BASELINES, none
from recgen.restore.degrade import corrupt, downscale, draw_masks, estimate_sigma
from recgen.restore.evaluate import evaluate
from recgen.restore.metrics import PSNR_MAX, psnr, ssim

TINY = dict(data="digits", epochs=1, max_steps=40, batch_size=32, widths="8,16,16", limit=30, ema=0.0, lr=3e-3,
            threads=1)
SETTINGS = {"inpaint": {}, "denoise": {"sigma": 0.2}, "superres": {"scale": 2}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {task: restore.train(task=task, out=str(out), **TINY) for task in SETTINGS}


@pytest.fixture(scope="module")
def diffusion_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    return generate.train(model="diffusion", data="digits", base=8, epochs=1, max_steps=10, batch_size=32, limit=30,
                          out=str(out), threads=1, steps=4)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test").tensors()[0][:24]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("inputs")
    imgs = (digits[:3, 0] * 255).round().byte().numpy()
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(d / f"im{i}.png")
    Image.fromarray(np.stack([imgs[0]] * 3, -1)).save(d / "rgb.png")  # colour restored channel by channel
    np.savez(d / "batch.npz", x=imgs)
    masks = d / "masks"
    masks.mkdir()
    m = np.zeros((28, 28), np.uint8)
    m[8:18, 6:20] = 255
    Image.fromarray(m).save(masks / "box.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(masks / "empty.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(masks / "full.png")
    Image.fromarray(np.zeros((20, 28), np.uint8)).save(masks / "small.png")
    (masks / "junk.png").write_bytes(b"not an image")
    Image.fromarray(imgs[0][::2, ::2]).save(d / "small.png")  # 14x14: a diffusion run restores 28x28 only
    return d


# ------------------------------------------------------------------------------------------------- metrics
def test_identity_restoration_scores_the_maximum(digits):
    assert torch.all(psnr(digits, digits) == PSNR_MAX)
    assert torch.allclose(ssim(digits, digits), torch.ones(len(digits)), atol=1e-5)
    worse = (digits + 0.1).clamp(0, 1)
    assert psnr(worse, digits).max() < 25 and ssim(worse, digits).max() < 1


@pytest.mark.parametrize("task", list(SETTINGS))
def test_baselines_beat_doing_nothing(task, digits):
    obs = corrupt(digits, task, seed=0, **SETTINGS[task])
    floor = psnr(none(obs), digits).mean()
    for name, fn in BASELINES[task].items():
        out = fn(obs)
        assert out.shape == digits.shape
        assert psnr(out, digits).mean() > floor + 1.0, name


def test_corruptions_are_seeded_and_sized(digits):
    a, b = draw_masks(16, 28, 28, "box+strokes", 0.25, seed=3), draw_masks(16, 28, 28, "box+strokes", 0.25, seed=3)
    assert torch.equal(a, b) and a.shape == (16, 1, 28, 28)
    assert 0.2 < float(a.mean()) < 0.32  # the masked share asked for (strokes may overshoot by a few pixels)
    assert torch.equal(corrupt(digits, "denoise", 1, sigma=0.1).y, corrupt(digits, "denoise", 1, sigma=0.1).y)
    assert corrupt(digits, "superres", 0, scale=2).y.shape == (24, 1, 14, 14)
    est = estimate_sigma(corrupt(digits, "denoise", 0, sigma=0.1).y)
    assert 0.07 < float(est.median()) < 0.13


# ----------------------------------------------------------------------------------------------- restorers
@pytest.mark.parametrize("task", list(SETTINGS))
def test_restorer_trains_and_restores(task, runs, digits):
    run = runs[task]
    for f in ("config.yaml", "model.json", "metrics.csv", "report.html", "weights/best.safetensors",
              f"eval-restore-{task}.json", f"plots/restore-{task}.png"):
        assert (run.path / f).is_file(), f
    assert "val_psnr" in run.run.read_metrics()[-1]
    again = restore.load(run.path)
    obs = corrupt(digits, task, seed=0, **SETTINGS[task])
    x = again.restore(obs)
    assert x.shape == digits.shape and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, run.restore(obs))  # reload gives the same restorer
    if task == "inpaint":  # known pixels are kept exactly
        known = obs.mask.expand_as(x) == 0
        assert torch.equal(x[known], obs.y[known])
    if task == "superres":  # the output downscales back to the input (back-projection)
        assert float((downscale(x, 2) - obs.y).abs().mean()) < 0.01
    assert psnr(x, digits).mean() > psnr(none(obs), digits).mean()  # even a tiny restorer beats doing nothing


def test_training_pins_the_correction_the_projection_discards(digits):
    """Super-resolution's back-projection cancels a block-constant correction: the restored image cannot show it,
    so only the training loss's consistency term keeps it from drifting. Such an offset must leave the
    restoration alone and raise the loss."""
    from recgen.restore.restorer import Corruptions, RestorerConfig, RestoreTask, compose, net_input

    class Offset(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = torch.nn.Parameter(torch.tensor(float(c)))

        def forward(self, inp):
            return self.c.expand(len(inp), 1, *inp.shape[-2:])

    arch = RestorerConfig(task="superres", channels=1)
    x = digits[:8]
    losses, outs = [], []
    for c in (0.0, 1.0):
        net = Offset(c)
        step = RestoreTask({"model": net}, arch, Corruptions(), None, torch.device("cpu"))
        losses.append(step.training_step((x,), torch.Generator().manual_seed(0))["loss"])
        obs = Corruptions().draw("superres", x, torch.Generator().manual_seed(0))
        inp, base = net_input(arch, obs)
        outs.append(compose(obs, base, net(inp)))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)  # the offset is invisible in the restoration
    assert float(losses[1] - losses[0]) > 0.1  # and yet the training loss sees it
    losses[1].backward()
    assert float(net.c.grad) > 0  # pulling it back towards zero


def test_a_broken_restorer_scores_below_the_baseline(runs, tmp_path):
    """The metric can fail: a restorer with scrambled weights loses to non-local means and misses the target."""
    model = restore.load(runs["denoise"].path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    r = evaluate(model, "denoise", n=40, judge="none", tune=False, out=tmp_path)
    assert r["methods"]["recgen"]["psnr"] < r["methods"]["nlm"]["psnr"]
    assert r["methods"]["recgen"]["psnr"] < r["methods"]["none"]["psnr"]
    assert r["targets"]["psnr"]["reached"] is False
    assert json.loads((tmp_path / "eval-restore-denoise.json").read_text())["n"] == 40


def test_evaluate_over_seeds_with_a_judge(runs, tmp_path):
    from recgen import classify

    judge = classify.train(model="cnn", data="digits", epochs=1, batch_size=64, stem_width=8, widths="16",
                           blocks="0", limit=20, val_fraction=0.0, threads=1, out=str(tmp_path))
    r = evaluate(runs["superres"], "superres", n=30, seeds=(0, 1), judge=str(judge.path), out=tmp_path)
    assert set(r["methods"]) == {"none", "bicubic", "recgen"} and r["seeds"] == [0, 1]
    assert set(r["accuracy"]) == {"clean", "none", "bicubic", "recgen"}
    assert 0 <= r["targets"]["accuracy"]["share_of_clean"] <= 2


# ---------------------------------------------------------------------------------------------- diffusion
def test_diffusion_restoration_agrees_with_the_observation(diffusion_run, digits):
    model = restore.load(diffusion_run.path)
    obs = corrupt(digits[:6], "inpaint", seed=0, mask_kind="strokes")
    for method in ("ddnm", "repaint"):
        x = model.restore(obs, method=method, steps=6)
        known = obs.mask.expand_as(x) == 0
        assert x.shape == (6, 1, 28, 28) and torch.allclose(x[known], obs.y[known], atol=1e-6), method
    obs = corrupt(digits[:6], "superres", seed=0, scale=4)
    x = model.restore(obs, steps=4)
    assert x.shape == (6, 1, 28, 28) and float((downscale(x, 4) - obs.y).abs().mean()) < 0.02
    obs = corrupt(digits[:6], "denoise", seed=0, sigma=0.2)
    a, b = model.restore(obs, steps=3, seed=1), model.restore(obs, steps=3, seed=1)
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)


# ---------------------------------------------------------------------------------------------------- CLI
def cli(*args):
    from recgen.restore.cli import restore_app

    return CliRunner().invoke(restore_app, [str(a) for a in args])


def test_cli_restores_files_folders_and_npz(runs, inputs, tmp_path):
    r = cli("inpaint", runs["inpaint"].path, inputs / "im0.png", inputs / "rgb.png", inputs / "batch.npz",
            "--mask-kind", "strokes", "--out", tmp_path / "a", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["n"] == 5 and {"recgen", "telea", "navier-stokes"} <= set(s["mean"])
    assert (tmp_path / "a" / "grid.png").is_file() and len(list((tmp_path / "a" / "recgen").glob("*.png"))) == 5
    assert np.load(tmp_path / "a" / "restored.npz")["recgen"].shape == (5, 28, 28, 3)
    r = cli("denoise", runs["denoise"].path, inputs / "im1.png", "--sigma", "0.15", "--simulate",
            "--out", tmp_path / "b")
    assert r.exit_code == 0 and "nlm" in r.output, r.output
    r = cli("superres", runs["superres"].path, inputs / "small.png", "--out", tmp_path / "c", "--json")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "c" / "recgen" / "small.png").size == (28, 28)
    r = cli("inpaint", runs["inpaint"].path, inputs / "im2.png", "--mask", inputs / "masks" / "box.png",
            "--out", tmp_path / "d")
    assert r.exit_code == 0 and (tmp_path / "d" / "telea" / "im2.png").is_file(), r.output


@pytest.mark.parametrize("task,extra,message", [
    ("inpaint", ["--mask", "masks/small.png"], "mask is 20x28 but the image is 28x28"),
    ("inpaint", ["--mask", "masks/empty.png"], "mask is empty"),
    ("inpaint", ["--mask", "masks/full.png"], "covers the whole image"),
    ("inpaint", ["--mask", "masks/junk.png"], "not a readable image"),
    ("inpaint", ["--ratio", "1.5"], "ratio must be in (0, 1)"),
    ("denoise", ["--sigma", "-0.1"], "sigma must be a non-negative"),
    ("superres", ["--scale", "3"], "scale 3 not supported"),
    ("superres", ["--scale", "4"], "trained for x2"),
    ("denoise", ["--method", "reverse"], "needs a diffusion generator run"),
    ("denoise", ["--method", "magic"], "method must be one of"),
])
def test_cli_bad_input_is_one_line_exit_2(task, extra, message, runs, inputs):
    extra = [str(inputs / e) if e.startswith("masks/") else e for e in extra]
    r = cli(task, runs[task].path, inputs / "im0.png", "--out", inputs / "never", *extra)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and message in err, err


def test_cli_refuses_models_lacking_the_task(runs, diffusion_run, inputs, tmp_path):
    r = cli("inpaint", runs["denoise"].path, inputs / "im0.png", "--out", tmp_path)
    assert r.exit_code == 2 and "trained to denoise, not to inpaint" in r.stderr
    r = cli("superres", diffusion_run.path, inputs / "im0.png", "--method", "repaint", "--out", tmp_path)
    assert r.exit_code == 2 and "cannot superres" in r.stderr
    r = cli("inpaint", diffusion_run.path, inputs / "small.png", "--out", tmp_path)
    assert r.exit_code == 2 and "restores 28x28 inputs, got 14x14" in r.stderr
    r = cli("inpaint", diffusion_run.path, inputs / "im0.png", "--ensemble", "8", "--out", tmp_path)
    assert r.exit_code == 2 and "averaging flipped copies is for restorer runs" in r.stderr
    r = cli("eval", runs["inpaint"].path, "--task", "inpaint", "--judge", str(tmp_path / "nope"), "--n", "5")
    assert r.exit_code == 2 and "not a recgen run directory" in r.stderr
    r = cli("eval", runs["inpaint"].path)
    assert r.exit_code == 2 and "--task is required" in r.stderr
    with pytest.raises(RecgenError, match="cannot restore images"):
        restore.load(_classify_like(tmp_path))


def _classify_like(tmp_path):
    from recgen.runs import Run

    run = Run.create("classify", "x", tmp_path)
    run.write_config("classify", {})
    return run.path


def test_cli_train_and_eval_commands(tmp_path):
    r = cli("train", "--task", "superres", "--data", "digits", "--epochs", "1", "--max-steps", "5", "--limit", "10",
            "--widths", "8,8", "--val-fraction", "0", "--threads", "1", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "restore").iterdir())
    r = cli("eval", run, "--task", "superres", "--n", "20", "--seeds", "0,1", "--judge", "none", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["methods"]["bicubic"]["psnr"] > 0
    r = cli("train", "--task", "deblur", "--data", "digits", "--out", tmp_path)
    assert r.exit_code == 2 and "task must be one of" in r.stderr


def test_registered_in_the_recgen_command(runs, inputs, tmp_path):
    from recgen.cli import app

    if "restore" not in {g.name for g in app.registered_groups}:
        pytest.skip("restore_app is not registered in recgen/cli.py yet")
    p = run_cli("restore", "denoise", runs["denoise"].path, inputs / "im0.png", "--sigma", "-1", "--out", tmp_path)
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and len(p.stderr.strip().splitlines()) == 1
    p = run_cli("restore", "superres", runs["superres"].path, inputs / "small.png", "--out", tmp_path / "o")
    assert p.returncode == 0 and (tmp_path / "o" / "grid.png").is_file(), p.stderr


def test_a_restorer_that_learns_nothing_or_collapses_is_flagged(tmp_path):
    """The input's own validation PSNR is what a restorer adding nothing scores: a run trained at a negligible
    learning rate ends there and is flagged in one warning; a run that fell back to it after a good epoch (the
    collapse a loss spike can cause) is told which epoch's weights were kept."""
    from recgen.sanity import RecgenWarning, check_restorer_gain

    with pytest.warns(RecgenWarning, match="learned nothing usable") as seen:
        run = restore.train(task="superres", scale=2, out=str(tmp_path), **{**TINY, "lr": 1e-12})
    assert len([w for w in seen if issubclass(w.category, RecgenWarning) and "nothing" in str(w.message)]) == 1
    rows = run.run.read_metrics()
    assert rows[-1]["val_psnr"] > 0
    with pytest.warns(RecgenWarning, match=r"collapsed.*epoch 2's \(31\.00 dB\)"):
        check_restorer_gain([{"epoch": 1, "val_psnr": 30.5}, {"epoch": 2, "val_psnr": 31.0},
                             {"epoch": 3, "val_psnr": 30.0}], 30.0, "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_restorer_gain([{"epoch": 1, "val_psnr": 30.5}, {"epoch": 2, "val_psnr": 31.0}], 30.0, "run")
