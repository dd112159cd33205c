"""Datasets (named, IDX, CIFAR-10, .npz, image folders), splits and transforms."""

from recgen.data.dataset import (ImageSet, held_out, image_batch, limit_per_class, resize_batch, to_channels,
                                 train_val_split)
from recgen.data.sources import (FASHION_CLASSES, NAMED, has_test_split, image_files, load_dataset, read_image,
                                 read_images)
from recgen.data.transforms import build_augment

__all__ = ["FASHION_CLASSES", "NAMED", "ImageSet", "build_augment", "has_test_split", "held_out", "image_batch",
           "image_files", "limit_per_class", "load_dataset", "read_image", "read_images", "resize_batch",
           "to_channels", "train_val_split"]
