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
from recgen.classify.api import load_splits
from recgen.config import check_option, model_args
from recgen.data import ImageSet, held_out, image_batch, read_image, resize_batch, to_channels
from recgen.errors import RecgenError
from recgen.generate import diffusion, gan, pixelcnn, student, vae
from recgen.generate.common import can_guide, from_uint8, grid_labels, save_grid, to_uint8
from recgen.generate.condition import batch_condition, embed_texts, nearest_class, phrase_table, resolve_class
from recgen.generate.config import FAMILIES, DistillConfig, GenerateConfig
from recgen.progress import Progress
from recgen.report import image, legend, table, write_report
from recgen.runs import Run, TrainedRun, load_module, module_state, output_file
from recgen.sanity import check_prompt
from recgen.train import seeded

SAMPLE_BATCH = 1000  # images sampled at once; more are drawn in batches, so memory does not grow with n
MAX_SAMPLES = 100_000  # images one sample() call returns (held in memory together)


class GeneratorRun(TrainedRun):
    """A trained generator in its run directory: sample, interpolate, decode, embed, evaluate."""

    config_class = GenerateConfig

    def __init__(self, run: Run):
        if run.read_model_json().get("family") == "student":  # issue 34: a student's options are DistillConfig's
            self.config_class = DistillConfig
        super().__init__(run)
        self.family: str = self.info["family"]
        if self.family not in FAMILIES:
            raise RecgenError(f"{run.path / 'model.json'}: family must be one of {', '.join(FAMILIES)}, got "
                              f"{self.family!r}")
        mod, arch_cls, _ = FAMILIES[self.family]
        self.family_module = mod
        self.arch = model_args(arch_cls, self.info, run.path / "model.json")
        self._modules = None

    @property
    def guided(self) -> bool:
        """Whether this run can sample with classifier-free guidance (it learned a "no condition" prediction)."""
        return self.family != "student" and can_guide(self.family, self.arch)  # issue 34: student's is fixed

    def _describe(self) -> str:
        return f"model={self.family!r}, cond={self.arch.cond!r}"

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks with their best weights (the EMA copy where one was kept), in eval mode."""
        if self._modules is None:
            mods = self.family_module.build(self.arch)
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
            if not isinstance(prompt, str) or not prompt.strip():
                raise RecgenError("empty prompt: describe what to generate, e.g. --prompt 'a leather ankle boot'")
            if mode != "text":
                raise RecgenError(f"--prompt needs a run trained with --text-conditional; {self.path} is "
                                  f"{'class-conditional (use --class)' if mode == 'class' else 'unconditional'}")
            emb = embed_texts([prompt])
            check_prompt(prompt, emb[0], phrase_table(self.classes), self.classes)
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
               seed: int = 0, precision: str = "fp32", progress: Progress | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """n images as uint8 (n, H, W, C) and their class labels (n,) (None when unconditional).

        class_: index or name; prompt: free text (text-conditional runs); neither: classes in turn.
        like: an image to vary (VAE: re-encode and mix with prior noise; diffusion: SDEdit; PixelCNN: keep the top
        rows and complete the rest), `strength` in (0, 1] says how far from it to go.
        sampler / steps: diffusion only; guidance: diffusion, or pixelcnn trained with cond_dropout (defaults from
        the run's config; 1 = none).
        temperature: noise scale (GAN, VAE) or softmax temperature (PixelCNN). Same seed -> same images.
        precision: fp32, or bf16 (autocast: convolutions and matrix products in bfloat16; about 2x faster GAN
        decoding on CPUs with AMX, pixel values within about one uint8 level of fp32).
        progress: a recgen.progress.Progress counting images, advanced as they are drawn (within a batch too, by
        diffusion steps or PixelCNN rows)."""
        check_option("n", n, int)
        check_option("seed", seed, int)
        check_option("temperature", temperature, float)
        if n > MAX_SAMPLES:
            raise RecgenError(f"n: at most {MAX_SAMPLES:,} images a call (they are held in memory), got {n:,}; "
                              "call again with another seed for more")
        if steps is not None:
            check_option("steps", steps, int)
            if self.family == "diffusion" and steps > self.arch.train_timesteps:
                raise RecgenError(f"steps must be at most the {self.arch.train_timesteps} timesteps this model "
                                  f"trained with, got {steps}")
            if self.family == "student" and steps > self.arch.steps:  # issue 34
                raise RecgenError(f"steps: this student was distilled for at most {self.arch.steps} steps, got "
                                  f"{steps}; distil one with --steps {steps}")
        if guidance is not None:
            check_option("guidance", guidance, float)
        if guidance is not None and self.arch.cond == "none":
            raise RecgenError("--guidance (classifier-free guidance) needs a class- or text-conditional run; "
                              f"{self.path} is unconditional")
        if self.family == "student" and sampler is not None:  # issue 34
            raise RecgenError("--sampler: a student samples with its own consistency sampler; give --steps only")
        if self.family not in ("diffusion", "student") and (sampler is not None or steps is not None):
            raise RecgenError(f"--sampler/--steps apply to diffusion runs; this is a {self.family} run")
        if guidance is not None and not self.guided:
            without = " without it" if self.family == "pixelcnn" else ""
            raise RecgenError(f"--guidance needs a diffusion run or a pixelcnn run trained with cond_dropout > 0; "
                              f"{self.path} is a {self.family} run{without}")
        if not 0.0 < strength <= 1.0:
            raise RecgenError(f"strength must be in (0, 1], got {strength}")
        if precision not in ("fp32", "bf16"):
            raise RecgenError(f"precision must be fp32 or bf16, got {precision!r}")
        if n > SAMPLE_BATCH:  # memory bounded by the batch; each batch seeded from (seed, its offset)
            parts = [self.sample(min(SAMPLE_BATCH, n - i), class_, prompt, like, sampler, steps, guidance, strength,
                                 temperature, seed * 100_003 + i, precision, progress)
                     for i in range(0, n, SAMPLE_BATCH)]
            xs, ys = zip(*parts)
            return np.concatenate(xs), (None if ys[0] is None else np.concatenate(ys))
        sampler = sampler or self.config.sampler
        steps = steps or self.config.steps
        guidance = (self.config.guidance if self.guided else 1.0) if guidance is None else guidance
        start = self._image(like) if like is not None else None
        if start is not None and self.family in ("gan", "student"):  # issue 34: student
            raise RecgenError(f"--like needs a vae, diffusion or pixelcnn run; this is a {self.family} run")
        g = seeded(seed)
        c, labels = self._condition(n, class_, prompt)
        if start is not None and class_ is None and prompt is None and self.arch.cond != "none":
            c, labels = self._like_condition(start, n, g)
        m, a = self.modules, self.arch
        first = progress.done if progress is not None else 0
        tick = None if progress is None else (lambda share: progress.update(first + share * n))
        with torch.no_grad(), torch.autocast(self.device.type, torch.bfloat16, enabled=precision == "bf16"):
            if self.family == "student":  # issue 34
                x = student.sample(m, a, c, n, g, steps, progress=tick)
            elif self.family == "diffusion":
                x = diffusion.sample(m, a, c, n, g, sampler, steps, guidance if c is not None else 1.0,
                                     start=None if start is None else start.expand(n, -1, -1, -1), strength=strength,
                                     progress=tick)
            elif start is not None and self.family == "vae":
                x = vae.variations(m, a, start, c, n, g, strength)
            elif start is not None:  # pixelcnn: complete the bottom `strength` of the rows
                from_row = int(round(a.height * (1 - strength)))
                x = pixelcnn.sample(m, a, c, n, g, temperature, start.expand(n, -1, -1, -1), from_row, guidance,
                                    progress=tick)
            elif self.family == "pixelcnn":
                x = pixelcnn.sample(m, a, c, n, g, temperature, guidance=guidance, progress=tick)
            else:
                x = self.family_module.sample(m, a, c, n, g, temperature)
        if progress is not None:
            progress.update(first + n)
        return to_uint8(x.float()), labels

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
        """Latent interpolation (GAN, VAE, diffusion): n frames between images a and b (VAE: posterior means;
        diffusion: DDIM inversions), or between two noise draws from `seed`. Conditional runs without a class give
        one row of n frames per class."""
        if self.family == "pixelcnn":
            raise RecgenError("interpolation needs a gan, vae or diffusion run; a pixelcnn has no latent space")
        if self.family == "student":  # issue 34
            raise RecgenError("interpolation needs a gan, vae or diffusion run; interpolate with the student's teacher")
        if (a is None) != (b is None):
            raise RecgenError("give both images to interpolate between, or neither")
        if a is not None and self.family == "gan":
            raise RecgenError("a GAN cannot interpolate between given images (it has no encoder); use a vae run")
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
            rows = [(c, int(labels[0]))]
        else:
            conds = self._per_class_conditions()
            rows = [(conds[k:k + 1], k) for k in range(len(self.classes))]
        out, labels = [], []
        for c, k in rows:
            cc = None if c is None else c.expand(n, *c.shape[1:])
            g = seeded(seed)  # the same two endpoints in every row
            if self.family == "gan":
                x = gan.interpolate(self.modules, self.arch, c, n, g)
            elif self.family == "vae":
                x = vae.interpolate(self.modules, self.arch, cc, n, g, xa, xb)
            else:  # images: unguided, so the ends give the images back; noise: the run's guidance
                x = diffusion.interpolate(self.modules, self.arch, cc, n, g, xa, xb, self.config.steps,
                                          1.0 if xa is not None else self.config.guidance)
            out.append(to_uint8(x))
            labels += [k] * n
        return np.concatenate(out), (None if rows[0][1] is None else np.array(labels, dtype=np.int64))

    def decode(self, z: np.ndarray | torch.Tensor, class_: int | str | None = None) -> np.ndarray:
        """Latent vectors (N, latent) -> uint8 images (N, H, W, C) (GAN noise or VAE latent)."""
        if self.family not in ("gan", "vae"):
            raise RecgenError(f"decode needs a gan or vae run; this is a {self.family} run")
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32).to(self.device)
        size = self.arch.z_dim if self.family == "gan" else self.arch.latent_dim
        if z.ndim != 2 or z.shape[1] != size:
            raise RecgenError(f"z must be latent vectors shaped (N, {size}), got {tuple(z.shape)}")
        c, _ = self._condition(len(z), class_) if self.arch.cond != "none" else (None, None)
        x = gan.decode(self.modules["G"], z, c) if self.family == "gan" else vae.decode(self.modules, z, c)
        return to_uint8(x)

    def embed(self, images: np.ndarray, class_: int | str | None = None) -> np.ndarray:
        """uint8 images (N, H, W, C) -> VAE posterior means (N, latent_dim)."""
        if self.family != "vae":
            raise RecgenError(f"embed needs a vae run; this is a {self.family} run")
        c, h, w = self.input_shape
        x = from_uint8(resize_batch(to_channels(image_batch(images), c), (h, w))).to(self.device)
        cond, _ = self._condition(len(x), class_) if self.arch.cond != "none" else (None, None)
        return vae.encode(self.modules, x, cond)[0].cpu().numpy()

    # -------------------------------------------------------------------------------------------- evaluation
    def evaluate(self, split: str = "test", data: ImageSet | None = None, write: bool = True) -> dict[str, Any]:
        """Likelihood-style figures on held-out images: VAE ELBO, bits/dim bound and reconstruction error;
        PixelCNN bits/dim; diffusion noise-prediction loss; GAN sample spread relative to real images."""
        if data is None:
            _, val, test = load_splits(self.config)
            data = held_out(split, test, val, self.config.data)
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
            elif self.family == "student":  # issue 34: agreement with the teacher's samples
                out = student.evaluate(m, a, self.run.config.get("teacher") or {})
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
        if metrics is None:
            metrics = self.run.saved_eval()
        if metrics:
            sections.append((f"Evaluation ({metrics.get('split')})", table(metrics) + legend(metrics)))
        judged = self.run.path / "eval-judge.json"
        if judged.is_file():  # written by `recgen generate eval` (recgen.loop.judge)
            from recgen.loop.judge import format_table

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
