"""Options of `recgen augment` (AugmentConfig: the CLI flags, config.yaml keys and Python keywords). Kept free of
torch so that the command line can build its options without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from recgen.config import AT_LEAST_ONE, FOLDER_NAME, FRACTION, NOT_NEGATIVE, Options, device_name, one_of, opt
from recgen.data.options import augment_spec
from recgen.errors import RecgenError


def ratio_list(name: str, value: str) -> str:
    """Comma-separated synthetic-per-real ratios, each >= 0, with 0 (the real-only arm) among them."""
    try:
        ratios = [float(r) for r in value.split(",")]
    except ValueError:
        raise RecgenError(f"{name}: expected comma-separated numbers, got {value!r}") from None
    if any(r < 0 for r in ratios) or 0.0 not in ratios:
        raise RecgenError(f"{name} must be >= 0 and include 0 (the real-only arm), got {value!r}")
    return value


@dataclass
class AugmentConfig(Options):
    data: str = opt("fashion-mnist", "named dataset or path (needs a test split)")
    data_dir: str = opt("", "where named datasets are looked for first")
    real_per_class: int = opt(10, "real training images per class (the majority classes' count with "
                              "--imbalance)", check=AT_LEAST_ONE)
    imbalance: float = opt(0.0, "minority classes keep this share of real_per_class (e.g. 0.1); 0 = balanced",
                           check=FRACTION)
    minority: str = opt("", "minority class names or indices, comma-separated (with --imbalance)")
    generator: str = opt("", "a run trained on exactly this subset (else leakage); seeds then vary "
                         "recognizers")
    # Default generator: class-conditional diffusion on flipped, shifted copies (it does not replay them).
    generator_model: str = opt("diffusion", "family trained on each seed's subset when --generator is not "
                               "given")
    generator_steps: int = opt(1500, "optimizer steps for that generator", check=AT_LEAST_ONE)
    generator_augment: str = opt("flip+crop", "its training augmentations ('+'-joined, as `generate train "
                                 "--augment`)", check=augment_spec)
    generator_augment_p: float = opt(0.0, "diffusion generator: non-leaking augmentation chance (as "
                                     "`generate --augment-p`)")
    allow_leak: bool = opt(False, "use a --generator trained on more data anyway; results are labelled LEAKY")
    guidance: float = opt(0.0, "the generator's classifier-free guidance when sampling (0 = its run's "
                          "default)", check=NOT_NEGATIVE)
    precision: str = opt("fp32", "the generator's sampling precision: fp32 | bf16 (faster on CPUs with AMX "
                         "or AVX-512 BF16, and on GPUs)", check=one_of("fp32", "bf16", expected="fp32 or bf16"))
    ratios: str = opt("0,4,16", "synthetic images per real image of a targeted class (0 = real only)",
                      check=ratio_list)
    target_weak: int = opt(0, "synthesize for the k lowest-recall classes only (0: all; --imbalance: "
                           "minority)", check=NOT_NEGATIVE)
    # Oversampling is the textbook remedy for imbalance: a generator's gain is only worth reporting over it.
    oversample: bool = opt(True, "with --imbalance: repeat the real minority images to the majority count in a "
                           "real-only arm of its own and in every synthetic arm (--no-oversample: synthetic arms "
                           "add to the subset as it is)")
    # Class-balanced generator training: at 1:10 a minority image fills 1 batch slot of 91 otherwise.
    generator_balance: bool = opt(True, "with --imbalance: train the generator on the oversampled subset "
                                  "(--no-generator-balance: on the subset as drawn)")
    seeds: int = opt(3, "repetitions with different subsets, generators and recognizers", check=AT_LEAST_ONE)
    # The best ratio was picked on the test figures it then reported, which flatters it; it is picked on real images
    # held out from the training pool instead (none in any arm's training set; balanced, like the test set). It is
    # the experimenter's set: a user with 10 images per class has no 100 more of each and takes the ratio from docs.
    val_per_class: int = opt(
        100,
        "real images per class to choose the ratio on (0: choose on the test set, as before)",
        check=NOT_NEGATIVE)
    # Every gain is over the real-only arm, so it gets the best recognizer found (erasing, arXiv 1708.04896).
    steps: int = opt(1500, "recognizer optimizer steps, the same for every arm", check=AT_LEAST_ONE)
    recognizer_augment: str = opt("flip+crop+erase", "the recognizers' training augmentations ('+'-joined, "
                                  "as classify's)", check=augment_spec)
    batch_size: int = opt(64, "recognizer batch size", check=AT_LEAST_ONE)
    threads: int = opt(0, "torch threads (0 = default)", check=NOT_NEGATIVE)
    device: str = opt("auto", "auto | cpu | cuda", check=device_name)
    out: str = opt("runs", "root folder of run directories")
    name: str = opt("augment", "run name", check=FOLDER_NAME)

    def check_together(self):
        if self.guidance and not self.generator and self.generator_model not in ("diffusion", "pixelcnn"):
            raise RecgenError(f"guidance: classifier-free guidance applies to diffusion and pixelcnn generators "
                              f"(> 0), got {self.guidance} for {self.generator_model}")
        if not self.generator:  # the generator's own options, as `generate train` checks them
            from recgen.generate.config import GenerateConfig, resolve

            try:
                resolve(GenerateConfig(model=self.generator_model, augment=self.generator_augment,
                                       augment_p=self.generator_augment_p))
            except RecgenError as e:
                raise RecgenError(f"generator_{e}") from None
