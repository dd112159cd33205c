"""Classical image features (HOG, LBP, Sobel, histograms, pixels) as scikit-learn transformers."""

from recgen.features.extractors import (FEATURES, HOG, LBP, ImageFeatures, IntensityHistogram, Pixels, Sobel,
                                        make_features)

__all__ = ["FEATURES", "HOG", "LBP", "ImageFeatures", "IntensityHistogram", "Pixels", "Sobel", "make_features"]
