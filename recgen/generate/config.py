"""Options of `recgen generate train` (GenerateConfig: the CLI flags, config.yaml keys and Python keywords), the
per-family defaults, and the mapping from those options to each family's architecture config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from recgen.config import AT_LEAST_ONE, FRACTION, NOT_NEGATIVE, Rule, TrainConfig, one_of, opt
from recgen.data.options import DataOptions, augment_spec
from recgen.errors import RecgenError
from recgen.generate.family import REGISTRY, get_family


# the diffusion samplers: option value -> diffusers scheduler class (recgen.generate.diffusion builds them)
SAMPLERS = {"ddpm": "DDPMScheduler", "ddim": "DDIMScheduler", "dpm": "DPMSolverMultistepScheduler"}
PROBABILITY = Rule(lambda v: 0.0 <= v <= 1.0, "a probability between 0 and 1")
LEVELS = Rule(lambda v: 2 <= v <= 256, "between 2 and 256")


def __getattr__(name: str):
    """FAMILIES = {name: (module, architecture config, training task)}, built on first use: the family modules load
    torch, and the command line reads GenerateConfig's options without it. New code asks
    recgen.generate.family.get_family(name) for the family's GeneratorFamily instead."""
    if name == "FAMILIES":
        import importlib

        return {k: (importlib.import_module(REGISTRY[k].module), f.arch_class, f.task_class)
                for k, f in ((k, get_family(k)) for k in REGISTRY)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Training options each family fills in when left at 0 (-1 for ema): declared with the family's registration
# (recgen/generate/family.py, REGISTRY).
FAMILY_DEFAULTS = {name: entry.defaults for name, entry in REGISTRY.items() if entry.defaults is not None}
# Architecture options renamed for one meaning each; the old names still load (config.yaml of earlier runs,
# the keywords and hidden flags of earlier scripts) and become the new name of the chosen family.
DEPRECATED = {"base": {"gan": "gan_width", "vae": "vae_width", "pixelcnn": "pixelcnn_width",
                       "diffusion": "unet_width"},
              "latent_dim": {"gan": "latent_size", "vae": "latent_size"},
              "layers": {"pixelcnn": "pixelcnn_layers", "diffusion": "unet_blocks"}}


def _arch(text: str) -> Any:
    return opt(0, text, check=NOT_NEGATIVE)


def _deprecated(text: str) -> Any:
    """An old option name: accepted (hidden from --help) and moved to its new name (rename_deprecated)."""
    return field(default=0, metadata={"help": text, "check": NOT_NEGATIVE, "deprecated": True})


@dataclass
class GenerateConfig(DataOptions, TrainConfig):
    filled_later = ("epochs", "batch_size", "lr", "ema")  # by resolve(), from FAMILY_DEFAULTS
    epochs: int = opt(
        0,
        "passes over the training set (0 = the family's default, sized for ~20 min on 2 CPU cores)")
    batch_size: int = opt(0, "images per optimizer step (0 = the family's default)")
    lr: float = opt(0.0, "peak learning rate (0 = the family's default; the GAN's discriminator uses twice "
                    "this)")
    weight_decay: float = opt(0.0, "decoupled weight decay (generators train without)")
    schedule: str = opt(
        "cosine",
        "onecycle | cosine | linear | constant (linear warmup over `warmup` of the steps)")
    warmup: float = opt(0.02, "fraction of steps spent warming up")
    ema: float = opt(-1.0, "EMA decay of the sampled weights (0 = off; -1 = family default: GAN 0.999, "
                     "diffusion 0.995)")
    model: str = opt("diffusion", "gan | vae | pixelcnn | diffusion")
    size: int = opt(0, "resize images to size x size (0 = the dataset's own size; gan/vae/diffusion need a "
                    "multiple of 4)")
    # A model learns, and samples, the augmented distribution: label-preserving moves (flip, crop) only widen what
    # it has seen, which matters when it trains for hundreds of epochs on a few images (`recgen augment`).
    augment: str = opt("none", "training-image augmentations, '+'-joined: flip crop affine rotate jitter "
                       "erase noise", check=augment_spec)
    # diffusion only: moves the network is told of, so they widen what it learns without showing in samples
    augment_p: float = opt(0.0, "diffusion: chance an image is rotated/scaled/shifted, the move given as a "
                           "condition", check=PROBABILITY)
    val_fraction: float = opt(0.02, "share of the training set held out for per-epoch validation (0 = none)")
    class_conditional: bool = opt(True, "condition on the class label (sample with --class NAME)")
    text_conditional: bool = opt(False, "condition on MiniLM embeddings of class descriptions (sample with "
                                 "--prompt)")
    gan_width: int = _arch("gan: generator and discriminator channels at full resolution (0 = 32)")
    vae_width: int = _arch("vae: encoder channels at full resolution (0 = 32)")
    latent_size: int = _arch("gan: noise vector size (0 = 64); vae: latent code size (0 = 16)")
    pixelcnn_width: int = _arch("pixelcnn: channels of each stack (0 = 32)")
    pixelcnn_layers: int = _arch("pixelcnn: gated layers (0 = 8)")
    unet_width: int = _arch("diffusion: UNet channels at full resolution, x2 at 1/2 and 1/4 (0 = 32)")
    unet_blocks: int = _arch("diffusion: UNet ResNet blocks per resolution level (0 = 1)")
    base: int = _deprecated("deprecated: gan_width, vae_width, pixelcnn_width or unet_width by --model")
    latent_dim: int = _deprecated("deprecated: latent_size")
    layers: int = _deprecated("deprecated: pixelcnn_layers or unet_blocks by --model")
    levels: int = opt(256, "PixelCNN softmax levels per channel (256 = 8-bit data; fewer quantise the data)", check=LEVELS)
    mode_seeking: float = opt(
        1.0,
        "gan: weight of the mode-seeking term against a noise-blind generator (0 = off)", check=NOT_NEGATIVE)
    cond_dropout: float = opt(0.1, "diffusion, pixelcnn: share of images trained without their condition "
                              "(for guidance)", check=FRACTION)
    sampler: str = opt(
        "dpm",
        "diffusion sampler for the per-epoch grids and `sample`'s default: ddpm | ddim | dpm", check=one_of(*SAMPLERS))
    steps: int = opt(20, "diffusion sampling steps for the grids and `sample`'s default", check=AT_LEAST_ONE)
    guidance: float = opt(0.0, "guidance scale of the grids and `sample` (1 = none; 0 = default: diffusion "
                          "2, pixelcnn 3)", check=NOT_NEGATIVE)

    def __post_init__(self):
        super().__post_init__()  # range checks, the deprecated names included
        rename_deprecated(self)

    def check_together(self):
        super().check_together()
        if self.augment_p and self.model != "diffusion":
            raise RecgenError(f"augment_p (non-leaking augmentation) is for diffusion models, not {self.model}")


def rename_deprecated(cfg: GenerateConfig) -> None:
    """Move a value given under an old name (base, latent_dim, layers) to the chosen family's new one; the old
    name is then 0 again, so config.yaml records the new one. A family without such an option ignores it, as
    before."""
    for old, by_family in DEPRECATED.items():
        value, new = getattr(cfg, old), by_family.get(cfg.model)
        if not value:
            continue
        if new is not None and getattr(cfg, new) not in (0, value):
            raise RecgenError(f"{old} is the old name of {new}: give only {new}")
        if new is not None:
            setattr(cfg, new, value)
        setattr(cfg, old, 0)


def cond_mode(cfg: GenerateConfig) -> str:
    return "text" if cfg.text_conditional else "class" if cfg.class_conditional else "none"


def resolve(cfg: GenerateConfig) -> GenerateConfig:
    """Fill in the family's defaults, so config.yaml records what actually ran, and refuse options of another
    family (each option's own range is checked when the config is built)."""
    if cfg.model not in FAMILY_DEFAULTS:  # a registered family made another way (a student: generate distill)
        raise RecgenError(f"model must be one of {', '.join(FAMILY_DEFAULTS)}, got {cfg.model!r}")
    family = get_family(cfg.model)
    fill = {k: v for k, v in FAMILY_DEFAULTS[cfg.model].items()
            if getattr(cfg, k) == (-1.0 if k == "ema" else 0)}
    cfg = dataclasses.replace(cfg, **fill)
    for name in {o for k in REGISTRY for o in get_family(k).options} - set(family.options):
        if getattr(cfg, name):
            owners = [k for k in REGISTRY if name in get_family(k).options]
            raise RecgenError(f"{name} is an option of {' and '.join(owners)} runs, not {cfg.model}")
    return cfg


def arch_config(cfg: GenerateConfig, shape: tuple[int, int, int], num_classes: int):
    """The family's architecture config from the options and the data's (C, H, W)."""
    c, h, w = shape
    family = get_family(cfg.model)
    k = family.side_multiple
    if h % k or w % k:
        raise RecgenError(f"{cfg.model} needs image sides divisible by {k}, got {h}x{w}; pass --size 28 or "
                          "--size 32")
    common = dict(channels=c, height=h, width=w, num_classes=num_classes, cond=cond_mode(cfg))
    return family.make_arch(cfg, common)


# ------------------------------------------------------------------------------------------ few-step students
# The options a student takes from its teacher run (data, conditioning, architecture): `distill` copies them
# from the teacher's config.yaml, so the student trains on exactly the teacher's images; it refuses them.
SOLVERS = ("ddim", "dpm2s")  # the student's teacher steps (recgen.generate.student.teacher_step)
TEACHER_OWNED = ("data", "data_dir", "size", "channels", "limit", "eval_limit", "val_fraction", "model",
                 "augment", "augment_p", "class_conditional", "text_conditional", "base", "latent_dim",
                 "layers", "unet_width", "unet_blocks", "gan_width", "vae_width", "latent_size", "pixelcnn_width",
                 "pixelcnn_layers", "levels", "mode_seeking", "cond_dropout", "sampler")


@dataclass
class DistillConfig(GenerateConfig):
    """Options of `recgen generate distill` (recgen.generate.student): a GenerateConfig, so a student run
    opens like any generator run, whose teacher-owned fields are copied from the teacher."""

    filled_later = ()
    teacher: str = field(default="", metadata={
        "help": "the diffusion run to distil (its data, conditioning and guidance carry over)"})
    model: str = "student"
    epochs: int = field(default=1, metadata={"help": "passes over the teacher's training images"})
    batch_size: int = field(default=64, metadata={"help": "images per optimizer step"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate (fine-tunes teacher weights)"})
    ema: float = field(default=0.99, metadata={"help": "EMA decay of the sampled student weights (0 = off)"})
    steps: int = field(default=4, metadata={
        "help": "most sampling steps the student is distilled for and may sample with (1, 2 or 4)"})
    guidance: float = field(default=0.0, metadata={"help": "guidance scale distilled in (0 = the teacher's)"})
    grid: int = field(default=10, metadata={
        "help": "teacher ODE steps over the noise schedule (skipping-step grid of arXiv 2310.04378)"})
    target_ema: float = field(default=0.95, metadata={"help": "EMA decay of the consistency target network"})
    adversarial: float = field(default=0.5, metadata={
        "help": "weight of an adversarial term: a discriminator trained beside the student scores its x_0 "
                "predictions against real images (arXiv 2311.17042; 0 = consistency loss only)"})
    solver: str = field(default="ddim", metadata={
        "help": "the teacher's ODE step between grid points: ddim (one guided evaluation) or dpm2s "
                "(DPM-Solver++(2S), two: a truer trajectory at about a quarter fewer distillation steps "
                "per second)"})

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.grid <= 1000:
            raise RecgenError(f"grid must be between 1 and 1000 teacher steps, got {self.grid}")
        if not 1 <= self.steps <= min(8, self.grid):
            raise RecgenError(f"steps must be between 1 and {min(8, self.grid)} for a student, got "
                              f"{self.steps}")
        if self.solver not in SOLVERS:
            raise RecgenError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.adversarial < 0:
            raise RecgenError(f"adversarial must be a weight >= 0, got {self.adversarial}")
        if not 0.0 <= self.target_ema < 1.0:
            raise RecgenError(f"target_ema must be a decay in [0, 1), got {self.target_ema}")
