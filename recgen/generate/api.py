"""Generation: train a GAN, VAE, PixelCNN or diffusion model through the shared loop; sample, interpolate, vary.

    run = recgen.generate.train(model="diffusion", data="fashion-mnist")          # class-conditional by default
    x, y = run.sample(16, class_="ankle boot", sampler="ddim", steps=20, guidance=2.0, seed=0)   # uint8 (16,28,28,1)
    x, y = run.sample(8, like="boot.png", strength=0.6)                          # SDEdit variations
    run = recgen.generate.load("runs/generate/diffusion-1")

Defaults (FAMILY_DEFAULTS) are sized for about 20 minutes on 2 CPU cores on Fashion-MNIST; bench/generate.py
measures them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen import plots
from recgen.classify.api import load_splits
from recgen.config import TrainConfig, from_dict, to_dict
from recgen.data import ImageSet, has_test_split, read_image, resize_batch, to_channels
from recgen.errors import RecgenError
from recgen.generate import diffusion, gan, pixelcnn, vae
from recgen.generate.common import from_uint8, grid_labels, save_grid, to_uint8
from recgen.generate.condition import batch_condition, embed_texts, nearest_class, phrase_table, resolve_class
from recgen.report import image, table, write_report
from recgen.runs import Run
from recgen.train import Trainer, resolve_device, seeded

FAMILIES = {  # module, architecture config, training task
    "gan": (gan, gan.GANConfig, gan.GANTask),
    "vae": (vae, vae.VAEConfig, vae.VAETask),
    "pixelcnn": (pixelcnn, pixelcnn.PixelCNNConfig, pixelcnn.PixelCNNTask),
    "diffusion": (diffusion, diffusion.DiffusionConfig, diffusion.DiffusionTask),
}
# Training options each family fills in when left at 0 (-1 for ema): sized for ~20 min of 2 CPU cores on
# Fashion-MNIST (60k images, 28x28); bench/generate.py measures them.
FAMILY_DEFAULTS = {
    "gan": dict(epochs=4, batch_size=64, lr=2e-4, ema=0.999),
    "vae": dict(epochs=20, batch_size=128, lr=2e-3, ema=0.0),
    "pixelcnn": dict(epochs=2, batch_size=64, lr=2e-3, ema=0.0),
    "diffusion": dict(epochs=2, batch_size=64, lr=1e-3, ema=0.995),
}


@dataclass
class GenerateConfig(TrainConfig):
    epochs: int = 0  # passes over the training set (0 = the family's default, sized for ~20 min on 2 CPU cores)
    batch_size: int = 0  # images per optimizer step (0 = the family's default)
    lr: float = 0.0  # peak learning rate (0 = the family's default; the GAN's discriminator uses twice this)
    weight_decay: float = 0.0  # decoupled weight decay (generators train without)
    schedule: str = "cosine"  # onecycle | cosine | linear | constant (linear warmup over `warmup` of the steps)
    warmup: float = 0.02  # fraction of steps spent warming up
    ema: float = -1.0  # EMA decay of the sampled weights (0 = off; -1 = family default: GAN 0.999, diffusion 0.995)
    model: str = "diffusion"  # gan | vae | pixelcnn | diffusion
    data: str = "fashion-mnist"  # named dataset or path (IDX folder, CIFAR folder, .npz, image folder)
    data_dir: str = ""  # where named datasets are looked for first (then $RECGEN_DATA, then system paths)
    size: int = 0  # resize images to size x size (0 = the dataset's own size; gan/vae/diffusion need a multiple of 4)
    channels: int = 0  # convert to 1 (gray) or 3 (RGB) channels (0 = the dataset's own)
    limit: int = 0  # use at most this many training images per class (0 = all)
    val_fraction: float = 0.02  # share of the training set held out for per-epoch validation (0 = none)
    class_conditional: bool = True  # condition on the class label (sample with --class NAME)
    text_conditional: bool = False  # condition on MiniLM embeddings of class descriptions (sample with --prompt)
    base: int = 0  # base channel width (0 = family default): GAN G/D 32, VAE 32, PixelCNN 32, UNet 32 (x1, x2, x2)
    latent_dim: int = 0  # GAN noise / VAE latent size (0 = family default: 64 / 16)
    layers: int = 0  # PixelCNN gated layers / UNet ResNet blocks per level (0 = family default: 8 / 1)
    levels: int = 256  # PixelCNN softmax levels per channel (256 = 8-bit data; fewer quantise the data)
    cond_dropout: float = 0.1  # diffusion: share of images trained without their condition (classifier-free guidance)
    sampler: str = "dpm"  # diffusion sampler for the per-epoch grids and `sample`'s default: ddpm | ddim | dpm
    steps: int = 20  # diffusion sampling steps for the grids and `sample`'s default
    guidance: float = 2.0  # classifier-free guidance scale for the grids and `sample`'s default (1 = none)


def cond_mode(cfg: GenerateConfig) -> str:
    return "text" if cfg.text_conditional else "class" if cfg.class_conditional else "none"


def resolve(cfg: GenerateConfig) -> GenerateConfig:
    """Check the options and fill in the family's defaults, so config.yaml records what actually ran."""
    if cfg.model not in FAMILIES:
        raise RecgenError(f"model must be one of {', '.join(FAMILIES)}, got {cfg.model!r}")
    fill = {k: v for k, v in FAMILY_DEFAULTS[cfg.model].items()
            if getattr(cfg, k) == (-1.0 if k == "ema" else 0)}
    cfg = dataclasses.replace(cfg, **fill)
    if cfg.steps <= 0:
        raise RecgenError(f"steps must be a positive number of sampling steps, got {cfg.steps}")
    if cfg.sampler not in diffusion.SAMPLERS:
        raise RecgenError(f"sampler must be one of {', '.join(diffusion.SAMPLERS)}, got {cfg.sampler!r}")
    if not 2 <= cfg.levels <= 256:
        raise RecgenError(f"levels must be between 2 and 256, got {cfg.levels}")
    return cfg


def arch_config(cfg: GenerateConfig, shape: tuple[int, int, int], num_classes: int):
    """The family's architecture config from the generic options and the data's (C, H, W)."""
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
        return pixelcnn.PixelCNNConfig(**common, levels=cfg.levels, **({"hidden": b} if b else {}),
                                       **({"layers": n} if n else {}))
    d = diffusion.DiffusionConfig(**common, cond_dropout=cfg.cond_dropout, **({"layers_per_block": n} if n else {}))
    if b:
        d.block_out_channels, d.norm_groups = (b, 2 * b, 2 * b), min(8, b)
    return d


# --------------------------------------------------------------------------------------------------- run object
class GeneratorRun:
    """A trained generator in its run directory: sample, interpolate, decode, embed, evaluate."""

    def __init__(self, run: Run):
        self.run = run
        self.config = from_dict(GenerateConfig, run.options)
        self.info = run.read_model_json()
        self.family: str = self.info["family"]
        mod, arch_cls, _ = FAMILIES[self.family]
        self.family_module = mod
        self.arch = arch_cls(**self.info["args"])
        self.classes: list[str] = self.info["classes"]
        self.input_shape: tuple[int, int, int] = tuple(self.info["input_shape"])  # (C, H, W)
        self.device = resolve_device(self.config.device)
        self._modules = None

    @property
    def path(self) -> Path:
        return self.run.path

    def __repr__(self) -> str:
        return f"GeneratorRun({str(self.path)!r}, model={self.family!r}, cond={self.arch.cond!r})"

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks with their best weights (the EMA copy where one was kept), in eval mode."""
        if self._modules is None:
            mods = self.family_module.build(self.arch)
            w = self.run.load_weights("best")
            for name, m in mods.items():
                prefix = f"ema.{name}." if any(k.startswith(f"ema.{name}.") for k in w) else f"{name}."
                m.load_state_dict({k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)})
                m.to(self.device).eval()
            self._modules = mods
        return self._modules

    # ------------------------------------------------------------------------------------------- conditioning
    def _condition(self, n: int, class_=None, prompt=None) -> tuple[torch.Tensor | None, np.ndarray | None]:
        """(what the network is fed, the class labels recorded with the samples)."""
        mode = self.arch.cond
        if class_ is not None and prompt is not None:
            raise RecgenError("give either a class or a prompt, not both")
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise RecgenError("empty prompt: describe what to generate, e.g. --prompt 'a leather ankle boot'")
            if mode != "text":
                raise RecgenError(f"--prompt needs a run trained with --text-conditional; {self.path} is "
                                  f"{'class-conditional (use --class)' if mode == 'class' else 'unconditional'}")
            emb = embed_texts([prompt])
            label = int(nearest_class(emb, self.classes)[0])  # recorded for reference; the embedding is what counts
            return emb.expand(n, -1).to(self.device), np.full(n, label, dtype=np.int64)
        if class_ is not None:
            if mode == "none":
                raise RecgenError(f"--class needs a class- or text-conditional run; {self.path} is unconditional")
            labels = torch.full((n,), resolve_class(class_, self.classes), dtype=torch.long)
        elif mode == "none":
            return None, None
        else:
            labels = grid_labels(n, len(self.classes))  # one class per grid column
        if mode == "class":
            return labels.to(self.device), labels.numpy()
        names = [self.classes[int(i)] for i in labels]
        return embed_texts(names).to(self.device), labels.numpy()

    def _per_class_conditions(self) -> torch.Tensor:
        labels = torch.arange(len(self.classes))
        if self.arch.cond == "class":
            return labels.to(self.device)
        return embed_texts(self.classes).to(self.device)

    def _image(self, like) -> torch.Tensor:
        """A path or uint8 array -> (1, C, H, W) in [0, 1] at the run's size and channels."""
        if isinstance(like, np.ndarray):
            arr = like if like.ndim == 3 else like[..., None]
        else:
            p = Path(like)
            if not p.is_file():
                raise RecgenError(f"{like}: no such image file")
            arr = read_image(p)
        c, h, w = self.input_shape
        return from_uint8(resize_batch(to_channels(arr[None], c), (h, w))).to(self.device)

    # ---------------------------------------------------------------------------------------------- sampling
    def sample(self, n: int = 64, class_: int | str | None = None, prompt: str | None = None,
               like: str | Path | np.ndarray | None = None, sampler: str | None = None, steps: int | None = None,
               guidance: float | None = None, strength: float = 0.6, temperature: float = 1.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """n images as uint8 (n, H, W, C) and their class labels (n,) (None when unconditional).

        class_: index or name; prompt: free text (text-conditional runs); neither: classes in turn.
        like: an image to vary (VAE: re-encode and mix with prior noise; diffusion: SDEdit; PixelCNN: keep the top
        rows and complete the rest), `strength` in (0, 1] says how far from it to go.
        sampler / steps / guidance: diffusion only (defaults from the run's config).
        temperature: noise scale (GAN, VAE) or softmax temperature (PixelCNN). Same seed -> same images."""
        if n <= 0:
            raise RecgenError(f"n must be positive, got {n}")
        if steps is not None and steps <= 0:
            raise RecgenError(f"steps must be a positive number of sampling steps, got {steps}")
        if guidance is not None and self.arch.cond == "none":
            raise RecgenError("--guidance (classifier-free guidance) needs a class- or text-conditional run; "
                              f"{self.path} is unconditional")
        if self.family != "diffusion" and (sampler is not None or steps is not None or guidance is not None):
            raise RecgenError(f"--sampler/--steps/--guidance apply to diffusion runs; this is a {self.family} run")
        if not 0.0 < strength <= 1.0:
            raise RecgenError(f"strength must be in (0, 1], got {strength}")
        if temperature <= 0:
            raise RecgenError(f"temperature must be positive, got {temperature}")
        sampler = sampler or self.config.sampler
        steps = steps or self.config.steps
        guidance = self.config.guidance if guidance is None else guidance
        start = self._image(like) if like is not None else None
        if start is not None and self.family == "gan":
            raise RecgenError("--like needs a vae, diffusion or pixelcnn run (a GAN has no encoder)")
        g = seeded(seed)
        c, labels = self._condition(n, class_, prompt)
        if start is not None and class_ is None and prompt is None and self.arch.cond != "none":
            c, labels = self._like_condition(start, n, g)
        m, a = self.modules, self.arch
        with torch.no_grad():
            if self.family == "diffusion":
                x = diffusion.sample(m, a, c, n, g, sampler, steps, guidance if c is not None else 1.0,
                                     start=None if start is None else start.expand(n, -1, -1, -1), strength=strength)
            elif start is not None and self.family == "vae":
                x = vae.variations(m, a, start, c, n, g, strength)
            elif start is not None:  # pixelcnn: complete the bottom `strength` of the rows
                from_row = int(round(a.height * (1 - strength)))
                x = pixelcnn.sample(m, a, c, n, g, temperature, start.expand(n, -1, -1, -1), from_row)
            else:
                x = self.family_module.sample(m, a, c, n, g, temperature)
        return to_uint8(x), labels

    def _like_condition(self, start: torch.Tensor, n: int, g: torch.Generator):
        """The condition for varying an image when none is given: the class the model finds the image most likely
        under (VAE by ELBO, PixelCNN by likelihood); diffusion uses its unconditional ("null") prediction."""
        if self.family == "diffusion":
            return None, None
        conds = self._per_class_conditions()
        k = vae.infer_class(self.modules, start, conds, g) if self.family == "vae" else \
            pixelcnn.infer_class(self.modules, start, conds)
        return conds[k:k + 1].expand(n, *conds.shape[1:]), np.full(n, k, dtype=np.int64)

    def interpolate(self, a: str | np.ndarray | None = None, b: str | np.ndarray | None = None, n: int = 8,
                    class_: int | str | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Latent interpolation (GAN, VAE): n frames between images a and b (VAE), or between two noise vectors
        drawn from `seed`. Conditional runs without a class give one row of n frames per class."""
        if self.family not in ("gan", "vae"):
            raise RecgenError(f"interpolation needs a gan or vae run; this is a {self.family} run")
        if (a is None) != (b is None):
            raise RecgenError("give both images to interpolate between, or neither")
        if a is not None and self.family == "gan":
            raise RecgenError("a GAN cannot interpolate between given images (it has no encoder); use a vae run")
        if n < 2:
            raise RecgenError(f"n must be at least 2 frames, got {n}")
        xa, xb = (self._image(a), self._image(b)) if a is not None else (None, None)
        if self.arch.cond == "none":
            rows = [(None, None)]
        elif class_ is not None:
            c, labels = self._condition(1, class_)
            rows = [(c, int(labels[0]))]
        elif xa is not None:  # the class the first image looks most like
            (c, labels) = self._like_condition(xa, 1, seeded(seed))
            rows = [(c, int(labels[0]))]
        else:
            conds = self._per_class_conditions()
            rows = [(conds[k:k + 1], k) for k in range(len(self.classes))]
        out, labels = [], []
        for c, k in rows:
            cc = None if c is None else c.expand(n, *c.shape[1:])
            g = seeded(seed)  # the same two endpoints in every row
            x = gan.interpolate(self.modules, self.arch, c, n, g) if self.family == "gan" else \
                vae.interpolate(self.modules, self.arch, cc, n, g, xa, xb)
            out.append(to_uint8(x))
            labels += [k] * n
        return np.concatenate(out), (None if rows[0][1] is None else np.array(labels, dtype=np.int64))

    def decode(self, z: np.ndarray | torch.Tensor, class_: int | str | None = None) -> np.ndarray:
        """Latent vectors (N, latent) -> uint8 images (N, H, W, C) (GAN noise or VAE latent)."""
        if self.family not in ("gan", "vae"):
            raise RecgenError(f"decode needs a gan or vae run; this is a {self.family} run")
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32).to(self.device)
        c, _ = self._condition(len(z), class_) if self.arch.cond != "none" else (None, None)
        x = gan.decode(self.modules["G"], z, c) if self.family == "gan" else vae.decode(self.modules, z, c)
        return to_uint8(x)

    def embed(self, images: np.ndarray, class_: int | str | None = None) -> np.ndarray:
        """uint8 images (N, H, W, C) -> VAE posterior means (N, latent_dim)."""
        if self.family != "vae":
            raise RecgenError(f"embed needs a vae run; this is a {self.family} run")
        c, h, w = self.input_shape
        x = from_uint8(resize_batch(to_channels(np.asarray(images), c), (h, w))).to(self.device)
        cond, _ = self._condition(len(x), class_) if self.arch.cond != "none" else (None, None)
        return vae.encode(self.modules, x, cond)[0].cpu().numpy()

    # -------------------------------------------------------------------------------------------- evaluation
    def evaluate(self, split: str = "test", data: ImageSet | None = None, write: bool = True) -> dict[str, Any]:
        """Likelihood-style figures on held-out images: VAE ELBO, bits/dim bound and reconstruction error;
        PixelCNN bits/dim; diffusion noise-prediction loss; GAN sample spread relative to real images."""
        if data is None:
            _, val, test = load_splits(self.config)
            data = test if split == "test" and test is not None else val
            if data is None:
                raise RecgenError(f"{self.config.data}: no test split and no validation split to evaluate on")
        x, y = data.convert(size=self.input_shape[1], channels=self.input_shape[0]).tensors()
        x, y = x.to(self.device), y.to(self.device)
        m, a, g = self.modules, self.arch, seeded(5)
        phrases = phrase_table(self.classes).to(self.device) if a.cond == "text" else None

        def condition(yb, gg):
            return batch_condition(a.cond, yb, phrases, gg)

        t0 = time.perf_counter()
        with torch.no_grad():
            if self.family == "vae":
                out = vae.evaluate(m, a, x, y, condition)
            elif self.family == "pixelcnn":
                out = pixelcnn.evaluate(m["model"], x, y, condition)
                out["data"] = "8-bit" if a.levels == 256 else f"quantised to {a.levels} levels"
            elif self.family == "diffusion":
                out = diffusion.evaluate(m["model"], a, x[:2000], y[:2000], condition)
            else:
                k = min(1000, len(x))
                fake = gan.sample(m, a, condition(y[:k], g), k, g)
                out = {"spread_ratio": round(gan.spread_ratio(fake, x[:k], y[:k] if a.cond != "none" else None), 4)}
        out = {"split": data.split, "n": len(x), "model": self.family, "cond": a.cond, **out,
               "seconds": round(time.perf_counter() - t0, 2), "run": str(self.path)}
        if write:
            self.run.write_json(f"eval-{data.split}.json", out)
            self.write_report(out)
        return out

    def write_report(self, metrics: dict[str, Any] | None = None) -> Path:
        rows = self.run.read_metrics()
        sections = []
        if metrics:
            sections.append((f"Evaluation ({metrics.get('split')})", table(metrics)))
        judged = self.run.path / "eval-judge.json"
        if judged.is_file():  # written by `recgen generate eval` (recgen.loop.judge)
            from recgen.loop.judge import format_table

            res = json.loads(judged.read_text())
            figs = "".join(image(self.run, self.run.plots / f"{k}.png", k.replace("-", " "))
                           for k in ("samples-per-class", "nearest-pairs", "gradcam-gen-vs-real")
                           if (self.run.plots / f"{k}.png").is_file())
            sections.append(("Judged by a recognizer", table(format_table(res)) + table(res.get("card", {})) + figs))
        health = self.run.config.get("health")
        if health:
            sections.append(("Training health", "".join(f"<p><b>warning:</b> {h}</p>" for h in health)))
        grids = sorted(self.run.plots.glob("samples-epoch*.png"))
        if len(grids) > 6:
            grids = grids[:2] + grids[-4:]
        if grids:
            sections.append(("Samples per epoch (fixed noise)", "".join(
                image(self.run, p, p.stem.replace("samples-", "")) for p in grids)))
        for name, caption in (("interpolation.png", "latent interpolation, one row per class"),):
            if (self.run.plots / name).is_file():
                sections.append(("Interpolation", image(self.run, self.run.plots / name, caption)))
        if rows:
            keys = [k for k in ("train_loss", "val_bpd", "val_loss", "val_recon_mse", "d_loss", "g_loss",
                                "gan_spread_ratio") if k in rows[-1]]
            sections.append(("Training curves", image(self.run, plots.curves(rows, self.run.plots / "curves.png",
                                                                             keys)) + table(rows)))
        return write_report(self.run, f"recgen generate: {self.family} ({self.arch.cond}-conditional) on "
                                      f"{self.config.data}", sections)


def save_samples(images: np.ndarray, labels: np.ndarray | None, out: str | Path, classes: list[str],
                 per_image: bool = False, cols: int = 8, prompt: str | None = None) -> dict[str, str]:
    """A grid PNG at `out`, the arrays in an .npz beside it (x uint8 (N, H, W, C), y labels, classes) and, with
    per_image, one PNG per image in a folder of the same name."""
    from PIL import Image

    out = Path(out)
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    titles = [classes[int(k)] for k in labels[:cols]] if labels is not None else None
    save_grid(images, out, cols, titles)
    arrays = {"x": images, "classes": np.array(classes)}
    if labels is not None:
        arrays["y"] = labels
    if prompt is not None:
        arrays["prompt"] = np.array(prompt)
    np.savez_compressed(out.with_suffix(".npz"), **arrays)
    paths = {"grid": str(out), "npz": str(out.with_suffix(".npz"))}
    if per_image:
        folder = out.with_suffix("")
        folder.mkdir(exist_ok=True)
        for i, im in enumerate(images):
            tag = "" if labels is None else "-" + re.sub(r"[^a-z0-9]+", "_", classes[int(labels[i])].lower())
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(folder / f"{i:04d}{tag}.png")
        paths["images"] = str(folder)
    return paths


# ---------------------------------------------------------------------------------------------------- train/load
def train(**options: Any) -> GeneratorRun:
    """Train a generator; every keyword is a GenerateConfig field (the same names as the CLI flags)."""
    if options.get("resume"):
        return _resume(options)
    cfg = resolve(from_dict(GenerateConfig, options, "generate train"))
    train_set, val, _ = load_splits(cfg)
    arch = arch_config(cfg, train_set.shape, train_set.num_classes)
    run = Run.create("generate", cfg.name or cfg.model, cfg.out)
    run.write_config("generate", to_dict(cfg), data_fingerprint=train_set.fingerprint(), classes=train_set.classes,
                     n_train=len(train_set), n_val=len(val) if val else 0)
    run.write_model_json(cfg.model, dataclasses.asdict(arch), classes=train_set.classes,
                         input_shape=list(train_set.shape))
    return _fit(run, cfg, arch, train_set, val, resume=False)


def _fit(run: Run, cfg: GenerateConfig, arch, train_set: ImageSet, val: ImageSet | None, resume: bool):
    mod, _, task_cls = FAMILIES[cfg.model]
    torch.manual_seed(cfg.seed)
    modules = mod.build(arch)
    device = resolve_device(cfg.device)
    task = task_cls(modules, arch, cfg, val.tensors() if val is not None else None, train_set.classes, device)
    hist = Trainer(task, cfg, run, device).fit(train_set.tensors(), resume=resume)
    extra = {}
    if cfg.model == "gan":
        last = (run.read_metrics() or [{}])[-1]
        extra["health"] = gan.health(last.get("d_loss", 1.0), last.get("g_loss", 0.0),
                                     last.get("gan_spread_ratio", 1.0))
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2), **extra)
    result = GeneratorRun(run)
    if cfg.model in ("gan", "vae"):
        x, labels = result.interpolate(n=8, seed=0)
        save_grid(x, run.plots / "interpolation.png", cols=8)
    if val is not None or has_test_split(cfg.data):  # a subset handed over as .npz may have neither
        result.evaluate()
    return result


def _resume(options: dict[str, Any]) -> GeneratorRun:
    run = Run.open(options["resume"], "generate")
    saved = run.options
    # Exact resume continues the same schedule: only how far to go and where to run it may change.
    allowed = {"max_steps", "time_budget", "device", "threads", "resume"}
    changed = {k: v for k, v in options.items() if k not in allowed and v != saved.get(k)}
    if changed:
        raise RecgenError(f"--resume continues a run with its own options; cannot change {', '.join(changed)}")
    limits = {"max_steps": 0, "time_budget": 0.0}  # the old run's stopping point is not the new one's
    cfg = from_dict(GenerateConfig, {**saved, **limits, **{k: v for k, v in options.items() if k != "resume"},
                                     "resume": ""})
    if run.config.get("stopped") == "completed":
        raise RecgenError(f"{run.path}: this run already completed its {cfg.epochs} epochs; nothing to resume")
    train_set, val, _ = load_splits(cfg)
    if train_set.fingerprint() != run.config.get("data_fingerprint"):
        raise RecgenError(f"{run.path}: the data changed since this run started (fingerprint differs)")
    run.update_config(options=to_dict(cfg))
    info = run.read_model_json()
    arch = FAMILIES[info["family"]][1](**info["args"])
    return _fit(run, cfg, arch, train_set, val, resume=True)


def load(path: str | Path) -> GeneratorRun:
    return GeneratorRun(Run.open(path, "generate"))
