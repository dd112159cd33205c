"""Classical image features (HOG, LBP, Sobel, histograms, pixels, k-means patches) as scikit-learn transformers."""

from recgen.features.extractors import ImageFeatures, IntensityHistogram, KMeansPatches, Pixels, Sobel
from recgen.features.spec import FEATURES, make_features
from recgen.features.texture import HOG, LBP

__all__ = ["FEATURES", "HOG", "LBP", "ImageFeatures", "IntensityHistogram", "KMeansPatches", "Pixels", "Sobel",
           "make_features"]
