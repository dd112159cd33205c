"""Detection: synthetic scenes and COCO datasets, a CenterNet-style detector (shared loop), a classical baseline,
COCO mAP through pycocotools."""

from recgen.lazy import lazy_exports

__all__ = ["DetectConfig", "DetectionSet", "DetectorRun", "SceneConfig", "SceneOptions", "coco_map", "load",
           "make_scenes", "read_coco", "train", "write_coco", "write_scenes"]
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(["DetectConfig", "SceneConfig", "SceneOptions"], "recgen.detect.config"),
    **dict.fromkeys(["DetectorRun", "load", "train"], "recgen.detect.api"),
    **dict.fromkeys(["DetectionSet", "read_coco", "write_coco"], "recgen.detect.coco"),
    "coco_map": "recgen.detect.evaluate", **dict.fromkeys(["make_scenes", "write_scenes"], "recgen.detect.scenes")})
