"""Classical pipelines on the bundled digits (28x28, 10 classes): they learn, persist through skops with
identical predictions, and refuse files holding types outside the allowlist."""

import os

import numpy as np
import pytest
import skops.io as sio
import torch
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from recgen.classify.classical import (FlipPipeline, build_classical, load_classical, save_classical,
                                       search_classical)
from recgen.classify.kernel_svm import NystroemSVM, newton_ovr, preconditioner
from recgen.data import load_dataset
from recgen.errors import RecgenError

# Tiny settings: a few hundred images, 200 landmarks, 20 trees.
TINY = {"svm": {"pca": 32, "landmarks": 200}, "rf": {"n_estimators": 20}}


@pytest.fixture(scope="module")
def digits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    return train.x[:400], train.y[:400], test.x[:200], test.y[:200]


@pytest.fixture(scope="module")
def fitted(digits):
    x, y, _, _ = digits
    return {m: build_classical(m, "hog+pixels", seed=0, **TINY[m]).fit(x, y) for m in ("svm", "rf")}


@pytest.mark.parametrize("model, floor", [("svm", 0.85), ("rf", 0.8)])
def test_beats_chance(fitted, digits, model, floor):
    _, _, xt, yt = digits
    pipe = fitted[model]
    assert isinstance(pipe, FlipPipeline)
    acc = (pipe.predict(xt) == yt).mean()
    assert acc > floor, f"{model}: accuracy {acc:.3f} on digits (chance 0.1)"
    proba = pipe.predict_proba(xt)
    assert proba.shape == (len(xt), 10)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), pipe.predict(xt))


def test_binary_svm_predicts_and_ranks(digits):
    """Two classes: the SVM's decision is one margin per image, which predict and predict_proba turn into two."""
    x, y, xt, yt = digits
    keep, keep_t = y < 2, yt < 2
    pipe = build_classical("svm", "hog", seed=0, pca=16, landmarks=100).fit(x[keep], y[keep])
    assert pipe.decision_function(xt[keep_t]).ndim == 1
    proba = pipe.predict_proba(xt[keep_t])
    assert proba.shape == (keep_t.sum(), 2)
    np.testing.assert_array_equal(pipe.classes_[proba.argmax(1)], pipe.predict(xt[keep_t]))
    assert (pipe.predict(xt[keep_t]) == yt[keep_t]).mean() > 0.9


def test_flattened_rows_with_shape(digits):
    x, y, xt, _ = digits
    a = build_classical("rf", "hog", seed=0, n_estimators=5).fit(x, y).predict(xt)
    b = build_classical("rf", "hog", seed=0, shape=(28, 28), n_estimators=5).fit(
        x.reshape(len(x), -1), y).predict(xt.reshape(len(xt), -1))
    np.testing.assert_array_equal(a, b)


def test_unknown_hyperparameter_suggests_nearest():
    with pytest.raises(RecgenError, match="did you mean 'landmarks'"):
        build_classical("svm", "hog", seed=0, landmark=100)
    with pytest.raises(RecgenError, match="svm, rf"):
        build_classical("knn", "hog", seed=0)


@pytest.mark.parametrize("model", ["svm", "rf"])
def test_skops_round_trip(fitted, digits, tmp_path, model):
    _, _, xt, _ = digits
    path = save_classical(fitted[model], tmp_path / "sub" / "model.skops")
    assert [p.name for p in path.parent.iterdir()] == ["model.skops"]  # the temporary file was renamed away
    loaded = load_classical(path)
    np.testing.assert_array_equal(loaded.predict(xt), fitted[model].predict(xt))
    np.testing.assert_array_equal(loaded.predict_proba(xt), fitted[model].predict_proba(xt))


class Untrusted(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


@pytest.mark.parametrize("step", [Untrusted(), FunctionTransformer(os.system)])
def test_untrusted_types_are_refused(digits, tmp_path, step):
    x, y, _, _ = digits
    pipe = build_classical("rf", "pixels", seed=0, n_estimators=2)
    pipe.fit(x[:50], y[:50])
    pipe.steps.insert(1, ("extra", step))  # after fitting: the payload must never run, not even here
    path = tmp_path / "evil.skops"
    sio.dump(pipe, path)
    with pytest.raises(RecgenError) as err:
        load_classical(path)
    msg = str(err.value)
    assert str(path) in msg and ("Untrusted" in msg or "system" in msg)


def test_unreadable_file_is_a_recgen_error(tmp_path):
    bad = tmp_path / "model.skops"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RecgenError, match="not a readable skops model"):
        load_classical(bad)


def test_search_returns_a_configured_pipeline(digits):
    x, y, _, _ = digits
    pipe = build_classical("rf", "hog", seed=0, n_estimators=5)
    best = search_classical(pipe, x, y, seed=0, subset=150, grid={"rf__min_samples_leaf": [1, 4]})
    assert isinstance(best, FlipPipeline) and best.memory is None
    assert best.get_params()["rf__min_samples_leaf"] in (1, 4)
    assert not hasattr(best[-1], "estimators_")  # unfitted: the caller fits it on all the data


# ----------------------------------------------------------------------------------------------- NystroemSVM
@parametrize_with_checks([NystroemSVM(landmarks=50)])
def test_nystroem_svm_sklearn_contract(estimator, check):
    check(estimator)


def test_newton_reaches_the_squared_hinge_optimum():
    """newton_ovr's weights minimise the one-vs-rest objective: the same value as L-BFGS from scipy on the
    explicit objective, and a gradient of about zero."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = (x[:, :3].argmax(1) + (rng.random(300) < 0.1)) % 3  # three classes, 10 % label noise: margins violated
    lam = 0.5
    phi, yt = torch.from_numpy(x), torch.from_numpy(y)
    chol = preconditioner(phi.bfloat16(), lam, rows=100, gen=torch.Generator())  # as fit: rounded, sampled
    w, b, objective = newton_ovr(phi, yt, 3, lam, steps=15, cg=40, chol=chol)
    assert all(later <= earlier + 1e-3 for earlier, later in zip(objective, objective[1:]))  # line search: descent

    t = np.where(np.arange(3)[None, :] == y[:, None], 1.0, -1.0)

    def loss(v):  # the same objective: lam/2 |w|^2 + lam/2 1e-3 b^2 + 1/2 sum max(0, 1 - t f)^2, and gradient
        wv, bv = v[:36].reshape(12, 3), v[36:]
        slack = np.maximum(0, 1 - t * (x @ wv + bv))
        g = -t * slack
        return (0.5 * lam * (wv ** 2).sum() + 0.5e-3 * lam * (bv ** 2).sum() + 0.5 * (slack ** 2).sum(),
                np.concatenate([(lam * wv + x.T @ g).ravel(), 1e-3 * lam * bv + g.sum(0)]))

    ref = minimize(loss, np.zeros(39), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 5000})
    ours, grad = loss(np.concatenate([w.double().numpy().ravel(), b.double().numpy()]))
    assert ours == pytest.approx(ref.fun, rel=1e-5)
    assert np.abs(grad).max() < 1e-3 * np.abs(loss(np.zeros(39))[1]).max()


def test_nystroem_svm_fits_digits_and_keeps_no_map(digits):
    x, y, xt, yt = digits
    pipe = build_classical("svm", "hog", seed=0, pca=32, landmarks=300)
    pipe.fit(x, y)
    svm = pipe.named_steps["svm"]
    assert svm.landmarks_.shape == (300, 32) and svm.coef_.shape == (300, 10)  # the m x m whitening is not kept
    assert svm.n_iter_ == 3 and svm.objective_[-1] < svm.objective_[0]
    assert (pipe.predict(xt) == yt).mean() > 0.85


def test_svm_search_grid_names_real_parameters(digits):
    """The default SVM grid (lam x gamma) runs on NystroemSVM's parameters and returns one of its candidates."""
    from recgen.classify.classical import SEARCH_GRIDS

    x, y, _, _ = digits
    pipe = build_classical("svm", "hog", seed=0, pca=16, landmarks=100)
    best = search_classical(pipe, x, y, seed=0, subset=150)
    params = best.get_params()
    assert params["svm__lam"] in SEARCH_GRIDS["svm"]["svm__lam"]
    assert params["svm__gamma"] in SEARCH_GRIDS["svm"]["svm__gamma"]
