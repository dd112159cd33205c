"""judge_samples: real images score like the floor, noise like the ceiling, copies are caught, CAS ~ real."""

import numpy as np
import pytest

from recgen import classify
from recgen.data import load_dataset
from recgen.errors import RecgenError
from recgen.evaluate.generation import InceptionJudge, Judge
from recgen.loop.judge import CAS_STEPS, cas, cas_options_for, format_table, judge_samples, noise_images


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    out = tmp_path_factory.mktemp("judge")
    run = classify.train(model="cnn", data="digits", epochs=4, stem_width=8, widths="16,32", blocks="0,1",
                         batch_size=64, threads=1, out=str(out))
    return Judge.from_run(run), load_dataset("digits"), load_dataset("digits", "test"), out


def test_real_samples_score_like_the_floor_and_noise_like_the_ceiling(setup):
    judge, train, test, out = setup
    real = judge_samples(judge, test.x, test.y, train, test, with_cas=True, plots_dir=out / "plots",
                         cas_options=dict(steps=150, batch_size=32, threads=1))
    m, floor, ceil = real["model"], real["floor"], real["ceiling"]
    assert m["fid"] < 0.5 * ceil["fid"] and m["precision"] > 0.5 and m["recognizability"] > 0.6
    # CAS of real data is close to the accuracy of the same classifier trained on real data
    assert abs(m["cas"] - floor["cas"]) < 0.15 and m["cas"] > 0.5
    assert m["copy_rate"] < 0.1
    noise = noise_images(300, test.x.shape[1:], 0)
    bad = judge_samples(judge, noise, None, train, test, with_cas=False)
    assert bad["model"]["fid"] > 5 * m["fid"] and bad["model"]["precision"] < m["precision"]
    assert {"fid", "kid", "precision", "recall", "recognizability", "cas"} <= set(real["summary"])
    assert real["card"]["n"] == len(test) and len(real["card"]["judge_weights_sha256"]) == 16
    assert {r["metric"] for r in format_table(real)} >= {"fid", "cas", "copy_rate"}
    assert all((out / "plots" / f).is_file() for f in ("nearest-pairs.png", "samples-per-class.png",
                                                        "gradcam-gen-vs-real.png"))


def test_cas_budget_is_steps_whatever_the_sample_count(monkeypatch, tmp_path):
    """1,000 and 10,000 samples both get CAS_STEPS optimizer steps (epochs were 24 steps for 1,000 samples)."""
    seen = []

    class Stop(Exception):
        pass

    def fake_train(**kw):
        seen.append(kw)
        raise Stop

    monkeypatch.setattr(classify, "train", fake_train)
    x, y = np.zeros((1000, 8, 8, 1), np.uint8), np.arange(1000) % 10
    for n in (1000, 10000):
        with pytest.raises(Stop):
            cas(np.repeat(x, n // 1000, 0), np.tile(y, n // 1000), None, [str(c) for c in range(10)], 0, tmp_path)
    for kw, n in zip(seen, (1000, 10000)):
        assert kw["max_steps"] == CAS_STEPS and kw["epochs"] * (n // kw["batch_size"]) >= CAS_STEPS
    with pytest.raises(Stop):  # explicit epochs are honoured as given
        cas(x, y, None, [str(c) for c in range(10)], 0, tmp_path, dict(epochs=2))
    assert seen[-1]["epochs"] == 2 and "max_steps" not in seen[-1]
    with pytest.raises(Stop):  # --cas-classifier recognizer: the default CNN's network at its own step budget
        cas(x, y, None, [str(c) for c in range(10)], 0, tmp_path, cas_options_for("recognizer"))
    assert seen[-1]["widths"] == "32,64,128" and seen[-1]["max_steps"] == 2400 and seen[-1]["tta"] == "flip"
    with pytest.raises(RecgenError, match="cas_classifier must be one of small, recognizer, got 'resnet'"):
        cas_options_for("resnet")


def test_planted_training_images_raise_the_copy_rate(setup):
    judge, train, test, _ = setup
    fake = test.x[:200].copy()
    fake[:100] = train.x[:100]
    r = judge_samples(judge, fake, None, train, test, with_cas=False)
    assert r["model"]["copy_rate"] >= 0.45 and r["model"]["copy_rate_pixels"] >= 0.45


def test_inception_space_needs_local_weights_and_torch_fidelity(tmp_path):
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    with pytest.raises(RecgenError, match="no Inception weights file"):
        InceptionJudge(tmp_path / "pt_inception.pth")
    (tmp_path / "w.pth").write_bytes(b"not weights")
    if not _TORCH_FIDELITY_AVAILABLE:
        with pytest.raises(RecgenError, match="need torch-fidelity"):
            InceptionJudge(tmp_path / "w.pth")


def test_a_second_feature_space_is_scored_beside_the_judge(setup, tmp_path):
    """The Inception path's plumbing, with a stand-in network (Inception weights cannot exist on this machine):
    pooled pixels behind InceptionJudge's interface. Real images must sit at the floor, noise at the ceiling."""
    import torch.nn.functional as F
    from torch import nn

    class PooledPixels(nn.Module):
        num_features = 3 * 4 * 4

        def forward(self, x):
            return F.adaptive_avg_pool2d(x.float() / 255.0, 4).flatten(1)

    judge, train, test, _ = setup
    stand_in = InceptionJudge.__new__(InceptionJudge)
    stand_in.path, stand_in.embedder = tmp_path / "w.pth", PooledPixels()
    stand_in.path.write_bytes(b"weights")
    real = judge_samples(judge, test.x, test.y, train, test, with_cas=False, inception=stand_in)
    noise = judge_samples(judge, noise_images(300, test.x.shape[1:], 0), None, train, test, with_cas=False,
                          inception=stand_in)
    assert real["model"]["fid_inception"] < 0.2 * real["ceiling"]["fid_inception"]
    assert noise["model"]["fid_inception"] > 5 * real["model"]["fid_inception"]
    assert real["floor"]["kid_inception"] < real["ceiling"]["kid_inception"]
    assert len(real["card"]["inception_weights_sha256"]) == 16
    assert "fid_inception" in {r["metric"] for r in format_table(real)}


def test_evaluate_generator_samples_in_the_requested_precision(setup, tmp_path):
    from recgen import generate
    from recgen.loop.judge import evaluate_generator

    judge, _, _, _ = setup
    gen = generate.train(model="gan", data="digits", epochs=1, max_steps=2, base=8, latent_dim=8, batch_size=32,
                         val_fraction=0.0, threads=1, out=str(tmp_path))
    judge_path = str(judge.run.run.path)
    res = evaluate_generator(str(gen.path), judge_path, n=60, with_cas=False, precision="bf16")
    card = res["card"]
    assert card["sampling_precision"] == "bf16" and card["n"] == 60 and card["guidance"] is None
    assert 0.0 <= res["model"]["recognizability"] <= 1.0
    with pytest.raises(RecgenError, match="precision must be fp32 or bf16, got 'fp16'"):
        evaluate_generator(str(gen.path), judge_path, n=60, with_cas=False, precision="fp16")
