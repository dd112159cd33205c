"""Options of `recgen generate train` (GenerateConfig: the CLI flags, config.yaml keys and Python keywords), the
per-family defaults, and the mapping from those options to each family's architecture config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from recgen.config import TrainConfig
from recgen.data.options import DataOptions
from recgen.errors import RecgenError


def __getattr__(name: str):
    """FAMILIES = {name: (module, architecture config, training task)}, built on first use: the family modules load
    torch, and the command line reads GenerateConfig's options without it."""
    if name == "FAMILIES":
        from recgen.generate import diffusion, gan, pixelcnn, student, vae

        return {"gan": (gan, gan.GANConfig, gan.GANTask), "vae": (vae, vae.VAEConfig, vae.VAETask),
                "pixelcnn": (pixelcnn, pixelcnn.PixelCNNConfig, pixelcnn.PixelCNNTask),
                "diffusion": (diffusion, diffusion.DiffusionConfig, diffusion.DiffusionTask),
                "student": (student, student.StudentConfig, student.StudentTask)}  # issue 34: distilled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Training options each family fills in when left at 0 (-1 for ema), sized for about 20 minutes of 2 CPU cores on
# Fashion-MNIST (58.8k training images at 28x28) from per-step times measured on a lightly loaded machine, in fp32
# and, where re-sized, in bf16 (--precision auto on a CPU with AMX):
#   gan        ~0.35 s per step of 64 (bf16 ~0.15) -> 8 epochs  = 7.3k steps
#   vae        ~0.17 s per step of 128             -> 10 epochs = 4.6k steps
#   pixelcnn   ~1.0 s per step of 64 (bf16 ~0.6)   -> 2 epochs  = 1.8k steps (pixel-by-pixel models are the slow ones)
#   diffusion  ~0.7 s per step of 64 (bf16 ~0.37)  -> 3 epochs  = 2.8k steps
# bench/generate.py measures what a default run really takes.
# guidance: the classifier-free guidance scale of the grids and of `sample` (1 = none, the only choice for GAN/VAE).
# PixelCNN at 2 epochs, 200 judged samples per scale (bench/temperature.py): 68 % recognizable unguided, 89.5 % at 2,
# 93.5 % at 3, 91 % at 4.
FAMILY_DEFAULTS = {
    "gan": dict(epochs=8, batch_size=64, lr=2e-4, ema=0.999, guidance=1.0),
    "vae": dict(epochs=10, batch_size=128, lr=2e-3, ema=0.0, guidance=1.0),
    "pixelcnn": dict(epochs=2, batch_size=64, lr=2e-3, ema=0.0, guidance=3.0),
    "diffusion": dict(epochs=3, batch_size=64, lr=1e-3, ema=0.995, guidance=2.0),
}


@dataclass
class GenerateConfig(DataOptions, TrainConfig):
    filled_later = ("epochs", "batch_size", "lr", "ema")  # by resolve(), from FAMILY_DEFAULTS
    epochs: int = 0  # passes over the training set (0 = the family's default, sized for ~20 min on 2 CPU cores)
    batch_size: int = 0  # images per optimizer step (0 = the family's default)
    lr: float = 0.0  # peak learning rate (0 = the family's default; the GAN's discriminator uses twice this)
    weight_decay: float = 0.0  # decoupled weight decay (generators train without)
    schedule: str = "cosine"  # onecycle | cosine | linear | constant (linear warmup over `warmup` of the steps)
    warmup: float = 0.02  # fraction of steps spent warming up
    ema: float = -1.0  # EMA decay of the sampled weights (0 = off; -1 = family default: GAN 0.999, diffusion 0.995)
    model: str = "diffusion"  # gan | vae | pixelcnn | diffusion
    size: int = 0  # resize images to size x size (0 = the dataset's own size; gan/vae/diffusion need a multiple of 4)
    # A model learns, and samples, the augmented distribution: label-preserving moves (flip, crop) only widen what
    # it has seen, which matters when it trains for hundreds of epochs on a few images (`recgen augment`).
    augment: str = "none"  # training-image augmentations, '+'-joined: flip crop affine rotate jitter erase noise
    # diffusion only: moves the network is told of, so they widen what it learns without showing in samples
    augment_p: float = 0.0  # diffusion: chance an image is rotated/scaled/shifted, the move given as a condition
    val_fraction: float = 0.02  # share of the training set held out for per-epoch validation (0 = none)
    class_conditional: bool = True  # condition on the class label (sample with --class NAME)
    text_conditional: bool = False  # condition on MiniLM embeddings of class descriptions (sample with --prompt)
    base: int = 0  # base channel width (0 = family default): GAN G/D 32, VAE 32, PixelCNN 32, UNet 32 (x1, x2, x2)
    latent_dim: int = 0  # GAN noise / VAE latent size (0 = family default: 64 / 16)
    layers: int = 0  # PixelCNN gated layers / UNet ResNet blocks per level (0 = family default: 8 / 1)
    levels: int = 256  # PixelCNN softmax levels per channel (256 = 8-bit data; fewer quantise the data)
    mode_seeking: float = 1.0  # gan: weight of the mode-seeking term against a noise-blind generator (0 = off)
    cond_dropout: float = 0.1  # diffusion, pixelcnn: share of images trained without their condition (for guidance)
    sampler: str = "dpm"  # diffusion sampler for the per-epoch grids and `sample`'s default: ddpm | ddim | dpm
    steps: int = 20  # diffusion sampling steps for the grids and `sample`'s default
    guidance: float = 0.0  # guidance scale of the grids and `sample` (1 = none; 0 = default: diffusion 2, pixelcnn 3)


def cond_mode(cfg: GenerateConfig) -> str:
    return "text" if cfg.text_conditional else "class" if cfg.class_conditional else "none"


def resolve(cfg: GenerateConfig) -> GenerateConfig:
    """Check the options and fill in the family's defaults, so config.yaml records what actually ran."""
    from recgen.data import build_augment
    from recgen.generate import diffusion

    if cfg.model not in FAMILY_DEFAULTS:
        raise RecgenError(f"model must be one of {', '.join(FAMILY_DEFAULTS)}, got {cfg.model!r}")
    fill = {k: v for k, v in FAMILY_DEFAULTS[cfg.model].items()
            if getattr(cfg, k) == (-1.0 if k == "ema" else 0)}
    cfg = dataclasses.replace(cfg, **fill)
    if cfg.sampler not in diffusion.SAMPLERS:
        raise RecgenError(f"sampler must be one of {', '.join(diffusion.SAMPLERS)}, got {cfg.sampler!r}")
    build_augment(cfg.augment)  # an unknown name fails here, before a run directory exists
    if not 0.0 <= cfg.augment_p <= 1.0:
        raise RecgenError(f"augment_p must be a probability between 0 and 1, got {cfg.augment_p}")
    if cfg.augment_p and cfg.model != "diffusion":
        raise RecgenError(f"augment_p (non-leaking augmentation) is for diffusion models, not {cfg.model}")
    if not 2 <= cfg.levels <= 256:
        raise RecgenError(f"levels must be between 2 and 256, got {cfg.levels}")
    return cfg


def arch_config(cfg: GenerateConfig, shape: tuple[int, int, int], num_classes: int):
    """The family's architecture config from the generic options and the data's (C, H, W)."""
    from recgen.generate import diffusion, gan, pixelcnn, vae

    c, h, w = shape
    if cfg.model != "pixelcnn" and (h % 4 or w % 4):
        raise RecgenError(f"{cfg.model} needs image sides divisible by 4, got {h}x{w}; pass --size 28 or --size 32")
    common = dict(channels=c, height=h, width=w, num_classes=num_classes, cond=cond_mode(cfg))
    b, z, n = cfg.base, cfg.latent_dim, cfg.layers
    if cfg.model == "gan":
        return gan.GANConfig(**common, **({"g_base": b, "d_base": b} if b else {}), **({"z_dim": z} if z else {}))
    if cfg.model == "vae":
        return vae.VAEConfig(**common, **({"base": b} if b else {}), **({"latent_dim": z} if z else {}))
    if cfg.model == "pixelcnn":
        return pixelcnn.PixelCNNConfig(**common, levels=cfg.levels, dilations=pixelcnn.DILATIONS,
                                       cond_dropout=cfg.cond_dropout,
                                       **({"hidden": b} if b else {}),
                                       **({"layers": n} if n else {}))
    d = diffusion.DiffusionConfig(**common, cond_dropout=cfg.cond_dropout, **({"layers_per_block": n} if n else {}),
                                  augment_dim=diffusion.AUGMENT_DIM if cfg.augment_p else 0)
    if b:
        d.block_out_channels, d.norm_groups = (b, 2 * b, 2 * b), min(8, b)
    return d


# -------------------------------------------------------------------------------- issue 34: few-step students
# The options a student takes from its teacher run (data, conditioning, architecture): `distill` copies them
# from the teacher's config.yaml, so the student trains on exactly the teacher's images; it refuses them.
TEACHER_OWNED = ("data", "data_dir", "size", "channels", "limit", "eval_limit", "val_fraction", "model",
                 "augment", "augment_p", "class_conditional", "text_conditional", "base", "latent_dim",
                 "layers", "levels", "mode_seeking", "cond_dropout", "sampler")


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

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.grid <= 1000:
            raise RecgenError(f"grid must be between 1 and 1000 teacher steps, got {self.grid}")
        if not 1 <= self.steps <= min(8, self.grid):
            raise RecgenError(f"steps must be between 1 and {min(8, self.grid)} for a student, got "
                              f"{self.steps}")
        if not 0.0 <= self.target_ema < 1.0:
            raise RecgenError(f"target_ema must be a decay in [0, 1), got {self.target_ema}")
