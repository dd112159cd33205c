"""The augmentation loop: runs end to end, refuses (or labels) a generator that saw more real data."""

import json

import pytest

from conftest import run_cli
from recgen import generate
from recgen.errors import RecgenError
from recgen.loop.augment import run_augment

TINY = dict(data="digits", real_per_class=4, generator_model="vae", generator_steps=20, ratios="0,1", seeds=1,
            steps=20, threads=1)


def test_augment_end_to_end(tmp_path):
    s = run_augment(out=str(tmp_path), **TINY)
    assert s["label"] == "clean" and [a["ratio"] for a in s["arms"]] == [0.0, 1.0]
    assert all(0 <= a["accuracy_mean"] <= 1 and len(a["recall_mean"]) == 10 for a in s["arms"])
    assert s["arms"][0]["gain_points"] == 0.0
    run = tmp_path / "augment" / "augment-1"
    assert json.loads((run / "results.json").read_text())["arms"][1]["ratio"] == 1.0
    assert "Per-class recall" in (run / "report.html").read_text()


def test_imbalance_reports_minority_recall(tmp_path):
    s = run_augment(out=str(tmp_path), **{**TINY, "real_per_class": 10, "imbalance": 0.2, "minority": "3,8"})
    assert set(s["minority_recall_gain_points"]) == {0.0, 1.0} and "imbalance 0.2 for 3, 8" in s["setting"]
    # synthesis rebalances: only the two minority classes (2 real images each) get synthetic ones, 1 per real
    work = tmp_path / "augment" / "augment-1" / "work"
    assert sorted(p.name for p in work.glob("train-0-*.npz")) == ["train-0-84.npz", "train-0-88.npz"]


def test_leaking_generator_refused_or_labelled(tmp_path):
    gen = generate.train(model="vae", data="digits", epochs=1, max_steps=3, base=8, latent_dim=4, threads=1,
                         out=str(tmp_path))
    with pytest.raises(RecgenError, match="trained on .* real images, not on this 40-image subset"):
        run_augment(out=str(tmp_path), generator=str(gen.path), **TINY)
    s = run_augment(out=str(tmp_path), generator=str(gen.path), allow_leak=True, **TINY)
    assert s["label"].startswith("LEAKY")
    r = run_cli("augment", "--data", "digits", "--generator", gen.path, "--real-per-class", "4", "--seeds", "1",
                "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "leak" in r.stderr
