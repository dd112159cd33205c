"""Bad input on the command line: one line naming the option and what was expected, exit code 2, and nothing left
behind (no half-written run directory)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli

TINY_CNN = ["--epochs", "1", "--max-steps", "1", "--stem-width", "4", "--widths", "8", "--blocks", "0"]

BAD_TRAINING = [
    # the training loop's options, the same for every task
    ("classify", ["--epochs", "0"], "epochs must be at least 1, got 0"),
    ("classify", ["--epochs", "-1"], "epochs must be at least 1, got -1"),
    ("classify", ["--max-steps", "-1"], "max_steps must be 0 or more, got -1"),
    ("classify", ["--batch-size", "0"], "batch_size must be at least 1, got 0"),
    ("classify", ["--batch-size", "-5"], "batch_size must be at least 1, got -5"),
    ("classify", ["--lr", "-1"], "lr must be above 0, got -1.0"),
    ("classify", ["--lr", "nan"], "lr must be a finite number, got nan"),
    ("classify", ["--warmup", "5"], "warmup must be in [0, 1), got 5.0"),
    ("classify", ["--ema", "2"], "ema must be a decay in [0, 1) (0 = off), got 2.0"),
    ("classify", ["--device", "nope"], "device must be auto, cpu, cuda or cuda:N, got 'nope'"),
    ("classify", ["--threads", "-1"], "threads must be 0 or more, got -1"),
    ("classify", ["--optimizer", "nope"], "optimizer must be one of adamw, sgd, got 'nope'"),
    ("classify", ["--schedule", "nope"], "schedule must be one of onecycle, cosine, linear, constant, got 'nope'"),
    # data options
    ("classify", ["--limit", "-1"], "limit must be 0 or more, got -1"),
    ("classify", ["--val-fraction", "1"], "val_fraction must be in [0, 1), got 1.0"),
    ("classify", ["--channels", "2"], "channels must be 0 (the data's own), 1 or 3, got 2"),
    # classify's own
    ("classify", ["--label-smoothing", "2"], "label_smoothing must be in [0, 1), got 2.0"),
    ("classify", ["--dropout", "1.5"], "dropout must be in [0, 1), got 1.5"),
    ("classify", ["--stem-width", "0"], "stem_width must be at least 1, got 0"),
    ("classify", ["--widths", "a,b"], "widths: expected comma-separated integers, got 'a,b'"),
    ("classify", ["--blocks", "1,2"], "need one entry per stage"),
    ("classify", ["--widths", "32,0,128"], "widths must be channel counts >= 1"),
    ("classify", ["--model", "svm", "--features", "nope"], "unknown feature 'nope'"),
    ("classify", ["--model", "knn"], "model must be one of cnn, svm, rf, got 'knn'"),
    # generate: 0 (ema: -1) means the family's default, anything else out of range is refused
    ("generate", ["--epochs", "-1"], "epochs must be at least 1, got -1"),
    ("generate", ["--ema", "2"], "ema must be a decay in [0, 1) (0 = off), got 2.0"),
    ("generate", ["--cond-dropout", "1"], "cond_dropout must be in [0, 1), got 1.0"),
    ("generate", ["--base", "-8"], "base must be 0 or more, got -8"),
    ("generate", ["--device", "gpu0"], "device must be auto, cpu, cuda or cuda:N, got 'gpu0'"),
    # restore and detect
    ("restore", ["--lr", "0"], "lr must be above 0, got 0.0"),
    ("restore", ["--val-fraction", "-0.1"], "val_fraction must be in [0, 1), got -0.1"),
    ("detect", ["--epochs", "0"], "epochs must be at least 1, got 0"),
    ("detect", ["--widths", "8,16"], "widths and blocks need one entry per stage"),
    ("detect", ["--neck", "0"], "neck must be channel counts >= 1"),
]


@pytest.mark.parametrize("task,args,message", BAD_TRAINING, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_training_option_is_refused_before_a_run_exists(tmp_path: Path, npz_file, task, args, message):
    r = cli(task, "train", "--data", npz_file, "--out", tmp_path / "runs", *args)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert message in r.output, r.output
    assert not (tmp_path / "runs").exists(), "a refused command left a run directory"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_missing_gpu_is_refused_before_a_run_exists(tmp_path: Path, npz_file):
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path / "runs", "--device", "cuda", *TINY_CNN)
    assert r.exit_code == 2 and "device 'cuda' requested but CUDA is not available" in r.output, r.output
    assert not (tmp_path / "runs").exists()


def test_no_held_out_split_trains_and_says_so(tmp_path: Path, npz_file):
    """A .npz without a test split and --val-fraction 0 leaves nothing to evaluate on: the run is kept and the
    command says it was not evaluated (it used to crash looking for eval-val.json); eval then names the problem."""
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, "--val-fraction", "0", *TINY_CNN)
    assert r.exit_code == 0, r.output
    assert "not evaluated, as the data has no test split and --val-fraction is 0" in r.output
    run = tmp_path / "classify" / "cnn-1"
    assert (run / "weights" / "best.safetensors").is_file()
    r = cli("classify", "eval", run)
    assert r.exit_code == 2 and "no test split and no validation split to evaluate on" in r.output, r.output
    r = cli("classify", "eval", run, "--split", "nope")
    assert r.exit_code == 2 and "split must be test or val, got 'nope'" in r.output, r.output


def test_damaged_runs_give_one_line_errors(tmp_path: Path, npz_file):
    """Weights swapped in from a different network, and a corrupt training state, are named, not tracebacks."""
    from PIL import Image

    for name, widths in (("a", "8"), ("b", "12")):  # b stops after a step of its 3 epochs: resumable
        r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, "--name", name, *TINY_CNN,
                "--widths", widths, "--epochs", "3")
        assert r.exit_code == 0, r.output
    a, b = tmp_path / "classify" / "a-1", tmp_path / "classify" / "b-1"
    (a / "weights" / "best.safetensors").write_bytes((b / "weights" / "best.safetensors").read_bytes())
    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    r = cli("classify", "predict", a, tmp_path / "x.png")
    assert r.exit_code == 2, r.output
    assert "best.safetensors: these weights do not fit the network model.json describes" in r.output
    assert r.output.count("\n") == 1
    (b / "state" / "last.json").write_text("{not json")
    r = cli("classify", "train", "--resume", b)
    assert r.exit_code == 2 and "last.json: unreadable training state (JSONDecodeError" in r.output, r.output


@pytest.mark.parametrize("args,message", [
    (["--minority", "nope", "--imbalance", "0.1"], "unknown class 'nope'"),
    (["--generator", "/no/such/run"], "/no/such/run: not a recgen run directory"),
    (["--seeds", "0"], "seeds must be at least 1, got 0"),
    (["--imbalance", "1"], "imbalance must be in [0, 1), got 1.0"),
    (["--steps", "0"], "steps must be at least 1, got 0"),
])
def test_bad_augment_option_is_refused_before_a_run_exists(tmp_path: Path, npz_with_test, args, message):
    r = cli("augment", "--data", npz_with_test, "--out", tmp_path / "runs", *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def npz_with_test(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    p = tmp_path / "split.npz"
    np.savez(p, x=rng.integers(0, 255, (40, 16, 16), dtype=np.uint8), y=np.arange(40) % 4)
    np.savez(tmp_path / "split-test.npz", x=rng.integers(0, 255, (20, 16, 16), dtype=np.uint8), y=np.arange(20) % 4)
    return p


def test_unwritable_places_are_named(tmp_path: Path, npz_file):
    (tmp_path / "file").write_text("in the way")
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path / "file" / "runs", *TINY_CNN)
    assert r.exit_code == 2 and r.output.startswith("error: ") and "file" in r.output, r.output
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path / "runs", "--name", "a/b", *TINY_CNN)
    assert r.exit_code == 2 and "name must be a folder name without /" in r.output, r.output


@pytest.mark.parametrize("arrays,message", [
    (dict(x=np.zeros((4, 8, 8)), y=np.array(["a", "b", "a", "b"])), "'y' must be one integer class index per image"),
    (dict(x=np.zeros((4, 8, 8)), y=np.array([0, 1.5, 0, 1])), "'y' must be one integer class index per image"),
    (dict(x=np.zeros((4, 8, 8)), y=np.zeros((4, 2))), "shape (N,); got float64 (4, 2)"),
    (dict(x=np.full((4, 8, 8), np.nan), y=np.arange(4)), "'x' holds NaN or infinite pixel values"),
    (dict(x=np.zeros((4, 64)), y=np.arange(4)), "'x' must be numeric images shaped (N, H, W)"),
    (dict(x=np.zeros((4, 8, 8)), y=np.array([0, 1, -1, 1])), "labels in 'y' must be >= 0; found -1 to 1"),
    (dict(x=np.zeros((4, 8, 8)), y=np.arange(4), classes=np.array(["a", "b"])), "below 2 (the names in 'classes')"),
])
def test_bad_npz_contents_are_named(tmp_path: Path, arrays, message):
    from recgen.data import load_dataset
    from recgen.errors import RecgenError

    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(RecgenError, match=re.escape(message)):
        load_dataset(str(tmp_path / "bad.npz"))


def test_a_file_that_is_not_an_npz_is_named(tmp_path: Path):
    (tmp_path / "fake.npz").write_text("not a zip archive")
    r = cli("data", "show", tmp_path / "fake.npz")
    assert r.exit_code == 2 and "fake.npz: unreadable .npz" in r.output, r.output


def test_predict_inputs_and_topk(tmp_path: Path, npz_file):
    from PIL import Image

    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, *TINY_CNN)
    assert r.exit_code == 0, r.output
    run = tmp_path / "classify" / "cnn-1"
    (tmp_path / "empty").mkdir()
    r = cli("classify", "predict", run, tmp_path / "empty")
    assert r.exit_code == 2 and "empty: no images in this folder" in r.output, r.output
    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    r = cli("classify", "predict", run, tmp_path / "x.png", "--topk", "0")
    assert r.exit_code == 2 and "topk must be at least 1, got 0" in r.output, r.output
    r = cli("classify", "predict", run, tmp_path / "x.png", "--topk", "99", "--json")  # all 4 classes, ranked
    assert r.exit_code == 0 and len(json.loads(r.stdout)[0]["top"]) == 4, r.output


def test_samples_into_a_folder(tmp_path: Path):
    from recgen.generate import save_samples

    paths = save_samples(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1]), f"{tmp_path / 'grids'}/", ["a", "b"])
    assert paths["grid"] == str(tmp_path / "grids" / "samples.png") and Path(paths["npz"]).is_file()
