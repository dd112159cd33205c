"""A small 3-class colour image folder made from real photographs (scikit-image's bundled samples), for measuring
what recgen's defaults do on a few dozen colour images:

    .venv/bin/python bench/make_colour_folder.py --out data/colour3     # -> data/colour3/{train,test}/<class>/*.png

Classes: cat (scikit-image's `chelsea`), coffee (`coffee`) and rocket (`rocket`), 30 square crops each (20 train,
10 test) of random size and position, mirrored at random, resized to --size pixels. Train crops lie wholly in the
left 60 % of a photograph and test crops in the right 40 %, so no test pixel was seen in training. The layout is
the image-folder one `--data` accepts (recgen/data/sources.py): train/ and test/, one subfolder per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

PHOTOS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}
SPLITS = {"train": (0.0, 0.6, 20), "test": (0.6, 1.0, 10)}  # left and right edge (share of the width), images


def crops(photo: np.ndarray, left: float, right: float, n: int, size: int, rng: np.random.Generator) -> list:
    h, w = photo.shape[:2]
    x0, x1 = int(left * w), int(right * w)
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.2, 0.35) * h)  # a third of the height at most: fits the 40 % strip
        x = rng.integers(x0, x1 - side + 1)
        y = rng.integers(0, h - side + 1)
        im = photo[y:y + side, x:x + side]
        if rng.random() < 0.5:
            im = im[:, ::-1]
        out.append(cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA))
    return out


def make(out: Path, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for cls, name in PHOTOS.items():
        photo = getattr(skimage.data, name)()  # (H, W, 3) uint8 RGB
        for split, (left, right, n) in SPLITS.items():
            d = out / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(crops(photo, left, right, n, size, rng)):
                cv2.imwrite(str(d / f"{cls}-{i:02d}.png"), im[..., ::-1])  # OpenCV writes BGR
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/colour3")
    p.add_argument("--size", type=int, default=32, help="side of the square images in pixels")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(make(Path(a.out), a.size, a.seed))


if __name__ == "__main__":
    main()
