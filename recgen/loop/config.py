"""Options of `recgen augment` (AugmentConfig: the CLI flags, config.yaml keys and Python keywords). Kept free of
torch so that the command line can build its options without loading it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AugmentConfig:
    data: str = "fashion-mnist"  # named dataset or path (needs a test split)
    data_dir: str = ""  # where named datasets are looked for first
    real_per_class: int = 10  # real training images per class (the majority classes' count with --imbalance)
    imbalance: float = 0.0  # minority classes keep this share of real_per_class (e.g. 0.1); 0 = balanced
    minority: str = ""  # minority class names or indices, comma-separated (with --imbalance)
    generator: str = ""  # a run trained on exactly this subset (else leakage); seeds then vary recognizers
    # Default generator: class-conditional diffusion on flipped, shifted copies (it does not replay them).
    generator_model: str = "diffusion"  # family trained on each seed's subset when --generator is not given
    generator_steps: int = 1500  # optimizer steps for that generator
    generator_augment: str = "flip+crop"  # its training augmentations ('+'-joined, as `generate train --augment`)
    generator_augment_p: float = 0.0  # diffusion generator: non-leaking augmentation chance (as `generate --augment-p`)
    allow_leak: bool = False  # use a --generator trained on more data anyway; results are labelled LEAKY
    guidance: float = 0.0  # the generator's classifier-free guidance when sampling (0 = its run's default)
    precision: str = "fp32"  # the generator's sampling precision: fp32 | bf16 (faster on CPUs with AMX and GPUs)
    ratios: str = "0,4,16"  # synthetic images per real image of a targeted class (0 = real only)
    target_weak: int = 0  # synthesize for the k lowest-recall classes only (0: all; --imbalance: minority)
    # Oversampling is the textbook remedy for imbalance: a generator's gain is only worth reporting over it.
    oversample: bool = True  # with --imbalance: repeat the real minority images to the majority count in a real-only
    # arm of its own and in every synthetic arm (--no-oversample: synthetic arms add to the subset as it is)
    # Class-balanced generator training: at 1:10 a minority image fills 1 batch slot of 91 otherwise.
    generator_balance: bool = True  # with --imbalance: train the generator on the oversampled subset
    # (--no-generator-balance: on the subset as drawn)
    seeds: int = 3  # repetitions with different subsets, generators and recognizers
    # The best ratio was picked on the test figures it then reported, which flatters it; it is picked on real images
    # held out from the training pool instead (none in any arm's training set; balanced, like the test set). It is
    # the experimenter's set: a user with 10 images per class has no 100 more of each and takes the ratio from docs.
    val_per_class: int = 100  # real images per class to choose the ratio on (0: choose on the test set, as before)
    # Every gain is over the real-only arm, so it gets the best recognizer found (erasing, arXiv 1708.04896).
    steps: int = 1500  # recognizer optimizer steps, the same for every arm
    recognizer_augment: str = "flip+crop+erase"  # the recognizers' training augmentations ('+'-joined, as classify's)
    batch_size: int = 64  # recognizer batch size
    threads: int = 0  # torch threads (0 = default)
    device: str = "auto"  # auto | cpu | cuda
    out: str = "runs"  # root folder of run directories
    name: str = "augment"  # run name
