"""Generation: GAN, VAE, gated PixelCNN and diffusion, conditioned on a class, free text or an image."""

from recgen.generate.api import FAMILY_DEFAULTS, GenerateConfig, GeneratorRun, load, save_samples, train

__all__ = ["FAMILY_DEFAULTS", "GenerateConfig", "GeneratorRun", "load", "save_samples", "train"]
