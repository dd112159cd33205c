"""Feature specs: "hog+lbp+pixels" -> a scikit-learn FeatureUnion of those extractors."""

from __future__ import annotations

from difflib import get_close_matches

from sklearn.pipeline import FeatureUnion

from recgen.errors import RecgenError
from recgen.features.extractors import IntensityHistogram, KMeansPatches, Pixels, Sobel
from recgen.features.texture import HOG, LBP

# Spec names -> extractors; each class's defaults are the settings tuned on 28x28 Fashion-MNIST.
FEATURES = {"hog": HOG, "lbp": LBP, "sobel": Sobel, "hist": IntensityHistogram, "pixels": Pixels,
            "kmeans": KMeansPatches}


def make_features(spec: str, shape=None, n_jobs=None) -> FeatureUnion:
    """"hog+lbp+pixels" -> FeatureUnion of those extractors (in spec order), each given `shape` and `n_jobs`."""
    names = [part.strip().lower() for part in spec.split("+")]
    valid = ", ".join(sorted(FEATURES))
    for name in names:
        if name not in FEATURES:
            near = get_close_matches(name, list(FEATURES), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise RecgenError(f"unknown feature {name!r} in {spec!r}{hint}; valid names: {valid}, joined by '+'")
    if len(set(names)) != len(names):
        raise RecgenError(f"feature spec {spec!r} names an extractor twice; valid names: {valid}, joined by '+'")
    return FeatureUnion([(name, FEATURES[name](shape=shape, n_jobs=n_jobs)) for name in names])
