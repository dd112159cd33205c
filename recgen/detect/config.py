"""Options of `recgen detect scenes` (SceneConfig) and `recgen detect train` (DetectConfig): the CLI flags,
config.yaml keys and Python keywords. Kept free of torch and OpenCV so that the command line can build its options
without loading them."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import (AT_LEAST_ONE, CHANNELS, FRACTION, NOT_NEGATIVE, Options, Rule, TrainConfig, ints,
                           one_of, opt)
from recgen.errors import RecgenError

BACKGROUNDS = ("plain", "noise", "clutter")


@dataclass
class SceneOptions(Options):
    """How scenes are built (shared by `recgen detect scenes` and by training on a classification dataset)."""

    data: str = opt("fashion-mnist", "objects: a classification dataset (named, or a path as for classify)")
    data_dir: str = opt("", "where named datasets are looked for first (then $RECGEN_DATA, then system "
                        "paths)")
    canvas: int = opt(96, "scene side in pixels (square)")
    min_objects: int = opt(1, "objects per scene, at least")
    max_objects: int = opt(4, "objects per scene, at most (fewer when the overlap limit leaves no room)")
    min_size: int = opt(20, "smallest side in pixels an object image (28x28 for Fashion-MNIST) is scaled to")
    max_size: int = opt(48, "largest side in pixels an object image is scaled to")
    max_overlap: float = opt(0.1, "largest IoU allowed between two objects' boxes in one scene",
                             check=Rule(lambda v: 0 <= v <= 1, "an IoU in [0, 1]"))
    background: str = opt("plain", "plain (black) | noise (uniform 0..40 grey levels) | clutter (noise, "
                          "strokes, blobs)", check=one_of(*BACKGROUNDS))
    train_scenes: int = opt(10000, "scenes built from the objects' train split", check=AT_LEAST_ONE)
    test_scenes: int = opt(1000, "scenes built from the objects' test split only", check=NOT_NEGATIVE)
    scene_seed: int = opt(0, "seeds the scenes (scene i of a split is the same whatever the counts)",
                          check=NOT_NEGATIVE)

    def check_together(self):
        if not 1 <= self.min_objects <= self.max_objects:
            raise RecgenError(f"need 1 <= min_objects <= max_objects, got {self.min_objects} and "
                              f"{self.max_objects}")
        if not 4 <= self.min_size <= self.max_size <= self.canvas:
            raise RecgenError(f"need 4 <= min_size <= max_size <= canvas, got {self.min_size}, {self.max_size}, "
                              f"{self.canvas}")


@dataclass
class SceneConfig(SceneOptions):
    out: str = opt("scenes", "folder to write train.json, test.json and the PNG images (train/, test/)")


MODELS = ("centernet", "classical")


@dataclass
class DetectConfig(SceneOptions, TrainConfig):
    epochs: int = opt(12, "passes over the training scenes")
    batch_size: int = opt(32, "scenes per optimizer step")
    lr: float = opt(3e-3, "peak learning rate")
    model: str = opt("centernet", "centernet (anchor-free network) | classical (contour proposals + "
                     "classifier + NMS)", check=one_of(*MODELS))
    data: str = opt("fashion-mnist", "scene objects (a classification dataset) or COCO: a .json, or a dir "
                    "with train.json")
    canvas: int = opt(96, "input side in pixels (a multiple of 16): scenes are this size, COCO images "
                      "letterboxed to it")
    images: str = opt("", "COCO: folder that file_name entries are relative to (default: the JSON file's "
                      "folder)")
    bad_annotations: str = opt("refuse", "COCO: refuse | skip images and boxes that are bad (both report "
                               "them)", check=one_of("refuse", "skip", expected="refuse or skip"))
    channels: int = opt(0, "COCO: convert images to 1 or 3 channels (0 = the data's own)", check=CHANNELS)
    val_fraction: float = opt(
        0.05,
        "share of the training scenes held out for per-epoch validation mAP (0 = none)", check=FRACTION)
    # CenterNet
    widths: str = opt("24,48,96,160", "centernet: channels of the stages at strides 2, 4, 8, 16")
    blocks: str = opt("0,1,1,1", "centernet: residual blocks per stage")
    neck: int = opt(48, "centernet: channels of the stride-4 output map and the heads")
    giou_weight: float = opt(2.0, "centernet: weight of the GIoU box loss (the L1 box loss has weight 1)")
    flip: float = opt(0.5, "augmentation: probability of a horizontal flip (boxes follow)")
    scale_jitter: float = opt(0.0, "augmentation: zoom about the centre by a factor in [1 - s, 1 + s] "
                              "(resamples)")
    translate: float = opt(0.1, "augmentation: shift by up to this fraction of the side")
    # classical
    classifier: str = opt("", "classical: a classify run to score proposals (default: fit HOG + logistic "
                          "regression)")
    fit_scenes: int = opt(3000, "classical: training scenes whose crops fit the proposal classifier")
    nms_iou: float = opt(0.5, "classical: boxes of one class overlapping more than this IoU are suppressed")
    # inference
    score_threshold: float = opt(0.01, "detections scoring below this are dropped (low keeps mAP honest)")
    max_detections: int = opt(100, "detections kept per image (COCO's limit)")

    def check_together(self):
        from recgen.detect.coco import coco_files  # torch and OpenCV: loaded once options are built

        if coco_files(self.data) is None:  # scenes are built from a classification dataset
            super().check_together()
        if self.model == "centernet":  # widths, blocks and neck describe a network
            centernet_config(self, channels=1, num_classes=2)


def centernet_config(cfg: DetectConfig, channels: int, num_classes: int):
    """The CenterNetConfig (recgen.detect.centernet) of a DetectConfig's widths, blocks and neck."""
    from recgen.detect.centernet import CenterNetConfig  # torch: only when a network is described

    try:
        return CenterNetConfig(in_channels=channels, num_classes=num_classes, widths=ints(cfg.widths, "widths"),
                               blocks=ints(cfg.blocks, "blocks"), neck=cfg.neck)
    except ValueError as e:
        raise RecgenError(str(e)) from None
