"""Generation: GAN, VAE, gated PixelCNN and diffusion, conditioned on a class, free text or an image."""

from recgen.lazy import lazy_exports

__all__ = ["FAMILY_DEFAULTS", "GenerateConfig", "GeneratorRun", "SampleOptions", "distill", "load", "save_samples",
           "train"]
__getattr__ = lazy_exports(__name__, {**dict.fromkeys(["FAMILY_DEFAULTS", "GenerateConfig"], "recgen.generate.config"),
                                      **dict.fromkeys(["GeneratorRun", "load", "train"], "recgen.generate.api"),
                                      "SampleOptions": "recgen.generate.options",
                                      "save_samples": "recgen.generate.run",
                                      "distill": "recgen.generate.student"})
