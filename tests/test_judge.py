"""judge_samples: real images score like the floor, noise like the ceiling, copies are caught, CAS ~ real."""

import numpy as np
import pytest

from recgen import classify
from recgen.data import limit_per_class, load_dataset
from recgen.evaluate.generation import Judge
from recgen.loop.judge import format_table, judge_samples, noise_images


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    out = tmp_path_factory.mktemp("judge")
    run = classify.train(model="cnn", data="digits", epochs=4, stem_width=8, widths="16,32", blocks="0,1",
                         batch_size=64, threads=1, out=str(out))
    return Judge.from_run(run), load_dataset("digits"), load_dataset("digits", "test"), out


def test_real_samples_score_like_the_floor_and_noise_like_the_ceiling(setup):
    judge, train, test, out = setup
    real = judge_samples(judge, test.x, test.y, train, test, with_cas=True, plots_dir=out / "plots",
                         cas_options=dict(epochs=12, batch_size=32, threads=1))
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


def test_planted_training_images_raise_the_copy_rate(setup):
    judge, train, test, _ = setup
    fake = test.x[:200].copy()
    fake[:100] = train.x[:100]
    r = judge_samples(judge, fake, None, train, test, with_cas=False)
    assert r["model"]["copy_rate"] >= 0.45 and r["model"]["copy_rate_pixels"] >= 0.45
