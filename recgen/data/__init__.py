"""Datasets (named, IDX, CIFAR-10, .npz, image folders), splits and transforms."""

from recgen.lazy import lazy_exports

__all__ = ["FASHION_CLASSES", "NAMED", "ImageSet", "build_augment", "fit_images", "has_test_split", "held_out",
           "image_batch", "image_files", "limit_per_class", "load_dataset", "load_splits", "read_image", "read_images", "resize_batch",
           "to_channels", "train_val_split"]
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(["ImageSet", "fit_images", "held_out", "image_batch", "limit_per_class", "resize_batch",
                     "to_channels", "train_val_split"], "recgen.data.dataset"),
    **dict.fromkeys(["FASHION_CLASSES", "NAMED", "has_test_split", "load_dataset"], "recgen.data.sources"),
    **dict.fromkeys(["image_files", "read_image", "read_images"], "recgen.data.images"),
    "build_augment": "recgen.data.transforms", "load_splits": "recgen.data.splits"})
