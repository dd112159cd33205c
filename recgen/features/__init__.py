"""Classical image features (HOG, LBP, Sobel, histograms, pixels, k-means patches) as scikit-learn transformers."""

from recgen.features.extractors import (FEATURES, HOG, LBP, ImageFeatures, IntensityHistogram, KMeansPatches,
                                        Pixels, Sobel, make_features)

__all__ = ["FEATURES", "HOG", "LBP", "ImageFeatures", "IntensityHistogram", "KMeansPatches", "Pixels", "Sobel",
           "make_features"]
