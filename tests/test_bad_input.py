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
    ("classify", ["--seed", "-1"], "seed must be 0 or more, got -1"),
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
    r = cli("classify", "train", "--resume", b)  # no longer the file the checkpoint's manifest committed
    assert r.exit_code == 2 and "last.json: missing or changed since checkpoint" in r.output, r.output
    (b / "state" / "checkpoint.json").unlink()  # as a run from before manifests: the state itself is read
    r = cli("classify", "train", "--resume", b)
    assert r.exit_code == 2 and "last.json: unreadable training state (JSONDecodeError" in r.output, r.output


@pytest.mark.parametrize("args,message", [
    (["--minority", "nope", "--imbalance", "0.1"], "unknown class 'nope'"),
    (["--generator", "/no/such/run"], "/no/such/run: not a recgen run directory"),
    (["--seeds", "0"], "seeds must be at least 1, got 0"),
    (["--imbalance", "1"], "imbalance must be in [0, 1), got 1.0"),
    (["--steps", "0"], "steps must be at least 1, got 0"),
    (["--val-per-class", "-1"], "val_per_class must be"),
    ([], "val_per_class: class '0' has 10 training images, all in the real subset"),  # nothing left to choose on
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


# ------------------------------------------------------------------------------------ trained runs, bad requests
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A VAE, a diffusion model and a denoiser, each trained a step or two on digits: what the checks need."""
    from recgen import generate, restore

    out = tmp_path_factory.mktemp("tiny")
    common = dict(data="digits", epochs=1, limit=20, val_fraction=0.1, out=str(out), threads=1)
    return {"vae": generate.train(model="vae", max_steps=1, base=8, **common).path,
            "diffusion": generate.train(model="diffusion", max_steps=1, base=8, steps=2, **common).path,
            "denoise": restore.train(task="denoise", max_steps=2, widths="8,8,8", **common).path,
            "root": out}


@pytest.mark.parametrize("args,message", [
    (["generate", "sample", "{diffusion}", "--sampler", "ddim", "--steps", "1001"],
     "steps must be at most the 1000 timesteps this model trained with, got 1001"),
    (["generate", "sample", "{diffusion}", "--guidance", "nan"], "guidance must be a finite number, got nan"),
    (["generate", "sample", "{diffusion}", "--seed", "-1"], "seed must be 0 or more, got -1"),
    (["generate", "sample", "{vae}", "--temperature", "nan"], "temperature must be a finite number, got nan"),
    (["generate", "sample", "{vae}", "--temperature", "0"], "temperature must be above 0, got 0.0"),
    (["generate", "sample", "{vae}", "--n", "100001"], "n: at most 100,000 images a call"),
    (["generate", "interpolate", "{vae}", "--n", "5000"], "n must be 2 to 1000 frames, got 5000"),
    (["restore", "denoise", "{denoise}", "{tiny_png}"], "images must be at least 11x11 pixels"),
    (["restore", "denoise", "{denoise}", "{png}", "--seed", "-1"], "seed must be 0 or more, got -1"),
    (["restore", "inpaint", "{diffusion}", "{png}", "--steps", "-3"],
     "steps must be 0 (the method's default) to 1000, got -3"),
    (["detect", "scenes", "--data", "digits", "--scene-seed", "-1", "--out", "{root}/scenes"],
     "scene_seed must be 0 or more, got -1"),
])
def test_bad_requests_to_trained_runs(tiny, tmp_path: Path, args, message):
    from PIL import Image

    Image.new("L", (5, 5)).save(tmp_path / "tiny.png")
    Image.new("L", (16, 16)).save(tmp_path / "ok.png")
    paths = {**{k: str(v) for k, v in tiny.items()}, "tiny_png": tmp_path / "tiny.png", "png": tmp_path / "ok.png"}
    r = cli(*[a.format(**paths) for a in args], *(["--out", tmp_path / "o"] if args[0] == "restore" else []))
    assert r.exit_code == 2, r.output
    assert message in r.output and r.output.count("\n") == 1, r.output


def test_many_samples_are_drawn_in_batches(tiny):
    from recgen import generate
    from recgen.generate.run import SAMPLE_BATCH

    vae = generate.load(tiny["vae"])
    x, y = vae.sample(SAMPLE_BATCH + 5, seed=3)
    assert x.shape[0] == len(y) == SAMPLE_BATCH + 5
    assert np.array_equal(x, vae.sample(SAMPLE_BATCH + 5, seed=3)[0])  # still one seed, one set of images


def test_python_api_mistakes_are_named(tiny, tmp_path: Path, npz_file):
    from PIL import Image

    from recgen import classify, generate
    from recgen.errors import RecgenError

    with pytest.raises(RecgenError, match="epochs must be an integer, got 1.5"):
        classify.train(data=str(npz_file), epochs=1.5)
    with pytest.raises(RecgenError, match="option 'data': expected str, got None"):
        classify.train(data=None)
    with pytest.raises(RecgenError, match="a run is opened by its directory path"):
        classify.load(None)
    vae = generate.load(tiny["vae"])
    with pytest.raises(RecgenError, match=re.escape("z must be latent vectors shaped (N, 16), got (2, 3)")):
        vae.decode(np.zeros((2, 3)))
    with pytest.raises(RecgenError, match="images must be a numeric array"):
        vae.embed(np.zeros((2, 3)))
    with pytest.raises(RecgenError, match="n must be an integer"):
        vae.sample(n=2.5)
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, *TINY_CNN)
    assert r.exit_code == 0, r.output
    run = classify.load(tmp_path / "classify" / "cnn-1")
    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    assert run.predict(str(tmp_path / "x.png"))[0]["input"] == str(tmp_path / "x.png")  # one path, not its letters
    with pytest.raises(RecgenError, match=re.escape("images must be a numeric array (N, H, W) or (N, H, W, C)")):
        run.predict(np.zeros((16, 16)))
    with pytest.raises(RecgenError, match="N > 0"):
        run.predict(np.zeros((0, 16, 16, 1)))


def test_outputs_into_folders_and_unwritable_places(tiny, tmp_path: Path, npz_file):
    r = cli("data", "show", "digits", "--out", f"{tmp_path / 'grids'}/")
    assert r.exit_code == 0 and (tmp_path / "grids" / "digits-train-samples.png").is_file(), r.output
    (tmp_path / "file").write_text("in the way")
    r = cli("generate", "sample", tiny["vae"], "--n", "2", "--out", tmp_path / "file" / "x.png")
    assert r.exit_code == 2 and "file: a file stands where a folder is needed" in r.output, r.output
    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, *TINY_CNN)
    r = cli("export", tmp_path / "classify" / "cnn-1", "--out", f"{tmp_path / 'onnx'}/")
    assert r.exit_code == 0 and (tmp_path / "onnx" / "model.onnx").is_file(), r.output
    # the default destination is inside the run, whose own model.json the export notes once overwrote
    run = tmp_path / "classify" / "cnn-1"
    r = cli("export", run)
    assert r.exit_code == 0 and (run / "model.onnx").is_file() and (run / "model.onnx.json").is_file(), r.output
    from PIL import Image

    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    r = cli("classify", "predict", run, tmp_path / "x.png")
    assert r.exit_code == 0, r.output


def test_download_and_demo_leave_nothing_behind(tmp_path: Path):
    r = cli("data", "download", "fashion-mnist", "--url", "notaurl", "--data-dir", tmp_path / "dl")
    assert r.exit_code == 2 and "url must start with http://" in r.output, r.output
    r = cli("data", "download", "fashion-mnist", "--url", "http://127.0.0.1:9/", "--data-dir", tmp_path / "dl")
    assert r.exit_code == 2 and "download from http://127.0.0.1:9/ failed" in r.output, r.output
    assert not (tmp_path / "dl").exists()
    r = cli("demo", "--quick", "--data", "nosuch", "--out", tmp_path / "demo")
    assert r.exit_code == 2 and "nosuch" in r.output, r.output
    assert not (tmp_path / "demo").exists()


def test_bench_outside_a_checkout_is_a_user_error(tmp_path: Path):
    """An installed package has no bench/ folder: one line, nothing run or written."""
    from recgen.bench import run_benchmarks
    from recgen.errors import RecgenError

    with pytest.raises(RecgenError, match="no benchmark scripts there"):
        run_benchmarks(["cnn"], out=str(tmp_path / "runs"), root=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_detect_min_score_is_a_score():
    from recgen.config import check_option
    from recgen.errors import RecgenError

    for bad in (-1.0, 2.0, float("nan")):
        with pytest.raises(RecgenError, match="min_score must be"):
            check_option("min_score", bad, float)
    check_option("min_score", 0.3, float)



# ------------------------------------------------------------------------ malformed files: one line, exit 2 (#36)
def _one_line(r, *needles):
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    for n in needles:
        assert n in r.output, r.output


def _npy(arr: np.ndarray, shape_text: bytes | None = None) -> bytes:
    """An array's .npy bytes, its header's shape optionally replaced (a header that lies)."""
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    raw = buf.getvalue()
    return raw if shape_text is None else raw.replace(str(arr.shape).encode(), shape_text, 1)


def _npz(path: Path, **members: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for k, v in members.items():
            z.writestr(f"{k}.npy", v)
    return path


def _idx(path: Path, dims: tuple[int, ...], payload: bytes = b"") -> None:
    import struct

    path.write_bytes(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload)


@pytest.mark.parametrize("dims,message", [
    ((2 ** 16,) * 4, "declares 18446744073709551616 bytes, refusing"),  # wraps to 0 in int64
    ((2 ** 32 - 1, 2 ** 32 - 1, 2), "refusing (limit"),
    ((1000, 28, 28), "declares (1000, 28, 28) = 784000 bytes but the file holds 4"),  # more than the file holds
])
def test_idx_dimensions_that_overflow_or_exceed_the_file(tmp_path: Path, dims, message):
    _idx(tmp_path / "train-images-idx3-ubyte", dims, b"\0" * 4)
    _idx(tmp_path / "train-labels-idx1-ubyte", (4,), b"\0" * 4)
    _one_line(cli("data", "show", tmp_path), "train-images-idx3-ubyte", message)


def test_npz_headers_that_lie_are_refused_before_allocating(tmp_path: Path):
    y = _npy(np.arange(4))
    p = _npz(tmp_path / "lie.npz", x=_npy(np.zeros((4, 4, 4), np.uint8), b"(9, 4, 4)"), y=y)
    _one_line(cli("data", "show", p), "lie.npz: array 'x' declares (9, 4, 4) uint8 = 144 bytes but holds 64")
    p = _npz(tmp_path / "huge.npz", x=_npy(np.zeros((4, 4, 4), np.uint8), b"(99999, 99999, 99)"), y=y)
    _one_line(cli("data", "show", p), "huge.npz: array 'x' declares (99999, 99999, 99) uint8", "refusing (limit")


@pytest.mark.parametrize("x,y,message", [
    (np.zeros((0, 16, 16), np.float32), np.zeros(0, np.int64), "the dataset is empty"),
    (np.zeros((8, 0, 0), np.uint8), np.arange(8) % 2, "images of 0x0 pixels hold nothing"),
    (np.zeros((2, 4, 4), np.uint8), np.array([0, 10 ** 9]), "labels must lie in [0, 100000), found 0 to 1000000000"),
    (np.full((2, 4, 4), "a"), np.array([0, 1]), "'x' must be numeric images"),
])
def test_npz_contents_refused_in_one_line(tmp_path: Path, x, y, message):
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _one_line(cli("data", "show", tmp_path / "d.npz"), "d.npz", message)


def test_images_too_small_for_the_network_leave_no_run(tmp_path: Path):
    np.savez(tmp_path / "d.npz", x=np.zeros((40, 1, 1), np.uint8), y=np.arange(40) % 2)
    r = cli("classify", "train", "--data", tmp_path / "d.npz", "--out", tmp_path / "runs", *TINY_CNN)
    _one_line(r, "images of 1x1 pixels are too small for this CNN")
    np.savez(tmp_path / "d.npz", x=np.zeros((200, 3, 3), np.uint8), y=np.arange(200) % 2)
    r = cli("restore", "train", "--data", tmp_path / "d.npz", "--out", tmp_path / "runs", "--max-steps", "1")
    _one_line(r, "images must be at least 11x11 pixels to train a restorer")
    assert not (tmp_path / "runs").exists(), "a refused command left a run directory"


def test_cifar_batch_that_is_a_bare_array(tmp_path: Path):
    import pickle

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(np.zeros((2, 3072), np.uint8)))
    _one_line(cli("data", "show", tmp_path), "data_batch_1: not a CIFAR-10 python batch (expected a dict")


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_edited_model_json_and_yaml_tags_are_one_line(tiny_cnn_run: Path, tmp_path: Path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    run = _copy_run(tiny_cnn_run, tmp_path / "edited")
    info = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**info, "args": {**info["args"], "bogus": 1}}))
    _one_line(cli("classify", "predict", run, tmp_path / "a.png"), "model.json: unknown option 'bogus'")
    (run / "model.json").write_text(json.dumps({**info, "args": [1, 2]}))
    _one_line(cli("classify", "predict", run, tmp_path / "a.png"), "model.json: 'args' must be a mapping")
    (run / "model.json").write_text(json.dumps([1]))
    _one_line(cli("classify", "predict", run, tmp_path / "a.png"), "model.json: expected an object")
    run = _copy_run(tiny_cnn_run, tmp_path / "tagged")
    (run / "config.yaml").write_text("task: !!python/object/apply:os.system ['echo hi']\n")
    _one_line(cli("classify", "predict", run, tmp_path / "a.png"), "config.yaml: unreadable (could not determine")


def test_file_names_that_are_not_utf8_print_under_a_strict_locale(tiny_cnn_run: Path, tmp_path: Path):
    import os
    import subprocess
    import sys

    from PIL import Image

    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(os.path.join(folder, b"\xff.png"))
    (Path(os.fsdecode(folder)) / os.fsdecode(b"\xfe.png")).write_bytes(b"junk")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict", "OMP_NUM_THREADS": "1"}
    for target in (os.fsdecode(folder), os.fsdecode(os.path.join(folder, b"\xfe.png"))):
        p = subprocess.run([sys.executable, "-m", "recgen", "classify", "predict", str(tiny_cnn_run), target],
                           capture_output=True, env=env, timeout=300)
        out, err = p.stdout.decode(), p.stderr.decode()
        assert "Traceback" not in err, err
        if target.endswith(".png"):  # the junk file named on its own: one line, exit 2
            assert p.returncode == 2 and err.startswith("error: ") and "\\udcfe.png" in err, err
        else:
            assert p.returncode == 0 and "\\udcff.png" in out and "\\udcfe.png" in err, (out, err)


@pytest.mark.parametrize("x,message", [
    (np.full((2, 16, 16), "a"), "'x' must hold pixel numbers, got dtype <U1"),
    (np.zeros((0, 16, 16), np.float32), "'x' must be images (N, H, W[, C]) with 1 or 3 channels, got (0, 16, 16, 1)"),
])
def test_restore_refuses_arrays_that_are_not_images(tiny, tmp_path: Path, x, message):
    np.savez(tmp_path / "in.npz", x=x)
    r = cli("restore", "denoise", tiny["denoise"], tmp_path / "in.npz", "--out", tmp_path / "out")
    _one_line(r, "in.npz", message)
    assert not (tmp_path / "out").exists()
