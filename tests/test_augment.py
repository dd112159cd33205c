"""The augmentation loop: runs end to end, refuses (or labels) a generator that saw more real data."""

import json

import numpy as np
import pytest

from conftest import run_cli
from recgen import generate
from recgen.errors import RecgenError
from recgen.loop.augment import run_augment
from recgen.runs import Run

TINY = dict(data="digits", real_per_class=4, generator_model="vae", generator_steps=20, ratios="0,1", seeds=1,
            steps=20, threads=1)


def test_augment_end_to_end(tmp_path):
    s = run_augment(out=str(tmp_path), **TINY)
    assert s["label"] == "clean" and [a["ratio"] for a in s["arms"]] == [0.0, 1.0]
    assert all(0 <= a["accuracy_mean"] <= 1 and len(a["recall_mean"]) == 10 for a in s["arms"])
    assert s["arms"][0]["gain_points"] == 0.0
    assert s["arms"][1]["accuracy_per_seed"] == [round(s["arms"][1]["accuracy_mean"], 4)]  # one seed
    assert s["arms"][1]["recall_per_seed"]["0"] == [s["arms"][1]["recall_mean"]["0"]]
    # memorization of the synthetic images against the 40-image real subset, for the synthetic arm only
    assert "copy_rate" not in s["arms"][0] and 0 <= s["arms"][1]["copy_rate"] <= 1
    assert s["arms"][1]["nn_distance_ratio"] > 0
    run = tmp_path / "augment" / "augment-1"
    assert json.loads((run / "results.json").read_text())["arms"][1]["ratio"] == 1.0
    html = (run / "report.html").read_text()
    assert "Per-class recall" in html and "synthetic near-copies" in html
    # the real-only baseline gets the strongest recognizer measured at 10 real images per class by default
    assert s["recognizer"] == "20 steps, augment flip+crop+erase" and s["recognizer"] in html
    assert {Run(r).config["options"]["augment"] for r in (run / "work" / "classify").iterdir()} == {"flip+crop+erase"}
    # the best ratio is chosen on held-out real images, not on the test figures it reports
    assert s["best_chosen_on"].startswith("validation: 100 real images per class")
    assert all(0 <= a["val_accuracy_mean"] <= 1 for a in s["arms"])
    assert s["best_ratio"] == max(s["arms"], key=lambda a: a["val_accuracy_mean"])["ratio"]
    assert "validation accuracy" in html and "chosen on validation" in html


def test_validation_images_are_balanced_and_outside_the_subset():
    from recgen.data import load_dataset
    from recgen.loop.augment import AugmentConfig, real_subset, validation_set

    full = load_dataset("digits", "train")
    cfg = AugmentConfig(data="digits", real_per_class=10, imbalance=0.2, minority="3", val_per_class=50)
    for seed in (0, 1):
        subset, val = real_subset(full, cfg, seed), validation_set(full, cfg, seed)
        assert val.class_counts().tolist() == [50] * 10  # the minority class too, like the test set
        assert subset.class_counts().tolist() == [10] * 3 + [2] + [10] * 6
        assert not {im.tobytes() for im in subset.x} & {im.tobytes() for im in val.x}
        assert validation_set(full, cfg, seed).fingerprint() == val.fingerprint()  # the seed fixes it
    assert validation_set(full, AugmentConfig(data="digits", val_per_class=0), 0) is None
    with pytest.raises(RecgenError, match="val_per_class: class '0' has .* all in the real subset"):
        validation_set(full, AugmentConfig(data="digits", real_per_class=1000), 0)


def test_best_ratio_follows_the_validation_figures_not_the_test_ones():
    from recgen.loop.augment import AugmentConfig, _summarize

    def arm(test, val=None):
        return [{"accuracy": test, "recall": [test, test], "copy_rate": 0.0, "nn_distance_ratio": 1.0,
                 **({"val_accuracy": val, "val_recall": [val, val]} if val is not None else {})}]

    cfg = AugmentConfig()
    s = _summarize({0.0: arm(0.70, 0.71), 4.0: arm(0.74, 0.70), 16.0: arm(0.72, 0.73)}, ["a", "b"], False, cfg)
    assert s["best_ratio"] == 16.0 and s["best_gain_points"] == pytest.approx(2.0)
    assert s["arms"][2]["val_accuracy_per_seed"] == [0.73]  # what a one-seed run would have picked on
    assert s["arms"][2]["val_recall_per_seed"] == {"a": [0.73], "b": [0.73]}
    assert s["best_chosen_on"].startswith("validation")
    s = _summarize({0.0: arm(0.70), 4.0: arm(0.74), 16.0: arm(0.72)}, ["a", "b"], False, cfg)
    assert s["best_ratio"] == 4.0 and s["best_chosen_on"] == "the test set (no validation images)"


def test_real_only_reference_trains_no_generator(tmp_path):
    s = run_augment(out=str(tmp_path), **{**TINY, "ratios": "0"})
    assert [a["ratio"] for a in s["arms"]] == [0.0] and s["best_gain_points"] == 0.0
    assert not (tmp_path / "augment" / "augment-1" / "work" / "generate").exists()
    assert s["generator"] == "none (real only)"  # the summary and report do not name one that never trained


def test_recognizer_augment_reaches_every_recognizer(tmp_path):
    run_augment(out=str(tmp_path), **{**TINY, "ratios": "0", "seeds": 2, "recognizer_augment": "flip+erase"})
    recognizers = sorted((tmp_path / "augment" / "augment-1" / "work" / "classify").iterdir())
    assert len(recognizers) == 2 and all(Run(r).config["options"]["augment"] == "flip+erase" for r in recognizers)
    with pytest.raises(RecgenError, match="recognizer_augment: unknown 'warp'"):  # before any run folder
        run_augment(out=str(tmp_path / "bad"), **{**TINY, "recognizer_augment": "flip+warp"})
    assert not (tmp_path / "bad").exists()


def test_imbalance_reports_minority_recall(tmp_path):
    s = run_augment(out=str(tmp_path), **{**TINY, "real_per_class": 10, "imbalance": 0.2, "minority": "3,8"})
    assert set(s["minority_recall_gain_points"]) == {0.0, 1.0} and "imbalance 0.2 for 3, 8" in s["setting"]
    # only the two minority classes (2 real images each) get synthetic ones, 1 per real image; their real images are
    # repeated 5 times each, in a real-only arm of their own and under the synthetic ones
    work = tmp_path / "augment" / "augment-1" / "work"
    assert sorted(p.name for p in work.glob("train-0-*.npz")) == ["train-0-100-oversampled.npz", "train-0-104.npz",
                                                                  "train-0-84.npz"]
    balanced = np.load(work / "train-0-100-oversampled.npz")
    assert np.bincount(balanced["y"], minlength=10).tolist() == [10] * 10
    mixed = np.load(work / "train-0-104.npz")
    assert np.bincount(mixed["y"], minlength=10).tolist() == [10, 10, 10, 12, 10, 10, 10, 10, 12, 10]
    over = s["oversampled"]
    assert 0 <= over["accuracy_mean"] <= 1 and set(over["recall_mean"]) == set(map(str, range(10)))
    minority = lambda arm: (arm["recall_mean"]["3"] + arm["recall_mean"]["8"]) / 2  # noqa: E731
    assert over["minority_recall_gain_points"] == pytest.approx(100 * (minority(over) - minority(s["arms"][0])))
    assert s["over_oversampled"][1.0]["minority_recall_points"] == pytest.approx(
        100 * (minority(s["arms"][1]) - minority(over)))
    assert "minority oversampled" in (work.parent / "report.html").read_text()
    # --no-oversample: no such arm, and the synthetic images join the subset as it is (2 + 2 images of class 3)
    s = run_augment(out=str(tmp_path), **{**TINY, "real_per_class": 10, "imbalance": 0.2, "minority": "3",
                                          "oversample": False})
    assert "oversampled" not in s and "over_oversampled" not in s
    work = tmp_path / "augment" / "augment-2" / "work"
    assert sorted(p.name for p in work.glob("train-0-*.npz")) == ["train-0-92.npz", "train-0-94.npz"]


def test_generator_balance_by_default_trains_the_generator_on_the_oversampled_subset(tmp_path):
    opts = {**TINY, "real_per_class": 10, "imbalance": 0.2, "minority": "3", "ratios": "0,1"}
    run_augment(out=str(tmp_path), **opts)  # the default
    work = tmp_path / "augment" / "augment-1" / "work"
    assert not (work / "subset-0.npz").exists()
    trained_on = np.load(work / "subset-0-balanced.npz")
    assert np.bincount(trained_on["y"], minlength=10).tolist() == [10] * 10
    gen = work / "generate" / "gen-vae-1"
    assert Run(gen).config["n_train"] == 100  # the two real class-3 images, five times each
    # the same real images, so handing that generator back in is not a leak
    s = run_augment(out=str(tmp_path), generator=str(gen), **opts)
    assert s["label"] == "clean"
    # --no-generator-balance: the subset as drawn, two class-3 images among 92
    run_augment(out=str(tmp_path), generator_balance=False, **opts)
    work = tmp_path / "augment" / "augment-3" / "work"
    assert not (work / "subset-0-balanced.npz").exists()
    assert np.bincount(np.load(work / "subset-0.npz")["y"], minlength=10).tolist() == [10] * 3 + [2] + [10] * 6


def test_oversampled_repeats_each_minority_image_in_turn():
    from recgen.data import ImageSet
    from recgen.loop.augment import oversampled

    x = np.arange(7, dtype=np.uint8).reshape(7, 1, 1, 1)
    ds = ImageSet(x, np.array([0, 0, 0, 0, 1, 1, 2]), ["a", "b", "c"], "toy")
    out = oversampled(ds, [1, 2], 4)
    assert out.class_counts().tolist() == [4, 4, 4]
    assert sorted(out.x[out.y == 1].ravel().tolist()) == [4, 4, 5, 5]  # both images twice, not one four times
    assert out.x[out.y == 2].ravel().tolist() == [6, 6, 6, 6] and out.x[out.y == 0].ravel().tolist() == [0, 1, 2, 3]


def test_leaking_generator_refused_or_labelled(tmp_path):
    gen = generate.train(model="vae", data="digits", epochs=1, max_steps=3, base=8, latent_dim=4, threads=1,
                         out=str(tmp_path))
    with pytest.raises(RecgenError, match="trained on .* real images, not on this 40-image subset"):
        run_augment(out=str(tmp_path), generator=str(gen.path), **TINY)
    s = run_augment(out=str(tmp_path), generator=str(gen.path), allow_leak=True, **TINY)
    assert s["label"].startswith("LEAKY")
    with pytest.raises(RecgenError, match="cannot sample with classifier-free guidance"):  # a handed VAE
        run_augment(out=str(tmp_path), generator=str(gen.path), allow_leak=True, guidance=2.0, **TINY)
    r = run_cli("augment", "--data", "digits", "--generator", gen.path, "--real-per-class", "4", "--seeds", "1",
                "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "leak" in r.stderr


def _last_step(run_dir):
    return Run(run_dir).read_metrics()[-1]["step"]


def test_every_arm_and_the_generator_get_their_full_step_budget(tmp_path):
    """The loop drops the last partial batch: budgets counted as steps * batch / n came up short (320 of 500)."""
    run_augment(out=str(tmp_path), **{**TINY, "real_per_class": 10, "batch_size": 32, "steps": 20})
    work = tmp_path / "augment" / "augment-1" / "work"
    recognizers = sorted((work / "classify").iterdir())
    assert len(recognizers) == 2 and [_last_step(r) for r in recognizers] == [20, 20]  # 100 and 200 images
    assert _last_step(work / "generate" / "gen-vae-1") == 20  # 100 images at batch 64


def test_copies_flag_replayed_training_images():
    """Synthetic images that are the real subset itself are all near copies; fresh real images are not."""
    from recgen.data import load_dataset
    from recgen.loop.augment import _copies

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    subset, fresh = train.subset(range(0, 50)), train.subset(range(50, 150))
    replayed = _copies(subset, subset, test)
    assert replayed["copy_rate"] == 1.0 and replayed["nn_distance_ratio"] < 1e-6
    assert _copies(fresh, subset, test)["copy_rate"] < 0.1


@pytest.mark.parametrize("opts, message", [
    (dict(guidance=2.0), "guidance: classifier-free guidance applies to diffusion and pixelcnn"),
    (dict(precision="fp16"), "precision must be fp32 or bf16"),
    (dict(generator_augment="spin"), "generator_augment: unknown 'spin'"),
    (dict(generator_augment_p=0.5), "generator_augment_p .* is for diffusion models, not vae"),
    (dict(generator_model="flow"), "generator_model must be one of"),
])
def test_sampling_options_are_checked_before_any_training(tmp_path, opts, message):
    with pytest.raises(RecgenError, match=message):
        run_augment(out=str(tmp_path), **{**TINY, **opts})
    assert not (tmp_path / "augment").exists()


def test_a_generator_replaying_its_subset_is_flagged():
    from recgen.loop.augment import AugmentConfig, _summarize

    def arms(copy_rate):
        return {0.0: [{"accuracy": 0.70, "recall": [0.7, 0.7]}],
                4.0: [{"accuracy": 0.71, "recall": [0.7, 0.72], "copy_rate": copy_rate, "nn_distance_ratio": 0.5}]}

    cfg = AugmentConfig(generator_model="diffusion")
    flagged = _summarize(arms(0.6), ["a", "b"], False, cfg)
    assert flagged["health"][0].startswith("60% of the synthetic images are near copies")
    assert "--generator-steps" in flagged["health"][0]
    assert "health" not in _summarize(arms(0.02), ["a", "b"], False, cfg)


def test_cli_prints_the_oversampled_baseline_beside_the_real_only_arm(tmp_path):
    r = run_cli("augment", "--data", "digits", "--real-per-class", "10", "--imbalance", "0.2", "--minority", "3",
                "--ratios", "0,1", "--seeds", "1", "--steps", "10", "--generator-model", "vae", "--generator-steps",
                "10", "--threads", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("  ")]
    assert [ln.split(":")[0] for ln in lines[:3]] == ["ratio 0", "ratio 0, minority oversampled", "ratio 1"]
    assert "over oversampling)" in lines[4] and lines[5].startswith("minority recall gain of oversampling alone: ")
    assert all("(validation 0." in ln for ln in lines[:3])
    assert "best ratio " in r.stdout and "(chosen on validation: 100 real images per class" in r.stdout
