"""The generator family protocol and its registry.

Each family file (gan.py, vae.py, pixelcnn.py, diffusion.py) ends with one object, `FAMILY`, an instance of a
`GeneratorFamily` subclass: its architecture config class, its training task class, `make_arch` (the generic
options -> its architecture config), `build`, `sample`, and where they apply `vary` (variations of an image),
`interpolate`, `decode`, `embed`, `infer_class`, plus `evaluate` and capability flags. `GeneratorRun` and
`generate.train` reach a family only through this object, so they hold no branch on a family's name; an
operation a family lacks is refused by `refuse`, one line naming the families whose flag allows it.

Adding a family:
1. write recgen/generate/<name>.py: its networks, an architecture config dataclass, a `GeneratorTask`
   subclass and, at its end, `FAMILY = <Name>Family()` (a `GeneratorFamily` subclass overriding what its
   flags allow);
2. add its one line to REGISTRY below: the module path and its training defaults (here, without torch, so
   the command line reads them without importing the family);
3. add it to tests/test_generate.py's FAMILIES (the conformance suite); tests/test_family.py checks the rest.
Its own architecture flags (GenerateConfig fields only it reads, named after it) are listed in its
`options`; setting one for another family is refused.

This module imports no torch: the command line lists the families and their defaults from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from recgen.errors import RecgenError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from recgen.generate.options import SampleOptions


@dataclass(frozen=True)
class Registered:
    module: str  # the module whose attribute FAMILY implements the family
    # training options filled in when left at 0 (ema: -1), and the guidance scale of the grids and `sample`;
    # None: `generate train` does not make this family
    defaults: dict[str, Any] | None


# Training defaults sized for about 20 minutes of 2 CPU cores on Fashion-MNIST (bench/generate.py measures
# what a default run takes); guidance 1 = none, the only choice for GAN and VAE.
REGISTRY: dict[str, Registered] = {
    "gan": Registered("recgen.generate.gan", dict(epochs=8, batch_size=64, lr=2e-4, ema=0.999, guidance=1.0)),
    "vae": Registered("recgen.generate.vae", dict(epochs=10, batch_size=128, lr=2e-3, ema=0.0, guidance=1.0)),
    "pixelcnn": Registered("recgen.generate.pixelcnn",
                           dict(epochs=2, batch_size=64, lr=2e-3, ema=0.0, guidance=3.0)),
    "diffusion": Registered("recgen.generate.diffusion",
                            dict(epochs=3, batch_size=64, lr=1e-3, ema=0.995, guidance=2.0)),
    # made by `recgen generate distill TEACHER_RUN`, not `generate train` (DistillConfig holds its defaults)
    "student": Registered("recgen.generate.student", None),
}


def get_family(name: str, where: str = "model") -> GeneratorFamily:
    """The family registered as `name` (its module is imported on first use); `where` names the field or
    file a wrong name came from."""
    if name not in REGISTRY:
        raise RecgenError(f"{where} must be one of {', '.join(REGISTRY)}, got {name!r}")
    return importlib.import_module(REGISTRY[name].module).FAMILY


class GeneratorFamily:
    """What every generator family provides. Images are float (N, C, H, W) in [0, 1]; `cond` is what the
    networks are fed (class indices (N,), text embeddings (N, D) or None); `g` a seeded torch.Generator;
    `opts` a SampleOptions whose sampler, steps and guidance are filled in from the run (guidance 1 when
    unconditional). A method whose flag is False is never called (GeneratorRun refuses first)."""

    name: str = ""
    arch_class: type = object  # the architecture config dataclass saved in model.json
    task_class: type = object  # its GeneratorTask (training step, validation, per-epoch grids)
    options: tuple[str, ...] = ()  # GenerateConfig fields only this family reads (refused for the others)
    side_multiple: int = 1  # image sides must be multiples of this (4 for networks halving them twice)
    run_config: type | None = None  # the options class of its runs' config.yaml (None: GenerateConfig)

    # capability flags: which operations and sampling options apply
    guidable: bool = False  # learns a "no condition" prediction for classifier-free guidance (can_guide)
    takes_sampler: bool = False  # --sampler and --steps choose its sampling loop
    takes_steps: bool = False  # --steps sets its number of network evaluations (without --sampler: a student)
    can_vary: bool = False  # `sample(like=image)`: variations of an image
    can_interpolate: bool = False  # `interpolate` between two draws of its noise
    interpolates_images: bool = False  # `interpolate(a, b)` between two given images
    has_latent: bool = False  # `decode` maps latent vectors to images (and a grid of interpolations is cheap)
    can_embed: bool = False  # `embed` maps images to latent vectors
    can_infer_class: bool = False  # `infer_class`: the most likely class of an image (conditions `like`)
    # what a flag further asks of a run, for error messages: {flag: "trained with ..."}
    requires: ClassVar[dict[str, str]] = {}

    # ------------------------------------------------------------------------------------------ architecture
    def make_arch(self, cfg, common: dict[str, Any]):
        """The architecture config from GenerateConfig `cfg`; `common` holds channels, height, width,
        num_classes and cond."""
        raise NotImplementedError

    def build(self, arch) -> dict[str, nn.Module]:
        raise NotImplementedError

    def can_guide(self, arch) -> bool:
        """Whether this run samples with classifier-free guidance: conditional, and it learned the
        unconditional prediction guidance extrapolates away from."""
        return self.guidable and arch.cond != "none"

    def check(self, arch, opts: SampleOptions) -> None:
        """Family-specific limits of the sampling options (e.g. steps within the trained schedule)."""

    def resume(self, options: dict[str, Any]):
        """Continue an interrupted run of a family with its own `run_config` (`generate train --resume`)."""
        raise NotImplementedError

    def health(self, last: dict[str, float]) -> list[str]:
        """Training problems read from the last metrics row (warnings in config.yaml's `health`)."""
        return []

    # ------------------------------------------------------------------------------------------ operations
    def sample(self, modules, arch, cond, n: int, g: torch.Generator, opts: SampleOptions,
               progress: Callable[[float], None] | None = None) -> torch.Tensor:
        """n new images (n, C, H, W) in [0, 1]; progress(share done) as the sampling loop advances."""
        raise NotImplementedError

    def vary(self, modules, arch, cond, start: torch.Tensor, n: int, g: torch.Generator, opts: SampleOptions,
             progress: Callable[[float], None] | None = None) -> torch.Tensor:
        """n variations (n, C, H, W) of image `start` (1, C, H, W), `opts.strength` in (0, 1] away from it."""
        raise NotImplementedError

    def interpolate(self, modules, arch, cond, n: int, g: torch.Generator, a: torch.Tensor | None,
                    b: torch.Tensor | None, opts: SampleOptions) -> torch.Tensor:
        """n frames (n, C, H, W) between images a and b (1, C, H, W), or between two noise draws from g when
        they are None; cond holds n rows (one condition repeated)."""
        raise NotImplementedError

    def latent_size(self, arch) -> int:
        raise NotImplementedError

    def decode(self, modules, arch, z: torch.Tensor, cond) -> torch.Tensor:
        """Latent vectors (N, latent_size) -> images (N, C, H, W)."""
        raise NotImplementedError

    def embed(self, modules, arch, x: torch.Tensor, cond) -> torch.Tensor:
        """Images (N, C, H, W) -> latent vectors (N, latent_size)."""
        raise NotImplementedError

    def infer_class(self, modules, arch, x: torch.Tensor, conds: torch.Tensor, g: torch.Generator) -> int:
        """Index into conds (one condition per class) under which image x (1, C, H, W) is most likely."""
        raise NotImplementedError

    def evaluate(self, modules, arch, x: torch.Tensor, y: torch.Tensor, condition) -> dict[str, Any]:
        """Held-out figures on images x (N, C, H, W) with labels y; condition(labels, g) -> what the networks
        are fed."""
        raise NotImplementedError


CAPABILITIES = ("guidable", "takes_sampler", "takes_steps", "can_vary", "can_interpolate", "interpolates_images",
                "has_latent", "can_embed", "can_infer_class")
# the method each capability flag promises (tests/test_family.py checks that a family overrides it)
METHODS = {"can_vary": "vary", "can_interpolate": "interpolate", "interpolates_images": "interpolate",
           "has_latent": "decode", "can_embed": "embed", "can_infer_class": "infer_class"}


def supporting(flag: str) -> list[str]:
    """Names of the registered families whose `flag` is set."""
    return [name for name in REGISTRY if getattr(get_family(name), flag)]


def refuse(what: str, flag: str, family: GeneratorFamily, where: str = "",
           verb: str = "needs") -> RecgenError:
    """The one-line error for an operation or option `what` that `family` lacks (its `flag` is False, or
    what the flag `requires` is missing), naming the families that have it: "<what> needs a vae or diffusion
    run; <where> is a gan run" (verb "apply to": "<what> apply to diffusion runs; ...")."""
    plural = verb != "needs"
    names = sorted(supporting(flag), key=lambda n: bool(get_family(n).requires.get(flag)))  # plain ones first
    notes = [get_family(n).requires.get(flag, "") for n in names]
    kind = "runs" if plural else "run"
    if any(notes):
        runs = " or ".join(("" if plural else "a ") + f"{n} {kind}" + (f" {note}" if note else "")
                           for n, note in zip(names, notes))
    else:
        listed = " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
        runs = ("" if plural else "a ") + f"{listed} {kind}"
    without = " without it" if family.requires.get(flag) and getattr(family, flag) else ""
    return RecgenError(f"{what} {verb} {runs}; {where or 'this'} is a {family.name} run{without}")
