"""SampleOptions: the one declaration of the sampling options. The flags of `recgen generate sample` (and
`generate eval`'s sampling flags) are generated from its fields (recgen.cli_kit.options_from), and so is the
REST request of /api/generate/sample (recgen.serve.models); `GeneratorRun.sample(**options)` takes the same
names as keywords and the judge (recgen.loop.judge.evaluate_generator) receives one. Imports no torch: the
command line builds its flags from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from recgen.config import check_keys, check_option, from_dict
from recgen.errors import RecgenError

MAX_SAMPLES = 100_000  # images one sample() call returns (held in memory together)
PRECISIONS = ("fp32", "bf16")


@dataclass
class SampleOptions:
    """What to sample and how; None means the run's own setting (config.yaml's sampler, steps, guidance).
    Checked when built (`check`), so a bad value is refused before a model is loaded."""

    n: int = field(default=64, metadata={"help": "number of images"})
    class_: str | None = field(default=None, metadata={
        "help": "class name or index", "flag": "class"})  # Python callers may pass an int index
    prompt: str | None = field(default=None, metadata={"help": "free text (text-conditional runs)"})
    like: str | None = field(default=None, metadata={  # Python callers may pass a Path or a uint8 array
        "help": "an image to make variations of (vae, diffusion, pixelcnn)"})
    strength: float = field(default=0.6, metadata={"help": "with --like: how far from the image, in (0, 1]"})
    sampler: str | None = field(default=None, metadata={"help": "diffusion: ddpm | ddim | dpm"})
    steps: int | None = field(default=None, metadata={"help": "diffusion: sampling steps"})
    guidance: float | None = field(default=None, metadata={
        "help": "diffusion, pixelcnn: classifier-free guidance scale (1 = none)"})
    temperature: float = field(default=1.0, metadata={
        "help": "noise scale (gan, vae) or softmax temperature (pixelcnn)"})
    seed: int = field(default=0, metadata={"help": "same seed, same images"})
    precision: str = field(default="fp32", metadata={
        "help": "fp32 | bf16 (faster on CPUs with AMX or AVX-512 BF16 and on GPUs)"})

    def __post_init__(self):
        self.check()

    def check(self) -> SampleOptions:
        """Raise a RecgenError naming the first option of the wrong type or range (what needs the run, such as
        steps within its schedule, is checked by GeneratorRun)."""
        check_option("n", self.n, int)
        check_option("seed", self.seed, int)
        check_option("temperature", self.temperature, float)
        if self.n > MAX_SAMPLES:
            raise RecgenError(f"n: at most {MAX_SAMPLES:,} images a call (they are held in memory), got "
                              f"{self.n:,}; call again with another seed for more")
        if self.steps is not None:
            check_option("steps", self.steps, int)
        if self.guidance is not None:
            check_option("guidance", self.guidance, float)
        check_option("strength", self.strength, float)
        if not 0.0 < self.strength <= 1.0:
            raise RecgenError(f"strength must be in (0, 1], got {self.strength}")
        if self.precision not in PRECISIONS:
            raise RecgenError(f"precision must be {' or '.join(PRECISIONS)}, got {self.precision!r}")
        return self

    @classmethod
    def of(cls, options: dict[str, Any], what: str = "sample") -> SampleOptions:
        """From keyword arguments: an unknown name is refused with the nearest valid ones."""
        return from_dict(cls, options, what)

    def replace(self, **changes: Any) -> SampleOptions:
        """A copy with `changes` (checked like the original; an unknown name is refused)."""
        check_keys(type(self), changes, "sample")
        return dataclasses.replace(self, **changes)

