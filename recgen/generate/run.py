"""A trained generator in its run directory: sample (class, prompt or image), interpolate, decode, embed,
evaluate, report; and saving sample sets as grid PNG + .npz."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgen import plots
from recgen.data.splits import load_splits
from recgen.config import check_option, model_args
from recgen.data import ImageSet, held_out, image_batch, read_image, resize_batch, to_channels
from recgen.errors import RecgenError
from recgen.generate.common import from_uint8, grid_labels, save_grid, to_uint8
from recgen.generate.condition import (batch_condition, embed_texts, nearest_class, phrase_table, resolve_class,
                                      text_conditioners)
from recgen.generate.config import GenerateConfig
from recgen.generate.family import GeneratorFamily, get_family, refuse
from recgen.generate.options import SampleOptions
from recgen.progress import Progress
from recgen.report import image, legend, table, write_report
from recgen.runs import Run, TrainedRun, load_module, module_state, output_file
from recgen.sanity import check_prompt
from recgen.train import seeded

SAMPLE_BATCH = 1000  # images sampled at once; more are drawn in batches, so memory does not grow with n


def _part(prompt: str | list[str] | None, i: int) -> str | list[str] | None:
    """The prompts of the batch starting at image i: one prompt serves every batch, a list is cut."""
    return prompt[i:i + SAMPLE_BATCH] if isinstance(prompt, list) else prompt


class GeneratorRun(TrainedRun):
    """A trained generator in its run directory: sample, interpolate, decode, embed, evaluate. What differs by
    family is asked of `self.impl`, the family's GeneratorFamily (recgen/generate/family.py)."""

    config_class = GenerateConfig

    def __init__(self, run: Run):
        impl = get_family(str(run.read_model_json().get("family")), f"{run.path / 'model.json'}: family")
        self.config_class = impl.run_config or GenerateConfig  # a student's options are DistillConfig's
        super().__init__(run)
        self.family: str = self.info["family"]
        self.impl: GeneratorFamily = impl
        self.arch = model_args(self.impl.arch_class, self.info, run.path / "model.json")
        self._modules = None

    @property
    def guided(self) -> bool:
        """Whether this run can sample with classifier-free guidance (it learned a "no condition" prediction)."""
        return self.impl.can_guide(self.arch)

    def _describe(self) -> str:
        return f"model={self.family!r}, cond={self.arch.cond!r}"

    def _require(self, flag: str, what: str, verb: str = "needs") -> None:
        """Refuse `what` in one line when this run's family lacks capability `flag`."""
        if not getattr(self.impl, flag):
            raise refuse(what, flag, self.impl, str(self.path), verb)

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks with their best weights (the EMA copy where one was kept), in eval mode."""
        if self._modules is None:
            mods = self.impl.build(self.arch)
            w = self.run.load_weights("best")
            for name, m in mods.items():
                load_module(m, module_state(w, name), self.run.weights_path("best")).to(self.device).eval()
            self._modules = mods
        return self._modules

    # ------------------------------------------------------------------------------------------- conditioning
    def _condition(self, n: int, class_=None, prompt=None) -> tuple[torch.Tensor | None, np.ndarray | None]:
        """(what the network is fed, the class labels recorded with the samples)."""
        mode = self.arch.cond
        if class_ is not None and prompt is not None:
            raise RecgenError("give either a class or a prompt, not both")
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)  # a list: one prompt per image
            if any(not isinstance(p, str) or not p.strip() for p in prompts) or not prompts:
                raise RecgenError("empty prompt: describe what to generate, e.g. --prompt 'a leather ankle boot'")
            if len(prompts) not in (1, n):
                raise RecgenError(f"prompt: one text or one per image ({n}), got {len(prompts)}")
            if mode != "text":
                raise RecgenError(f"--prompt needs a run trained with --text-conditional; {self.path} is "
                                  f"{'class-conditional (use --class)' if mode == 'class' else 'unconditional'}")
            emb = embed_texts(prompts)
            for p, e in dict(zip(prompts, emb)).items():
                check_prompt(p, e, phrase_table(self.classes), self.classes)
            heads = text_conditioners(self.modules)  # recorded: the class the model reads each prompt as
            label = (heads[0].class_probs(emb.to(self.device)).argmax(1).cpu() if heads
                     else nearest_class(emb, self.classes)).numpy()
            return emb.expand(n, -1).to(self.device), np.broadcast_to(label, (n,)).astype(np.int64)
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
    def sample(self, n: int | SampleOptions = 64, progress: Progress | None = None, **options: Any
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """n images as uint8 (n, H, W, C) and their class labels (n,) (None when unconditional).

        The options are SampleOptions' fields (recgen/generate/options.py), given as keywords or as one
        SampleOptions in place of n: class_ (index or name) or prompt (text-conditional runs), neither:
        classes in turn; like: an image (path or uint8 array) to vary (VAE: re-encode and mix with prior
        noise; diffusion: SDEdit; PixelCNN: keep the top rows and complete the rest), `strength` in (0, 1]
        says how far from it to go; sampler / steps (diffusion) and guidance (diffusion, or pixelcnn trained
        with cond_dropout) default to the run's config (guidance 1 = none); temperature: noise scale (GAN,
        VAE) or softmax temperature (PixelCNN); precision fp32 or bf16 (autocast: faster GAN decoding on CPUs
        with AMX or AVX-512 BF16, pixel values within about one uint8 level of fp32). Same seed -> same images.
        progress: a recgen.progress.Progress counting images, advanced as they are drawn (within a batch too,
        by diffusion steps or PixelCNN rows)."""
        opts = n if isinstance(n, SampleOptions) else SampleOptions.of({"n": n, **options})
        if isinstance(n, SampleOptions) and options:
            opts = opts.replace(**options)
        self._check_sampling(opts)
        if opts.n > SAMPLE_BATCH:  # memory bounded by the batch; each batch seeded from (seed, its offset)
            parts = [self.sample(opts.replace(n=min(SAMPLE_BATCH, opts.n - i), seed=opts.seed * 100_003 + i,
                                              prompt=_part(opts.prompt, i)), progress)
                     for i in range(0, opts.n, SAMPLE_BATCH)]
            xs, ys = zip(*parts)
            return np.concatenate(xs), (None if ys[0] is None else np.concatenate(ys))
        return self._sample_batch(opts, progress)

    def _check_sampling(self, opts: SampleOptions) -> None:
        """What the options ask of this run (their own ranges are SampleOptions.check's)."""
        self.impl.check(self.arch, opts)
        if opts.guidance is not None and self.arch.cond == "none":
            raise RecgenError("--guidance (classifier-free guidance) needs a class- or text-conditional run; "
                              f"{self.path} is unconditional")
        if opts.sampler is not None or opts.steps is not None and not self.impl.takes_steps:
            self._require("takes_sampler", "--sampler/--steps", "apply to")
        if opts.guidance is not None and not self.guided:
            raise refuse("--guidance", "guidable", self.impl, str(self.path))
        if opts.like is not None:
            self._require("can_vary", "--like (variations of an image)")

    def _resolved(self, opts: SampleOptions, conditional: bool) -> SampleOptions:
        """The run's own sampler, steps and guidance where the options leave them out (1 = no guidance when
        nothing conditions the samples)."""
        cfg = self.config
        guidance = (cfg.guidance if self.guided else 1.0) if opts.guidance is None else opts.guidance
        return opts.replace(sampler=opts.sampler or cfg.sampler, steps=opts.steps or cfg.steps,
                            guidance=guidance if conditional else 1.0)

    def _sample_batch(self, opts: SampleOptions, progress: Progress | None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
        n = opts.n
        start = self._image(opts.like) if opts.like is not None else None
        g = seeded(opts.seed)
        c, labels = self._condition(n, opts.class_, opts.prompt)
        if start is not None and opts.class_ is None and opts.prompt is None and self.arch.cond != "none":
            c, labels = self._like_condition(start, n, g)
        opts = self._resolved(opts, c is not None)
        first = progress.done if progress is not None else 0
        tick = None if progress is None else (lambda share: progress.update(first + share * n))
        bf16 = torch.autocast(self.device.type, torch.bfloat16, enabled=opts.precision == "bf16")
        with torch.no_grad(), bf16:
            if start is not None:
                x = self.impl.vary(self.modules, self.arch, c, start, n, g, opts, tick)
            else:
                x = self.impl.sample(self.modules, self.arch, c, n, g, opts, tick)
        if progress is not None:
            progress.update(first + n)
        return to_uint8(x.float()), labels

    def _like_condition(self, start: torch.Tensor, n: int, g: torch.Generator):
        """The condition for varying an image when none is given: the class the model finds the image most likely
        under (VAE by ELBO, PixelCNN by likelihood), or, for a family that cannot tell (diffusion), its
        unconditional ("null") prediction."""
        if not self.impl.can_infer_class:
            return None, None
        conds = self._per_class_conditions()
        k = self.impl.infer_class(self.modules, self.arch, start, conds, g)
        return conds[k:k + 1].expand(n, *conds.shape[1:]), np.full(n, k, dtype=np.int64)

    def interpolate(self, a: str | np.ndarray | None = None, b: str | np.ndarray | None = None, n: int = 8,
                    class_: int | str | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Latent interpolation (GAN, VAE, diffusion): n frames between images a and b (VAE: posterior means;
        diffusion: DDIM inversions), or between two noise draws from `seed`. Conditional runs without a class give
        one row of n frames per class."""
        self._require("can_interpolate", "interpolation")
        if (a is None) != (b is None):
            raise RecgenError("give both images to interpolate between, or neither")
        if a is not None:
            self._require("interpolates_images", "interpolation between given images")
        check_option("n", n, int)
        check_option("seed", seed, int)
        if not 2 <= n <= 1000:
            raise RecgenError(f"n must be 2 to 1000 frames, got {n}")
        xa, xb = (self._image(a), self._image(b)) if a is not None else (None, None)
        if self.arch.cond == "none":
            rows = [(None, None)]
        elif class_ is not None:
            c, labels = self._condition(1, class_)
            rows = [(c, int(labels[0]))]
        elif xa is not None:  # the class the first image looks most like
            (c, labels) = self._like_condition(xa, 1, seeded(seed))
            rows = [(c, None if labels is None else int(labels[0]))]
        else:
            conds = self._per_class_conditions()
            rows = [(conds[k:k + 1], k) for k in range(len(self.classes))]
        opts = self._resolved(SampleOptions(), True)  # the run's own steps and guidance
        out, labels = [], []
        for c, k in rows:
            cc = None if c is None else c.expand(n, *c.shape[1:])
            g = seeded(seed)  # the same two endpoints in every row
            with torch.no_grad():
                out.append(to_uint8(self.impl.interpolate(self.modules, self.arch, cc, n, g, xa, xb, opts)))
            labels += [k] * n
        return np.concatenate(out), (None if rows[0][1] is None else np.array(labels, dtype=np.int64))

    def decode(self, z: np.ndarray | torch.Tensor, class_: int | str | None = None) -> np.ndarray:
        """Latent vectors (N, latent) -> uint8 images (N, H, W, C) (GAN noise or VAE latent)."""
        self._require("has_latent", "decode")
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32).to(self.device)
        size = self.impl.latent_size(self.arch)
        if z.ndim != 2 or z.shape[1] != size:
            raise RecgenError(f"z must be latent vectors shaped (N, {size}), got {tuple(z.shape)}")
        c, _ = self._condition(len(z), class_) if self.arch.cond != "none" else (None, None)
        with torch.no_grad():
            return to_uint8(self.impl.decode(self.modules, self.arch, z, c))

    def embed(self, images: np.ndarray, class_: int | str | None = None) -> np.ndarray:
        """uint8 images (N, H, W, C) -> latent vectors (N, latent) (VAE posterior means)."""
        self._require("can_embed", "embed")
        c, h, w = self.input_shape
        x = from_uint8(resize_batch(to_channels(image_batch(images), c), (h, w))).to(self.device)
        cond, _ = self._condition(len(x), class_) if self.arch.cond != "none" else (None, None)
        with torch.no_grad():
            return self.impl.embed(self.modules, self.arch, x, cond).cpu().numpy()

    # -------------------------------------------------------------------------------------------- evaluation
    def evaluate(self, split: str = "test", data: ImageSet | None = None, write: bool = True) -> dict[str, Any]:
        """Likelihood-style figures on held-out images: VAE ELBO, bits/dim bound and reconstruction error;
        PixelCNN bits/dim; diffusion noise-prediction loss; GAN sample spread relative to real images."""
        if data is None:
            _, val, test = load_splits(self.config)
            data = held_out(split, test, val, self.config.data)
        x, y = data.convert(size=self.input_shape[1], channels=self.input_shape[0]).tensors()
        x, y = x.to(self.device), y.to(self.device)
        a = self.arch
        phrases = phrase_table(self.classes).to(self.device) if a.cond == "text" else None

        def condition(yb, gg):
            return batch_condition(a.cond, yb, phrases, gg)

        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.impl.evaluate(self.modules, a, x, y, condition)
        out = {"split": data.split, "n": len(x), "model": self.family, "cond": a.cond, **out,
               "seconds": round(time.perf_counter() - t0, 2), "run": str(self.path)}
        if write:
            self.run.write_json(f"eval-{data.split}.json", out)
            self.write_report(out)
        return out

    def write_report(self, metrics: dict[str, Any] | None = None) -> Path:
        rows = self.run.read_metrics()
        sections = []
        if metrics is None:
            metrics = self.run.saved_eval()
        if metrics:
            sections.append((f"Evaluation ({metrics.get('split')})", table(metrics) + legend(metrics)))
        judged = self.run.path / "eval-judge.json"
        if judged.is_file():  # written by `recgen generate eval` (recgen.loop.judge)
            from recgen.evaluate.judging import format_table

            res = json.loads(judged.read_text())
            figs = "".join(image(self.run, self.run.plots / f"{k}.png", k.replace("-", " "))
                           for k in ("samples-per-class", "nearest-pairs", "gradcam-gen-vs-real")
                           if (self.run.plots / f"{k}.png").is_file())
            judged_rows = format_table(res)
            sections.append(("Judged by a recognizer", table(judged_rows) + legend(r["metric"] for r in judged_rows)
                             + table(res.get("card", {})) + figs))
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
    """A grid PNG at `out` (samples.png inside it when `out` is a folder), the arrays in an .npz beside it (x uint8
    (N, H, W, C), y labels, classes) and, with per_image, one PNG per image in a folder of the same name."""
    from PIL import Image

    out = output_file(out, "samples.png")
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
