"""Generation: GAN, VAE, gated PixelCNN and diffusion, conditioned on a class, free text or an image."""

from recgen.generate.api import GeneratorRun, load, train
from recgen.generate.config import FAMILY_DEFAULTS, GenerateConfig
from recgen.generate.run import save_samples

__all__ = ["FAMILY_DEFAULTS", "GenerateConfig", "GeneratorRun", "load", "save_samples", "train"]
