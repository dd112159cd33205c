"""Options of `recgen classify train` (ClassifyConfig: the CLI flags, config.yaml keys and Python keywords). Kept
free of torch so that the command line can build its options without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import AT_LEAST_ONE, FRACTION, TrainConfig, ints, one_of, opt
from recgen.data.options import DataOptions, augment_spec
from recgen.errors import RecgenError

MODELS = ("cnn", "svm", "rf")
TTA_VIEWS = ("flip", "shift")


def check_tta(spec: str | bool) -> str:
    """Normalise a --tta value: '+'-joined views from TTA_VIEWS, or 'none'. Runs of older versions stored a
    bool (true = the mirror only), so true/false still read as 'flip'/'none'."""
    s = str(spec).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return "flip"
    if s in ("false", "0", "no", "off", "", "none"):
        return "none"
    views = s.split("+")
    bad = [v for v in views if v not in TTA_VIEWS]
    if bad:
        raise RecgenError(f"tta: unknown view {bad[0]!r}; expected '+'-joined views from {', '.join(TTA_VIEWS)}, "
                          "or none")
    return "+".join(v for v in TTA_VIEWS if v in views)  # canonical order


def tta_views(name: str, value: str | bool) -> str:
    """The check of the tta option: check_tta's normalised value."""
    return check_tta(value)


@dataclass
class ClassifyConfig(DataOptions, TrainConfig):
    # The CNN recipe searched in bench/cnn_search.md for a 10-minute budget on 2 CPU cores: ResNet-9 style
    # training, SGD-Nesterov at a high learning rate, linear warmup and decay, label smoothing, flip + crop,
    # flip + shift TTA.
    epochs: int = opt(20, "passes over the training set")
    batch_size: int = opt(256, "images per optimizer step")
    lr: float = opt(0.4, "peak learning rate")
    optimizer: str = opt("sgd", "adamw | sgd (Nesterov momentum 0.9)")
    schedule: str = opt(
        "linear",
        "onecycle | cosine | linear | constant (linear warmup over `warmup` of the steps)")
    warmup: float = opt(0.15, "fraction of steps spent warming up")
    model: str = opt("cnn", "cnn | svm | rf", check=one_of(*MODELS))
    # CNN
    augment: str = opt("flip+crop", "training augmentations, '+'-joined: flip crop affine rotate jitter "
                       "erase noise", check=augment_spec)
    label_smoothing: float = opt(0.1, "cross-entropy label smoothing (arXiv 1512.00567)", check=FRACTION)
    tta: str = opt("flip+shift", "test-time views averaged, '+'-joined: flip (mirror), shift (4 one-pixel "
                   "shifts); none", check=tta_views)
    stem_width: int = opt(16, "CNN: channels of the full-resolution stem", check=AT_LEAST_ONE)
    widths: str = opt("32,64,128", "CNN: channels per stage (each stage halves resolution)")
    blocks: str = opt("1,0,1", "CNN: residual blocks per stage")
    dropout: float = opt(0.0, "CNN: dropout before the classifier head", check=FRACTION)
    channels_last: bool = opt(True, "CNN: NHWC memory layout (oneDNN's CPU convolutions are faster in it)")
    init: str = opt("", "CNN: a classify run whose weights training starts from (fine-tuning; the same "
                    "network)")
    # classical
    features: str = opt("", "svm/rf: '+'-joined kmeans hog lbp sobel hist pixels ('' = the model's default "
                        "set)")
    search: bool = opt(False, "svm/rf: hyperparameter search on a subset before the final fit")
    landmarks: int = opt(
        12000,
        "svm: Nystroem landmarks; cost grows with their square, accuracy with their count", check=AT_LEAST_ONE)
    trees: int = opt(100, "rf: trees in the forest", check=AT_LEAST_ONE)

    def check_together(self):
        cnn_config(self, in_channels=1, num_classes=2)  # widths and blocks
        if self.model in ("svm", "rf"):
            # imported here so that the CLI can list these options without loading scikit-learn
            from recgen.classify.classical import DEFAULT_FEATURES
            from recgen.features import make_features

            self.features = self.features or DEFAULT_FEATURES[self.model]  # recorded resolved in config.yaml
            make_features(self.features)


def cnn_config(cfg: ClassifyConfig, in_channels: int, num_classes: int):
    """The CNNConfig (recgen.classify.cnn) of a ClassifyConfig's widths, blocks, stem and dropout."""
    from recgen.classify.cnn import CNNConfig  # torch: only when a network is described

    try:
        return CNNConfig(in_channels=in_channels, num_classes=num_classes, stem_width=cfg.stem_width,
                         widths=ints(cfg.widths, "widths"), blocks=ints(cfg.blocks, "blocks"), dropout=cfg.dropout)
    except ValueError as e:
        raise RecgenError(str(e)) from None
