"""Property-based fuzzing of every reader of user files and a few CLI options (#36): whatever the bytes or values,
the outcome is success or a RecgenError (one line, exit 2 on the CLI), never another exception, and a refused
command leaves nothing behind. Small budgets keep the whole file within `make test`'s time."""

import gzip
import io
import json
import pickle
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from recgen.data import load_dataset, read_image  # noqa: E402
from recgen.data.sources import load_cifar_dir, load_idx_dir  # noqa: E402
from recgen.errors import RecgenError  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def outcome(fn, *args, **kwargs):
    """Run a reader: a result or a RecgenError are both fine; any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except RecgenError as e:
        assert "\n" not in str(e), f"a multi-line error: {e}"
        return e


# ------------------------------------------------------------------------------------------------ raw material
DTYPES = ["uint8", "uint16", "int8", "int64", "float32", "float64", "bool", "complex64", "<U2", "S3"]
SIDES = st.sampled_from([0, 1, 2, 3, 5, 16])
VALUES = st.sampled_from([0.0, 0.5, 1.0, 255.0, 256.0, 65535.0, -1.0, 1e30, float("nan"), float("inf")])


@st.composite
def arrays(draw, max_dims: int = 4):
    shape = tuple(draw(st.lists(SIDES, max_size=max_dims)))
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(VALUES)
    with np.errstate(all="ignore"):
        if dtype[0] in "<S":
            return np.full(shape, "a", dtype=dtype)
        try:
            return np.full(shape, fill).astype(dtype)
        except (OverflowError, ValueError):
            return np.zeros(shape, dtype=dtype)


def mutate(data: bytes, cuts: list[tuple[int, int]], truncate: int | None) -> bytes:
    """Overwrite bytes at (position, value) pairs and optionally cut the tail off."""
    b = bytearray(data)
    for pos, val in cuts:
        if b:
            b[pos % len(b)] = val
    return bytes(b[:truncate] if truncate is not None else b)


EDITS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
TRUNC = st.none() | st.integers(0, 400)


def image_bytes(mode: str, w: int, h: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    if mode == "I;16":
        im = Image.fromarray(np.full((h, w), 40000, np.uint16))
    else:
        im = Image.new(mode, (w, h))
    im.save(buf, format=fmt)
    return buf.getvalue()


@FUZZ
@given(mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F"]),
       fmt=st.sampled_from(["PNG", "TIFF", "BMP"]), w=st.integers(1, 40), h=st.integers(1, 40), edits=EDITS,
       trunc=TRUNC)
def test_image_files(mode, fmt, w, h, edits, trunc):
    try:
        raw = image_bytes(mode, w, h, fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot store
        return
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"x.{fmt.lower()}"
        p.write_bytes(mutate(raw, edits, trunc))
        r = outcome(read_image, p)
        if isinstance(r, np.ndarray):
            assert r.dtype == np.uint8 and r.ndim == 3 and r.shape[-1] in (1, 3) and min(r.shape[:2]) > 0


@FUZZ
@given(x=arrays(), y=arrays(max_dims=2), classes=st.none() | arrays(max_dims=1), edits=EDITS, trunc=TRUNC,
       damage=st.booleans())
def test_npz(x, y, classes, edits, trunc, damage):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "d.npz"
        np.savez(p, x=x, y=y, **({} if classes is None else {"classes": classes}))
        if damage:
            p.write_bytes(mutate(p.read_bytes(), edits, trunc))
        r = outcome(load_dataset, str(p))
        if not isinstance(r, RecgenError):
            assert r.x.dtype == np.uint8 and len(r.x) == len(r.y) > 0 and r.y.max() < r.num_classes


@FUZZ
@given(dims=st.lists(st.sampled_from([0, 1, 2, 3, 28, 2 ** 16, 2 ** 31, 2 ** 32 - 1]), max_size=4),
       payload=st.integers(0, 64), label_dims=st.lists(st.sampled_from([0, 1, 2, 3, 2 ** 32 - 1]), max_size=2),
       labels=st.binary(max_size=8), gz=st.booleans(), magic=st.sampled_from([8, 8, 8, 9, 13]))
def test_idx(dims, payload, label_dims, labels, gz, magic):
    with tempfile.TemporaryDirectory() as d:
        opener, suffix = (gzip.open, ".gz") if gz else (open, "")
        with opener(Path(d) / f"train-images-idx3-ubyte{suffix}", "wb") as f:
            f.write(bytes([0, 0, magic, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + b"\x07" * payload)
        with opener(Path(d) / f"train-labels-idx1-ubyte{suffix}", "wb") as f:
            f.write(bytes([0, 0, 8, len(label_dims)]) + struct.pack(f">{len(label_dims)}I", *label_dims) + labels)
        outcome(load_idx_dir, Path(d), "train", None, "idx")


CIFAR_VALUES = st.recursive(
    st.none() | st.integers(-2, 2 ** 40) | st.binary(max_size=4) | arrays(max_dims=2).map(lambda a: a),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([b"data", b"labels", b"x"]), inner,
                                                                 max_size=3), max_leaves=6)


@FUZZ
@given(obj=CIFAR_VALUES | st.fixed_dictionaries({b"data": arrays(max_dims=2), b"labels": CIFAR_VALUES}),
       raw=st.none() | st.binary(max_size=64), meta=st.none() | CIFAR_VALUES)
def test_cifar_batches(obj, raw, meta):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "data_batch_1").write_bytes(raw if raw is not None else pickle.dumps(obj))
        if meta is not None:
            (Path(d) / "batches.meta").write_bytes(pickle.dumps(meta))
        outcome(load_cifar_dir, Path(d), "train", "cifar")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 2 ** 70) | st.floats() | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                   max_size=3), max_leaves=8)


@st.composite
def coco_docs(draw):
    """Mostly well-shaped COCO with values drawn from anything JSON can hold."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON)
    image = st.fixed_dictionaries({"id": st.integers(0, 3) | JSON, "file_name": st.sampled_from(["a.png", "b.png",
                                                                                                   "../a.png"]) | JSON,
                                   "width": st.integers(0, 40) | JSON, "height": st.integers(0, 40) | JSON})
    box = st.lists(st.floats(-5, 50) | JSON, min_size=3, max_size=5)
    ann = st.fixed_dictionaries({"id": st.integers(0, 9) | JSON, "image_id": st.integers(0, 3) | JSON,
                                 "category_id": st.integers(0, 2) | JSON, "bbox": box | JSON})
    cat = st.fixed_dictionaries({"id": st.integers(0, 2) | JSON, "name": st.text(max_size=3) | JSON})
    return {"images": draw(st.lists(image, max_size=3)), "annotations": draw(st.lists(ann, max_size=4)),
            "categories": draw(st.lists(cat, max_size=3))}


@FUZZ
@given(doc=coco_docs(), bad=st.sampled_from(["refuse", "skip"]))
def test_coco_json(doc, bad):
    import warnings

    from recgen.detect.coco import read_coco

    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(Path(d) / "a.png")
        (Path(d) / "b.png").write_bytes(b"junk")
        p = Path(d) / "ann.json"
        p.write_text(json.dumps(doc))
        outcome(read_coco, p, 32, bad=bad)


# -------------------------------------------------------------------------------- run files: config and model
YAML_TEXT = st.sampled_from(["task: !!python/object/apply:os.system ['true']\n", "options: [1, 2]\n", "- 1\n",
                             "options: {epochs: x}\n", "options: {nope: 1}\n", ":\n  - {\n", "\xff", ""])


def _edited(src: Path, d: str) -> Path:
    return Path(shutil.copytree(src, Path(d) / "run"))


def _use(run: Path):
    from recgen import classify

    m = classify.load(str(run))
    m.predict(np.zeros((1, 16, 16, 1), np.uint8))
    return m


@FUZZ
@given(options=st.dictionaries(st.sampled_from(["epochs", "widths", "model", "channels", "seed", "tta", "nope",
                                                "size", "device", "blocks", "stem_width"]), JSON, max_size=3),
       text=st.none() | YAML_TEXT)
def test_config_yaml(tiny_cnn_run, options, text):
    with tempfile.TemporaryDirectory() as d:
        run = _edited(tiny_cnn_run, d)
        if text is not None:
            (run / "config.yaml").write_text(text, errors="surrogateescape")
        else:
            doc = yaml.safe_load((run / "config.yaml").read_text())
            doc["options"].update(options)
            (run / "config.yaml").write_text(yaml.safe_dump(doc))
        outcome(_use, run)


@FUZZ
@given(args=st.dictionaries(st.sampled_from(["widths", "blocks", "stem_width", "num_classes", "in_channels",
                                             "dropout", "nope"]), JSON, max_size=3), whole=st.none() | JSON,
       family=st.sampled_from(["cnn", "svm", "nope", 3]))
def test_model_json(tiny_cnn_run, args, whole, family):
    with tempfile.TemporaryDirectory() as d:
        run = _edited(tiny_cnn_run, d)
        info = json.loads((run / "model.json").read_text())
        if whole is not None:
            info = whole
        else:
            info["args"].update(args)
            info["family"] = family
        (run / "model.json").write_text(json.dumps(info))
        outcome(_use, run)


# ------------------------------------------------------------------------------------------------ CLI options
OPTION_VALUES = st.sampled_from(["0", "-1", "1", "3", "1e9", "nan", "inf", "x", "", "0.5", "-0.0", "99999999999999999999"])


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def recgen_main(*args) -> tuple[int, str, str]:
    """`recgen ARGS` in-process through the real entry point (usage errors formatted as one line there)."""
    import contextlib
    import sys

    from recgen.cli import main

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["recgen", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


@FUZZ
@given(option=st.sampled_from(["--topk", "--tta", "--out"]), value=OPTION_VALUES)
def test_classify_predict_options(tiny_cnn_run, tmp_path, option, value):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    before = _files(tiny_cnn_run)
    code, out, err = recgen_main("classify", "predict", tiny_cnn_run, tmp_path / "a.png", "--json", option, value)
    assert code in (0, 2), (code, out, err)
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert _files(tiny_cnn_run) == before, "a refused command left files behind"


@FUZZ
@given(option=st.sampled_from(["--epochs", "--batch-size", "--lr", "--limit", "--val-fraction", "--size",
                               "--channels", "--widths", "--seed", "--name", "--data"]), value=OPTION_VALUES)
def test_classify_train_options(tmp_path, option, value):
    """A refused option leaves nothing in the run root: no new file or folder."""
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 16, 16), np.uint8), y=np.arange(4) % 2)
    root = tmp_path / "runs"
    root.mkdir(exist_ok=True)
    before = _files(root)
    # --device nope is refused at the latest, before a run exists: every other check comes first or not at all
    code, out, err = recgen_main("classify", "train", "--data", tmp_path / "d.npz", "--out", root,
                                 "--val-fraction", "0.5", "--device", "nope", option, value)
    assert code == 2, (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert _files(root) == before, "a refused command left files behind"
