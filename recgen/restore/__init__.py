"""Restoration: inpainting, denoising and x2 super-resolution with a trained restorer U-Net or a diffusion generator
(DDNM / RePaint), measured against OpenCV's classical baselines in PSNR, SSIM and recognition."""

from recgen.restore.api import DiffusionRestorer, RestoreConfig, RestorerRun, load, train
from recgen.restore.degrade import Observation, corrupt
from recgen.restore.evaluate import evaluate
from recgen.restore.files import restore_files

__all__ = ["DiffusionRestorer", "Observation", "RestoreConfig", "RestorerRun", "corrupt", "evaluate", "load",
           "restore_files", "train"]
