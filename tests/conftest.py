import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # two xdist workers on two cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

from PIL import Image  # noqa: E402


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `recgen ARGS` as a subprocess, as a user would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.run([sys.executable, "-m", "recgen", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def cli(*args):
    """The `recgen` command in-process (no interpreter start-up): for the cheaper CLI checks."""
    from typer.testing import CliRunner

    from recgen.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes of small PNG/JPEG/BMP images of mixed sizes and modes, plus one junk file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    for c, name in enumerate(["circle", "square", "noise"]):
        d = root / name
        d.mkdir(parents=True)
        for i in range(6):
            size = 20 + 4 * i
            arr = rng.integers(0, 255, (size, size + 3, 3), dtype=np.uint8)
            arr[..., c] = 255
            im = Image.fromarray(arr)
            if i % 2:
                im = im.convert("L")
            im.save(d / f"{i}.{['png', 'jpg', 'bmp'][i % 3]}")
    (root / "square" / "broken.png").write_bytes(b"not an image at all")
    return root


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    p = tmp_path / "toy.npz"
    np.savez(p, x=rng.integers(0, 255, (40, 16, 16), dtype=np.uint8), y=np.arange(40) % 4)
    return p


@pytest.fixture(scope="module")
def tiny_cnn_run(tmp_path_factory) -> Path:
    """A CNN classify run trained for one step on 40 random 16x16 grey images of 4 classes."""
    out = tmp_path_factory.mktemp("cnn")
    np.savez(out / "toy.npz", x=np.random.default_rng(1).integers(0, 255, (40, 16, 16), dtype=np.uint8),
             y=np.arange(40) % 4)
    r = cli("classify", "train", "--data", out / "toy.npz", "--out", out, "--epochs", "1", "--max-steps", "1",
            "--stem-width", "4", "--widths", "8", "--blocks", "0", "--threads", "1")
    assert r.exit_code == 0, r.output
    return out / "classify" / "cnn-1"
