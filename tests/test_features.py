"""Feature extractors: the scikit-learn transformer contract, output shapes, agreement with scikit-image, and
the `make_features` factory's error message."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from skimage.feature import hog, local_binary_pattern
from sklearn.pipeline import FeatureUnion
from sklearn.utils.estimator_checks import parametrize_with_checks

from recgen.data import load_dataset
from recgen.errors import RecgenError
from recgen.features import FEATURES, HOG, LBP, IntensityHistogram, KMeansPatches, Pixels, Sobel, make_features

EXTRACTORS = [HOG(), HOG(cells=(3,), block=3, orientations=6, soft=False), LBP(), LBP(points=16, radius=2),
              Sobel(), IntensityHistogram(bins=8, grid=(2, 2)), Pixels(), Pixels(pool=2), KMeansPatches(k=8)]


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits", "test").x[:64]  # uint8 (64, 28, 28, 1)


# Every extractor passes every check; sklearn itself skips only check_array_api_input (SCIPY_ARRAY_API unset).
@parametrize_with_checks(EXTRACTORS)
def test_sklearn_contract(estimator, check):
    check(estimator)


# 28x28 gray: HOG 4 px cells -> 7x7 cells, 6x6 blocks of 2x2x9; 7 px cells -> 4x4 cells, 3x3 blocks.
@pytest.mark.parametrize("extractor, n_features", [
    (HOG(), 6 * 6 * 36 + 3 * 3 * 36),
    (LBP(), 4 * 4 * 10),
    (LBP(points=16, radius=2, grid=(7, 7)), 7 * 7 * 18),
    (Sobel(), 7 * 7 + 2 * 2 * 8),
    (IntensityHistogram(bins=16, grid=(2, 2)), 2 * 2 * 16),
    (Pixels(), 784),
    (Pixels(pool=2), 196),
    (KMeansPatches(k=8, grid=3), 2 * 8 * 3 * 3),
])
def test_feature_shapes(images, extractor, n_features):
    out = extractor.fit_transform(images)
    assert out.shape == (len(images), n_features) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert len(extractor.get_feature_names_out()) == n_features


def test_input_layouts_agree(images):
    """(N, H, W, C) uint8, (N, H, W) uint8, flattened rows with and without `shape`, and float in [0, 1]."""
    ref = HOG().fit_transform(images)
    flat = images.reshape(len(images), -1)
    np.testing.assert_allclose(HOG().fit_transform(images[..., 0]), ref)
    np.testing.assert_allclose(HOG().fit_transform(flat), ref)
    np.testing.assert_allclose(HOG(shape=(28, 28)).fit_transform(flat), ref)
    np.testing.assert_allclose(HOG().fit_transform(images / 255.0), ref, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        HOG(shape=(14, 14)).fit(flat)
    with pytest.raises(ValueError, match="fitted on"):
        HOG().fit(images).transform(images.reshape(-1, 14, 56, 1))


def test_colour_images(images):
    rgb = np.repeat(images, 3, axis=-1)
    # HOG picks the strongest channel: identical channels give the gray descriptor
    np.testing.assert_allclose(HOG().fit_transform(rgb), HOG().fit_transform(images))
    assert IntensityHistogram().fit_transform(rgb).shape == (len(images), 3 * 16)


def test_hog_matches_scikit_image(images):
    for cell in (4, 7):
        ref = np.stack([hog(im[..., 0], orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                            block_norm="L2-Hys") for im in images])
        np.testing.assert_allclose(HOG(cells=(cell,), soft=False).fit_transform(images), ref, atol=1e-6)


@pytest.mark.parametrize("points, radius", [(8, 1), (16, 2)])
def test_lbp_codes_match_scikit_image(images, points, radius):
    ref = np.stack([local_binary_pattern(im[..., 0], points, radius, "uniform") for im in images])
    np.testing.assert_array_equal(LBP(points, radius).codes(images[..., 0].astype(np.float64)), ref)


def test_threads_give_identical_output(images, monkeypatch):
    monkeypatch.setattr("recgen.features.extractors.CHUNK", 16)  # 4 chunks of the 64 images
    for cls in (HOG, LBP, Sobel):
        np.testing.assert_array_equal(cls(n_jobs=2).fit_transform(images), cls().fit_transform(images))


@pytest.mark.parametrize("channels", [1, 3])
def test_kmeans_patches_encode_every_patch(images, channels):
    """The convolutional encoder equals the definition applied to each patch: normalise brightness and contrast,
    project on the whitened unit centroids (filters_ and offsets_ fold the whitening in), soft-threshold both
    polarities, average over the image (grid=1)."""
    imgs = np.repeat(images[:3], channels, axis=-1)
    km = KMeansPatches(k=6, grid=1, samples=3000).fit(imgs)
    x = imgs.astype(np.float64) / 255
    patches = sliding_window_view(x, (5, 5), axis=(1, 2))  # (3, 24, 24, C, 5, 5): conv2d's (C, h, w) order
    patches = patches.reshape(3, 24 * 24, -1)
    norm = patches - patches.mean(-1, keepdims=True)
    norm /= np.sqrt(norm.var(-1, keepdims=True) + KMeansPatches.EPS_NORM)
    r = norm @ km.filters_.reshape(6, -1).T.astype(np.float64) - km.offsets_
    expected = np.concatenate([np.maximum(r - km.alpha, 0).mean(1), np.maximum(-r - km.alpha, 0).mean(1)], 1)
    np.testing.assert_allclose(km.transform(imgs), expected, rtol=1e-4, atol=1e-5)
    assert km.filters_.shape == (6, channels, 5, 5)
    # deterministic for a seed: the dictionary is learned from sampled patches
    np.testing.assert_array_equal(KMeansPatches(k=6, grid=1, samples=3000).fit(imgs).filters_, km.filters_)


def test_make_features(images):
    union = make_features("hog+lbp+pixels")
    assert isinstance(union, FeatureUnion)
    assert [name for name, _ in union.transformer_list] == ["hog", "lbp", "pixels"]
    assert union.fit_transform(images).shape == (len(images), 1620 + 160 + 784)
    assert set(FEATURES) == {"hog", "lbp", "sobel", "hist", "pixels", "kmeans"}


@pytest.mark.parametrize("spec, hint", [("hgo+lbp", "did you mean 'hog'?"), ("pixel", "did you mean 'pixels'?"),
                                        ("wavelets", "valid names: hist, hog, kmeans, lbp, pixels, sobel"),
                                        ("hog+hog", "twice")])
def test_make_features_rejects_bad_specs(spec, hint):
    with pytest.raises(RecgenError) as err:
        make_features(spec)
    message = str(err.value)
    assert hint in message and "\n" not in message
