"""Pixels are never silently wrong, and reading is bounded (#36): high bit depths are scaled, transparency is
composited over the documented white background, non-finite weights are refused on load, images above a
command's pixel budget are refused from their header before decoding, and long reads show progress."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from PIL import Image

from recgen import progress
from recgen.data import read_image, read_images
from recgen.data import sources as S
from recgen.data.dataset import pixels_uint8
from recgen.errors import RecgenError

RAMP = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path):
    Image.fromarray(RAMP).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    got = read_image(tmp_path / "g16.png")[..., 0]
    assert got.dtype == np.uint8 and (got == 255).mean() < 0.01, (got == 255).mean()  # was 99 % white
    assert np.abs(got.astype(int) - np.rint(RAMP / 257)).max() == 0


def test_16_bit_arrays_are_scaled(tmp_path: Path):
    assert np.array_equal(pixels_uint8(RAMP), np.rint(RAMP / 257).astype(np.uint8))
    np.savez(tmp_path / "d.npz", x=np.stack([RAMP] * 4), y=np.arange(4) % 2)
    from recgen.data import load_dataset

    assert load_dataset(str(tmp_path / "d.npz")).x.max() == 255
    assert (load_dataset(str(tmp_path / "d.npz")).x == 255).mean() < 0.01


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_over_white(tmp_path: Path, mode: str):
    """A transparent pixel shows the background (white), not the colour stored under it; an opaque one its own."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (200, 0, 0)  # red hidden under full transparency
    rgba[:4, :, :3] = (0, 0, 255)
    rgba[:4, :, 3] = 255  # the top half opaque blue
    im = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    if mode == "P":  # palette entry 0 (red) marked transparent
        im = Image.fromarray((rgba[..., 3] > 0).astype(np.uint8), "P")
        im.putpalette([200, 0, 0, 0, 0, 255])
        im.save(tmp_path / "a.png", transparency=0)
    else:
        im.save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png").astype(int)
    assert (got[4:] == 255).all(), got[4:, 0]  # white page under the transparent half
    opaque = got[:4].reshape(-1, got.shape[-1])
    want = [29] if mode == "LA" else [0, 0, 255]  # grey: BT.601 luma of blue
    assert np.abs(opaque - want).max() <= 1, opaque[0]
    assert got.shape[-1] == (1 if mode == "LA" else 3)


def test_non_finite_weights_are_refused_on_load(tiny_cnn_run: Path, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    run = Path(shutil.copytree(tiny_cnn_run, tmp_path / "nan"))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    for name in ("best", "last"):
        p = run / "weights" / f"{name}.safetensors"
        if p.is_file():
            w = load_file(p)
            k = next(k for k, v in w.items() if v.is_floating_point() and v.ndim > 1)
            w[k][0] = float("nan")
            save_file(w, p)
    r = cli("classify", "predict", run, tmp_path / "a.png", "--json")
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output  # was: probabilities "nan", exit 0
    assert "hold NaN or infinite values" in r.output and "best.safetensors" in r.output, r.output


def test_huge_canvas_is_refused_from_the_header(tmp_path: Path):
    """A 6300x6300 PNG is a few KB on disk; restoring it took over 15 GB. Refused before decoding, quickly."""
    import resource
    import time

    Image.new("L", (6300, 6300)).save(tmp_path / "huge.png")
    t0, peak0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(S.ImageTooLarge, match=r"6300x6300 = 39,690,000 pixels, above the limit of 2,097,152"):
        read_image(tmp_path / "huge.png", max_pixels=2 ** 21)
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0 < 30_000  # KB: nothing decoded
    # in a folder it is not skipped as "unreadable": the budget is named
    with pytest.raises(S.ImageTooLarge):
        read_images([str(tmp_path)], read=lambda f: [(str(f), read_image(f, 2 ** 21))])


def test_restore_refuses_above_its_budget_and_cuts_batches(tmp_path: Path):
    from recgen import restore

    run = restore.train(task="inpaint", data="digits", epochs=1, max_steps=2, batch_size=16, widths="8,8,8",
                        limit=30, out=str(tmp_path / "runs"), threads=1)
    Image.new("L", (6300, 6300)).save(tmp_path / "huge.png")
    r = cli("restore", "inpaint", run.path, tmp_path / "huge.png", "--out", tmp_path / "o",
            "--max-pixels", 2 ** 21)
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "huge.png: refused, image too large: 6300x6300" in r.output and "--max-pixels" in r.output, r.output
    assert not (tmp_path / "o").exists()
    # superres counts the output's pixels: 40x40 at scale 2 is 6400 > 5000
    small = tmp_path / "small"
    small.mkdir()
    for i in range(5):
        Image.fromarray(np.full((40, 40), 40 * i, np.uint8)).save(small / f"{i}.png")
    # a budget of two images per batch: five images in three batches, all restored
    calls, restore_one = [], run.restore
    run.restore = lambda obs, **kw: calls.append(len(obs.y)) or restore_one(obs, **kw)
    s = restore.restore_files(run, "inpaint", [str(small)], tmp_path / "o2", max_pixels=2 * 40 * 40,
                              baselines=False)
    assert calls == [2, 2, 1] and s["n"] == 5 and len(s["images"]["recgen"]) == 5
    with pytest.raises(RecgenError, match="--max-pixels"):
        restore.restore_files(run, "inpaint", [str(small / "0.png")], tmp_path / "o3", max_pixels=1000)


def test_large_folders_show_progress(tmp_path: Path, monkeypatch, capsys):
    for i in range(S.PROGRESS_FROM):
        Image.fromarray(np.full((4, 4), i % 256, np.uint8)).save(tmp_path / f"{i:03d}.png")
    monkeypatch.setattr(progress, "EVERY", 1e-9)  # a line per file instead of one every few seconds
    names, images = read_images([str(tmp_path)])
    err = capsys.readouterr().err
    assert len(images) == S.PROGRESS_FROM
    assert f"reading images: {S.PROGRESS_FROM} files ..." in err and "1/200 files" in err, err[-300:]
    assert f"{S.PROGRESS_FROM}/{S.PROGRESS_FROM} files" in err and "reading images: done in" in err, err[-300:]
