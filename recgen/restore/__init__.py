"""Restoration: inpainting, denoising and x2 super-resolution with a trained restorer U-Net or a diffusion generator
(DDNM / RePaint), measured against OpenCV's classical baselines in PSNR, SSIM and recognition."""

from recgen.lazy import lazy_exports

__all__ = ["DiffusionRestorer", "Observation", "RestoreConfig", "RestorerRun", "corrupt", "evaluate", "load",
           "restore_files", "train"]
__getattr__ = lazy_exports(__name__, {
    "RestoreConfig": "recgen.restore.config", **dict.fromkeys(["DiffusionRestorer", "RestorerRun", "evaluate", "load",
                                                               "train"], "recgen.restore.api"),
    **dict.fromkeys(["Observation", "corrupt"], "recgen.restore.degrade"),
    "restore_files": "recgen.restore.files"})
