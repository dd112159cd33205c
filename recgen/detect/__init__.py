"""Detection: synthetic scenes and COCO datasets, a CenterNet-style detector (shared loop), a classical baseline,
COCO mAP through pycocotools."""

from recgen.detect.api import DetectConfig, DetectorRun, load, train
from recgen.detect.coco import DetectionSet, read_coco, write_coco
from recgen.detect.evaluate import coco_map
from recgen.detect.scenes import SceneConfig, SceneOptions, make_scenes, write_scenes

__all__ = ["DetectConfig", "DetectionSet", "DetectorRun", "SceneConfig", "SceneOptions", "coco_map", "load",
           "make_scenes", "read_coco", "train", "write_coco", "write_scenes"]
