"""Recognition: CNN (shared training loop) and classical SVM / random-forest pipelines."""

from recgen.classify.api import ClassifierRun, ClassifyConfig, load, train

__all__ = ["ClassifierRun", "ClassifyConfig", "load", "train"]
