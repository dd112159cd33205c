"""Recognition: CNN (shared training loop) and classical SVM / random-forest pipelines."""

from recgen.lazy import lazy_exports

__all__ = ["ClassifierRun", "ClassifyConfig", "load", "train"]
__getattr__ = lazy_exports(__name__, {"ClassifyConfig": "recgen.classify.config",
                                      **dict.fromkeys(["ClassifierRun", "load", "train"], "recgen.classify.api")})
