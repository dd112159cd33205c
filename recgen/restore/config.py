"""Options of `recgen restore train` (RestoreConfig: the CLI flags, config.yaml keys and Python keywords). Kept
free of torch so that the command line can build its options without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import Rule, TrainConfig, ints, one_of, opt
from recgen.data.options import DataOptions
from recgen.errors import RecgenError

METHODS = ("auto", "restorer", "ddnm", "repaint", "reverse")
TASKS = ("inpaint", "denoise", "superres", "jpeg", "oldphoto")
MASK_KINDS = ("box", "strokes", "scratches")
SCALES = (2, 4)  # super-resolution factors the area downscaling and the null-space projection support
# Images up to IN_MEMORY_PIXELS (the output's size for superres) are restored whole with every baseline beside
# them (the restorers and baselines hold several float copies of each image; batches are cut to the same total).
# Larger ones stream through the restorer in tiles, uint8 in and out, without the baselines, so memory stays
# bounded at any size; MAX_PIXELS, read from the header before decoding, only refuses decompression bombs.
IN_MEMORY_PIXELS = 2 ** 21  # 2,097,152 pixels: 1920x1080 fits
MAX_PIXELS = 10 ** 8  # 100 megapixels; `--max-pixels` raises it
MIN_SIDE = 11  # SSIM's 11x11 Gaussian window (torchmetrics) and the noise estimate need at least this much image



def _widths(name: str, value: str) -> str:
    w = ints(value, name)
    if not w or min(w) <= 0:
        raise RecgenError(f"{name} must be positive channel counts, got {value!r}")
    return value


@dataclass
class RestoreConfig(DataOptions, TrainConfig):
    epochs: int = opt(2, "passes over the training set (each sees freshly drawn corruptions)")
    batch_size: int = opt(64, "images per optimizer step")
    lr: float = opt(2e-3, "peak learning rate")
    weight_decay: float = opt(0.0, "decoupled weight decay (restorers train without)")
    schedule: str = opt("cosine", "onecycle | cosine | constant (with linear warmup over `warmup` of the "
                        "steps)")
    warmup: float = opt(0.03, "fraction of steps spent warming up")
    ema: float = opt(0.99, "EMA decay of the weights the restorer is saved with (0 = off); ~70-step "
                     "half-life")
    task: str = opt("denoise", "inpaint | denoise | superres | jpeg | oldphoto", check=one_of(*TASKS))
    val_fraction: float = opt(0.02, "share of the training set held out for per-epoch validation PSNR (0 = "
                              "none)")
    widths: str = opt("32,64,96", "U-Net channels per level (H, H/2, H/4)", check=_widths)
    blocks: int = opt(1, "residual blocks per U-Net level on each side", check=Rule(lambda v: v >= 0, "0 or more"))
    unshuffle: int = opt(1, "the U-Net's top level works at H / unshuffle: 1, 2 or 4 (pixel unshuffle; "
                         "superres on photos: the scale)", check=one_of(1, 2, 4, expected="1, 2 or 4"))
    loss: str = opt("mse", "mse (what PSNR measures) | l1", check=one_of("mse", "l1", expected="mse or l1"))
    scale: int = opt(2, "superres: upscaling factor (2 or 4)")
    sigma_max: float = opt(
        0.4,
        "denoise: training noise std drawn uniformly from [0, sigma_max] (images in [0, 1])", check=Rule(lambda v: 0 < v <= 1, "in (0, 1] (images in [0, 1])"))
    mask_kind: str = opt("box+strokes", "inpaint: training masks, box | strokes | scratches, or several joined by +", check=Rule(lambda v: all(k in MASK_KINDS for k in v.split("+")),
                             f"{', '.join(MASK_KINDS)} or several joined by +"))
    ratio_min: float = opt(0.05, "inpaint: smallest masked share of an image during training")
    ratio_max: float = opt(0.5, "inpaint: largest masked share of an image during training")
    patch: int = opt(64, "photos: side of the random training patches cut from each photo",
                     check=Rule(lambda v: v >= 16 and v % 4 == 0, "a multiple of 4 and at least 16 pixels"))
    zoom: float = opt(1.0, "photos: half the training patches are cut up to this many times larger and shrunk "
                      "(sharper detail, each photo at several scales; 1 = off; superres on photos: 2)",
                      check=Rule(lambda v: 1 <= v <= 8, "between 1 and 8"))
    epoch_patches: int = opt(2048, "photos: patches drawn per epoch (an epoch of photos has no natural size)")
    quality_min: int = opt(10, "jpeg: lowest JPEG quality drawn during training")
    quality_max: int = opt(40, "jpeg: highest JPEG quality drawn during training")
    prefill: str = opt("", "inpaint: classical fill the network corrects ('' = none: holes are zeros; telea)")


    def check_together(self):
        super().check_together()
        if not 0 < self.ratio_min <= self.ratio_max < 1:
            raise RecgenError(f"need 0 < ratio_min <= ratio_max < 1, got {self.ratio_min}, {self.ratio_max}")
        if not 1 <= self.quality_min <= self.quality_max <= 100:
            raise RecgenError(f"need 1 <= quality_min <= quality_max <= 100, got {self.quality_min}, "
                              f"{self.quality_max}")
        if self.task == "superres" and self.patch % self.scale:
            raise RecgenError(f"patch {self.patch} must be divisible by the scale {self.scale}")

# What a photo run uses where the user left an option out (Fashion-MNIST's defaults are sized for 28x28 sets):
# small batches of large patches, noise up to 55/255, and a time budget that keeps a default run within 30
# minutes on two CPU cores. Epochs left out are sized to that budget on the machine at hand
# (recgen.train.steps_in_budget), so the learning-rate schedule ends rather than being cut. The network
# stays the default U-Net: wider ones at half resolution (unshuffle 2, widths 64,128,192, blocks 2, at lr 1e-3)
# trained less stably and scored no better on the held-out photos within the same budget. At lr 2e-3 a default
# x2 run could hit a burst of growing gradients and collapse to a correction the back-projection cancels (the
# input's score for the rest of the run); clip_spikes keeps each step's gradient within 4x the recent ones.
PHOTO_DEFAULTS = {"batch_size": 16, "lr": 2e-3, "sigma_max": 55 / 255, "mask_kind": "box+scratches",
                  "ratio_max": 0.3, "time_budget": 1500.0, "ema": 0.995, "prefill": "telea", "clip_spikes": 4.0}
# Super-resolution also cuts half its patches up to twice as large and shrinks them (`zoom`): photos shrunk for the
# web carry detail up to their last pixel, where a restorer trained only on the softer bundled photos drew aliased
# stripes at the wrong angle (china.jpg's roofs scored under bicubic). It raised x2 on the held-out photos in two
# runs and left x4 and denoising where they were, so the other tasks keep their patches as drawn. Its loss is L1
# (as EDSR's, arXiv 1707.02921): at the same budget it beat MSE on each held-out photo at x2 and matched it at x4.
PHOTO_TASK_DEFAULTS = {"superres": {"zoom": 2.0, "loss": "l1"}}
