"""Generation metrics behave: a set against itself ~0, noise makes things worse, planted copies are caught."""

import numpy as np
import pytest

from recgen import classify
from recgen.data import load_dataset
from recgen.evaluate.generation import (Judge, class_spread, fid_kid, frechet_distance, hog_features, memorization,
                                        precision_recall, recognizability)


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    run = classify.train(model="cnn", data="digits", epochs=4, stem_width=8, widths="16,32", blocks="0,1",
                         batch_size=64, threads=1, out=str(tmp_path_factory.mktemp("j")))
    return Judge.from_run(run)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", "test")


def noisy(x, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(0, sigma * 255, x.shape), 0, 255).astype(np.uint8)


def test_fid_zero_for_same_set_and_grows_with_noise(judge, digits):
    train, _ = digits
    x = train.x[:400]
    assert abs(fid_kid(judge, x, x)["fid"]) < 1e-3
    # KID's unbiased estimator needs independent samples: compare two halves of the same distribution
    halves = fid_kid(judge, x[:200], x[200:])
    m1, m2 = fid_kid(judge, x[:200], noisy(x[200:], 0.1)), fid_kid(judge, x[:200], noisy(x[200:], 0.4))
    assert 0 < m1["fid"] < m2["fid"]
    assert abs(halves["kid"]) < m1["kid"] < m2["kid"]


def test_precision_recall_and_hog_fid(judge, digits):
    train, test = digits
    fr, ft = judge.features(train.x[:300]), judge.features(test.x[:300])
    good = precision_recall(fr, ft)
    bad = precision_recall(fr, judge.features(noisy(test.x[:300], 0.6)))
    assert good["precision"] > 0.6 and good["recall"] > 0.6
    assert bad["precision"] < good["precision"]
    h_same = frechet_distance(hog_features(train.x[:300]), hog_features(test.x[:300]))
    h_noise = frechet_distance(hog_features(train.x[:300]), hog_features(noisy(test.x[:300], 0.4)))
    assert h_same < h_noise


def test_memorization_flags_planted_training_images(judge, digits):
    train, test = digits
    ftrain, ftest = judge.features(train.x), judge.features(test.x)
    fake = test.x[:100].copy()
    fake[:20] = train.x[:20]  # 20 exact copies planted among real unseen images
    m = memorization(ftrain, ftest, judge.features(fake))
    flagged = m["nn_distance"] < m["threshold"]
    assert flagged[:20].all() and flagged[20:].mean() < 0.1
    assert np.array_equal(m["nn_index"][:20], np.arange(20))


def test_recognizability_and_spread(judge, digits):
    _, test = digits
    r = recognizability(judge, test.x, test.y, test.classes)
    assert r["recognizability"] > 0.6 and len(r["recognizability_per_class"]) == 10
    f = judge.features(test.x)
    collapsed = np.repeat(f[test.y == 3][:1], 30, axis=0)
    spread = class_spread(np.concatenate([f, collapsed]), np.concatenate([test.y, np.full(30, 11)]), f, test.y, 10)
    assert all(0.5 < s < 1.5 for s in spread)
    assert class_spread(collapsed, np.full(30, 3), f, test.y, 10)[3] < 0.05
