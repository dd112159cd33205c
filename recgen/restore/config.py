"""Options of `recgen restore train` (RestoreConfig: the CLI flags, config.yaml keys and Python keywords). Kept
free of torch so that the command line can build its options without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import TrainConfig, opt
from recgen.data.options import DataOptions

METHODS = ("auto", "restorer", "ddnm", "repaint", "reverse")
# The largest image restored (the output's size for superres): memory and time grow with pixels, and the
# restorers and baselines hold several float copies of each image. Batches are cut to the same total, so the
# number of inputs does not add to the peak either. `--max-pixels` raises it.
MAX_PIXELS = 2 ** 21  # 2,097,152 pixels: 1920x1080 fits
MIN_SIDE = 11  # SSIM's 11x11 Gaussian window (torchmetrics) and the noise estimate need at least this much image


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
    task: str = opt("denoise", "inpaint | denoise | superres")
    val_fraction: float = opt(0.02, "share of the training set held out for per-epoch validation PSNR (0 = "
                              "none)")
    widths: str = opt("32,64,96", "U-Net channels per level (H, H/2, H/4)")
    blocks: int = opt(1, "residual blocks per U-Net level on each side")
    loss: str = opt("mse", "mse (what PSNR measures) | l1")
    scale: int = opt(2, "superres: upscaling factor (2 or 4)")
    sigma_max: float = opt(
        0.4,
        "denoise: training noise std drawn uniformly from [0, sigma_max] (images in [0, 1])")
    mask_kind: str = opt("box+strokes", "inpaint: training masks, box | strokes | box+strokes")
    ratio_min: float = opt(0.05, "inpaint: smallest masked share of an image during training")
    ratio_max: float = opt(0.5, "inpaint: largest masked share of an image during training")
